"""Token encoders: models that make a multi vector (a token matrix) per text or page image, for
late interaction (ColBERT on text, ColPali on page images). A collection's `vf.Multi(encoder=NAME)`
names one; `add(texts)` and `query(text, using=...)` go through it.

One protocol, several implementations (`multivector/` registers ColBERT and page encoders here);
the registry holds factories by name and one shared instance per name, as the embedder registry
does for single vectors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vectorforge.errors import EmbedderUnavailable, InvalidParameter

__all__ = ["PageEncoder", "TokenEncoder", "get_token_encoder", "register_token_encoder", "token_encoders"]


@runtime_checkable
class TokenEncoder(Protocol):
    """Texts to token matrices; queries and documents are encoded differently (ColBERT's [Q] and
    [D] markers, query padding), so there are two methods."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        """One (tokens, dim) float32 matrix per query."""
        ...

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> list[np.ndarray]:
        """One (tokens, dim) float32 matrix per document."""
        ...


@runtime_checkable
class PageEncoder(TokenEncoder, Protocol):
    """A token encoder that also embeds page images into patch matrices (ColPali): text queries go
    through `encode_queries`, pages through `encode_images`."""

    def encode_images(
        self, images: Sequence[Any], *, batch_size: int = 4, progress: bool = False
    ) -> list[np.ndarray]:
        """One (patches, dim) float32 matrix per image (PIL images), patches in row-major order."""
        ...


_FACTORIES: dict[str, Callable[[], TokenEncoder]] = {}
_INSTANCES: dict[str, TokenEncoder] = {}
_LOCK = threading.Lock()


def register_token_encoder(name: str, factory: Callable[[], TokenEncoder]) -> None:
    """Make `factory()` available as `name` (replacing an earlier one of that name)."""
    with _LOCK:
        _FACTORIES[name] = factory
        _INSTANCES.pop(name, None)


def token_encoders() -> list[str]:
    """The registered names, sorted."""
    with _LOCK:
        return sorted(_FACTORIES)


def get_token_encoder(name: str) -> TokenEncoder:
    """The token encoder registered as `name` (one shared instance)."""
    with _LOCK:
        if name not in _FACTORIES:
            raise InvalidParameter(f"unknown token encoder {name!r}; registered: {sorted(_FACTORIES)}")
        if name not in _INSTANCES:
            try:
                _INSTANCES[name] = _FACTORIES[name]()
            except ImportError as exc:
                raise EmbedderUnavailable(f"token encoder {name!r} cannot be made here: {exc}") from exc
        return _INSTANCES[name]
