"""Knowledge-graph stage: UMLS RRF or OBO ontologies -> concepts, names, edges, xrefs tables."""
