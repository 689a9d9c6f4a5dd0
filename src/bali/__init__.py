"""BALI: biomedical knowledge graph and language model alignment."""

__version__ = "0.1.0"
