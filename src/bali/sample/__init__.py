"""Balanced sentence sampling, neighbour-capped subgraphs and tokenized training shards."""
