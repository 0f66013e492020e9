"""The argument handling that the engine's collection and the sharded collection share: one search
is a batch of one, `add` embeds then upserts, `query` embeds then searches. The class it is mixed
into supplies the rest of `CollectionAPI` and `embedder` (mypy checks it: the methods' self type)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from vectorforge.api import CollectionAPI
from vectorforge.embed import Embedder
from vectorforge.engine.validate import check_idempotency_key, check_texts
from vectorforge.errors import EmbedderMismatch, InvalidParameter
from vectorforge.types import Hit, PointId

__all__ = ["CollectionFront"]


class _Parts(CollectionAPI, Protocol):
    """What a front needs of the class it is mixed into."""

    def embedder(self) -> Embedder: ...
    def _recalled(self, key: str) -> int | None: ...


class CollectionFront:
    """Mixed into `Collection` and `ShardedCollection` (docstrings: `vectorforge.api.CollectionAPI`)."""

    def _recalled(self, key: str) -> int | None:
        """The first result of a write made with `key`, when it can be known cheaply (else None)."""
        return None

    def search(
        self: _Parts,
        vector: Any,
        k: int = 10,
        *,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Hit]:
        """`search_batch` of one vector."""
        arr = vector if isinstance(vector, np.ndarray) else np.asarray(vector)
        if arr.ndim != 1:
            raise InvalidParameter(f"search takes one vector (1-D); got shape {arr.shape}; use search_batch")
        return self.search_batch(
            arr,
            k,
            offset=offset,
            filter=filter,
            params=params,
            with_payload=with_payload,
            with_vectors=with_vectors,
            consistency=consistency,
        )[0]

    def add(
        self: _Parts,
        texts: Sequence[str],
        ids: Sequence[PointId] | None = None,
        payloads: Sequence[dict[str, Any] | None] | None = None,
        *,
        batch_size: int = 64,
        progress: bool = False,
        idempotency_key: str | None = None,
    ) -> int:
        """Embed `texts` and upsert them (text in payload["text"]); a retry is not embedded again."""
        text_list, checked, merged = check_texts(texts, ids, payloads)
        key = check_idempotency_key(idempotency_key)
        if key is not None and (done := self._recalled(key)) is not None:
            return done
        vectors = self.embedder().encode(text_list, batch_size=batch_size, progress=progress)
        return self.upsert(checked, vectors, merged, idempotency_key=key)

    def query(
        self: _Parts, text: str, k: int = 10, *, embedder: Embedder | None = None, **search_args: Any
    ) -> list[Hit]:
        """Embed `text` with the collection's embedder and search; refuses any other embedder."""
        if not isinstance(text, str) or not text:
            raise InvalidParameter("query text must be a non-empty string")
        emb = self.embedder()
        if embedder is not None and embedder.info != emb.info:
            raise EmbedderMismatch(
                f"query embedder {embedder.info.model} ({embedder.info.version}) is not the model that made "
                f"collection {self.name!r} ({emb.info.model}, {emb.info.version})",
                expected=emb.info.model_dump(),
                got=embedder.info.model_dump(),
            )
        return self.search(emb.encode([text])[0], k, **search_args)
