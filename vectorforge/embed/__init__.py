"""Embedding models: a registry of named, versioned encoders (sentence-transformers), with a cache."""

from __future__ import annotations

from vectorforge.embed.cache import EmbeddingCache
from vectorforge.embed.registry import (
    DEFAULT_EMBEDDER,
    Embedder,
    EmbedderSource,
    SentenceTransformerEmbedder,
    add_embedder_source,
    get_embedder,
    list_embedders,
    register_embedder,
    remove_embedder_source,
)

__all__ = [
    "DEFAULT_EMBEDDER",
    "Embedder",
    "EmbedderSource",
    "EmbeddingCache",
    "SentenceTransformerEmbedder",
    "add_embedder_source",
    "get_embedder",
    "list_embedders",
    "register_embedder",
    "remove_embedder_source",
]
