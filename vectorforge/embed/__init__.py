"""Embedding models: a registry of named, versioned encoders (sentence-transformers), with a cache."""

from __future__ import annotations

from vectorforge.embed.cache import EmbeddingCache
from vectorforge.embed.registry import (
    DEFAULT_EMBEDDER,
    Embedder,
    SentenceTransformerEmbedder,
    get_embedder,
    list_embedders,
    register_embedder,
)

__all__ = [
    "DEFAULT_EMBEDDER",
    "Embedder",
    "EmbeddingCache",
    "SentenceTransformerEmbedder",
    "get_embedder",
    "list_embedders",
    "register_embedder",
]
