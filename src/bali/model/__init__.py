"""BALI model (paper §4): a masked-LM text encoder, a graph encoder over star subgraphs whose
node inputs are LM-encoded names, entity pooling, and the training losses.

Tensor interfaces shared by the modules of this package (d = LM hidden size):

- entity pooling: ``hidden [B, T, d]`` (last LM layer) and the flattened token membership
  ``tok_batch, tok_pos, tok_entity [K]`` (token ``hidden[tok_batch[k], tok_pos[k]]`` belongs to
  entity ``tok_entity[k]`` in ``0..E-1``; an entity is one (sentence, concept) pair, so several
  mentions of a concept in a sentence pool together) -> ``e [E, d]``
- graph encoders: ``x [N, d]`` node-slot inputs (each concept's star subgraph has its own
  slots: the centre and its sampled neighbours), ``edge_index [2, M]`` (row 0 neighbour slot,
  row 1 centre slot), ``edge_type [M]`` (relation id), ``centre [C]`` slot of each concept's
  centre -> ``g [C, d]``
- losses: ``text [E, d]``, ``graph [C, d]``, ``target [E]`` (the concept row of each entity)
  -> scalar; every entity of concept c is a positive of ``graph[c]``
"""
