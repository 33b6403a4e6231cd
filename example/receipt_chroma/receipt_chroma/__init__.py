"""Embedding storage for receipt lines."""
from receipt_chroma.store import EmbeddingStore

__all__ = ["EmbeddingStore"]
