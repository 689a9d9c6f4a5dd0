"""Text stage: corpora -> documents; annotators -> mentions (normalised to KG nodes);
documents + mentions -> sentences with sentence-local mention offsets."""
