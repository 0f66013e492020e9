"""What a registered model version records: where it came from, how it was trained, how it embeds.

The card is written once, beside the weights, and never changed: a version is immutable."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vectorforge.errors import InvalidParameter

__all__ = ["ModelCard", "read_embedding_settings", "weights_hash"]


class ModelCard(BaseModel):
    """One registered version of a model (the JSON file `card.json` beside its weights)."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    weights: str = Field(description="the first 12 hex digits of the SHA-256 of the weight files")
    dim: int
    pooling: str
    normalize: bool
    prompts: dict[str, str] = Field(default_factory=dict)
    base: str | None = Field(None, description="the model it was tuned from")
    data_hash: str | None = Field(None, description="SHA-256 (12 hex) of the training examples")
    loss: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    training_seconds: float | None = None
    registered_at: str = ""
    description: str = ""

    @property
    def ref(self) -> str:
        """`name@version`, as collections record it and embedders are named."""
        return f"{self.name}@{self.version}"


def weights_hash(model_dir: str | Path) -> str:
    """The first 12 hex digits of the SHA-256 of a model folder's weight files (names and bytes)."""
    root = Path(model_dir)
    files = sorted(root.rglob("*.safetensors")) or sorted(root.rglob("*.bin"))
    if not files:
        raise InvalidParameter(f"{root} holds no weights (*.safetensors or *.bin): not a saved model")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def read_embedding_settings(model_dir: str | Path) -> dict[str, Any]:
    """Dimension, pooling, normalize flag and prompts of a sentence-transformers folder, read from
    its own files (modules.json and the pooling module's config), so the card says what loading
    the folder will do."""
    root = Path(model_dir)
    try:
        modules = json.loads((root / "modules.json").read_text())
    except (OSError, ValueError) as exc:
        raise InvalidParameter(
            f"{root} is not a sentence-transformers model folder (modules.json: {exc})"
        ) from exc
    pooling, dim = "none", None
    for module in modules:
        if module.get("type", "").rsplit(".", 1)[-1] == "Pooling":
            cfg = json.loads((root / module["path"] / "config.json").read_text())
            dim = cfg.get("embedding_dimension", cfg.get("word_embedding_dimension"))
            # sentence-transformers 6 writes "pooling_mode"; older folders one flag per mode
            pooling = cfg.get("pooling_mode") or next(
                (
                    k.removeprefix("pooling_mode_").removesuffix("_token").removesuffix("_tokens")
                    for k, v in cfg.items()
                    if k.startswith("pooling_mode_") and v is True
                ),
                "none",
            )
    normalize = any(m.get("type", "").rsplit(".", 1)[-1] == "Normalize" for m in modules)
    st_config = root / "config_sentence_transformers.json"
    st = json.loads(st_config.read_text()) if st_config.exists() else {}
    prompts = st.get("prompts") or {}
    if dim is None and st.get("model_type") in ("ColBERT", "MultiVectorEncoder"):
        # a late-interaction model (multivector/colbert.py): one vector per token, its projection's
        # width, scored by MaxSim; ColBERT normalizes every token
        dense = [m for m in modules if m.get("type", "").rsplit(".", 1)[-1] == "Dense"]
        if dense:
            dim = json.loads((root / dense[-1]["path"] / "config.json").read_text())["out_features"]
            pooling, normalize = "maxsim", True
    if dim is None:
        raise InvalidParameter(f"{root} has no pooling module: its embedding dimension is unknown")
    return {"dim": int(dim), "pooling": str(pooling), "normalize": normalize, "prompts": dict(prompts)}
