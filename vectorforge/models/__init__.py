"""The model registry: tuned embedders by name and version in the data folder, each with the record
of how it was made (`ModelCard`); collections embedded by `name@version` load it in any process."""

from __future__ import annotations

from vectorforge.models.card import ModelCard, read_embedding_settings, weights_hash
from vectorforge.models.registry import ModelRegistry, parse_ref

__all__ = ["ModelCard", "ModelRegistry", "parse_ref", "read_embedding_settings", "weights_hash"]
