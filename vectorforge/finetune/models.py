"""Embedders for fine-tuned models: a saved sentence-transformers folder registered under a name,
with a version made from its weights, so a collection embedded by it records exactly which."""

from __future__ import annotations

from pathlib import Path

from vectorforge.embed import SentenceTransformerEmbedder, register_embedder
from vectorforge.models.card import read_embedding_settings, weights_hash

__all__ = ["register_model", "weights_version"]


def weights_version(model_dir: str | Path) -> str:
    """The first 12 hex digits of the SHA-256 of the model's weight files (as the registry's cards)."""
    return weights_hash(model_dir)


def register_model(name: str, model_dir: str | Path, *, precision: str = "bfloat16") -> str:
    """Register `model_dir` as embedder `name` in this process (the registry, vectorforge.models,
    keeps versions in a data folder); returns its version, the hash of its weights."""
    version = weights_version(model_dir)
    dim = read_embedding_settings(model_dir)["dim"]
    path = str(Path(model_dir).resolve())
    register_embedder(
        name,
        lambda: SentenceTransformerEmbedder(
            name, path, f"finetuned:{name}", version, dim, precision=precision
        ),
    )
    return version
