"""The argument handling that the engine's collection and the sharded collection share: one search
is a batch of one, `add` embeds then upserts, `query` embeds then searches. The class it is mixed
into supplies the rest of `CollectionAPI` and `embedder` (mypy checks it: the methods' self type)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from typing_extensions import Unpack

from vectorforge.api import CollectionAPI, SearchOptions
from vectorforge.embed import Embedder
from vectorforge.embed.analyzer import Analyzer, get_analyzer
from vectorforge.embed.tokens import PageEncoder, TokenEncoder, get_token_encoder
from vectorforge.engine.filters import parse_filter
from vectorforge.engine.fusion import check_weights, fuse
from vectorforge.engine.validate import (
    check_idempotency_key,
    check_ids,
    check_k_offset,
    check_payloads,
    check_texts,
)
from vectorforge.errors import (
    DimensionMismatch,
    EmbedderMismatch,
    InvalidParameter,
    InvalidPayload,
    InvalidVector,
)
from vectorforge.types import CollectionConfig, Hit, Multi, PointId, Sparse, SparseVector, UpdateResult

__all__ = ["CollectionFront"]


class _Parts(CollectionAPI, Protocol):
    """What a front needs of the class it is mixed into."""

    config: CollectionConfig

    def embedder(self) -> Embedder: ...
    def _recalled(self, key: str) -> int | None: ...
    def _write_texts(
        self,
        texts: list[str],
        ids: Sequence[PointId],
        vectors: Any,
        payloads: Sequence[dict[str, Any] | None],
        key: str | None,
    ) -> UpdateResult: ...
    def search_text(self, using: str, text: str, k: int = 10, **options: Any) -> list[Hit]: ...
    def search_named(self, using: str, query: Any, k: int = 10, **options: Any) -> list[Hit]: ...
    def search_sparse(
        self, using: str, vector: Any, k: int = 10, **options: Unpack[SearchOptions]
    ) -> list[Hit]: ...
    def search_multi(
        self, using: str, query: Any, k: int = 10, **options: Unpack[SearchOptions]
    ) -> list[Hit]: ...
    def search_dense(
        self, using: str, query: Any, k: int = 10, **options: Unpack[SearchOptions]
    ) -> list[Hit]: ...
    def text_vectors(self) -> list[str]: ...
    def sparse_spec(self, using: str) -> Sparse: ...
    def _rewrite_payloads(
        self,
        change: PayloadChange,
        ids: list[PointId] | None,
        filter: dict[str, Any] | None,
        key: str | None,
    ) -> UpdateResult: ...


PayloadChange = Callable[[dict[str, Any] | None], dict[str, Any] | None]


class CollectionFront:
    """Mixed into `Collection` and `ShardedCollection` (docstrings: `vectorforge.api.CollectionAPI`)."""

    def set_payload(
        self: _Parts,
        payload: dict[str, Any],
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        given = check_payload(payload)
        return self._rewrite_payloads(
            lambda old: {**(old or {}), **given},
            *_chosen(ids, filter),
            check_idempotency_key(idempotency_key),
        )

    def overwrite_payload(
        self: _Parts,
        payload: dict[str, Any],
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        given = check_payload(payload)
        return self._rewrite_payloads(
            lambda old: dict(given), *_chosen(ids, filter), check_idempotency_key(idempotency_key)
        )

    def delete_payload(
        self: _Parts,
        keys: Sequence[str],
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        if not isinstance(keys, list | tuple) or not keys or not all(isinstance(k, str) and k for k in keys):
            raise InvalidParameter(f"keys must be a non-empty list of payload keys, not {keys!r}")
        drop = set(keys)
        return self._rewrite_payloads(
            lambda old: {k: v for k, v in (old or {}).items() if k not in drop},
            *_chosen(ids, filter),
            check_idempotency_key(idempotency_key),
        )

    def _recalled(self, key: str) -> int | None:
        """The first result of a write made with `key`, when it can be known cheaply (else None)."""
        return None

    def _write_texts(
        self: _Parts,
        texts: list[str],
        ids: Sequence[PointId],
        vectors: Any,
        payloads: Sequence[dict[str, Any] | None],
        key: str | None,
    ) -> UpdateResult:
        """Upsert what `add` embedded (the dense vectors, or a dict by name of those and the token
        matrices); each sparse vector with an analyzer (BM25) is made from the texts too."""
        named = {name: list(analyzer_of(self, name).encode(texts)) for name in self.text_vectors()}
        if vectors is None:  # no dense vector: the analyzers make every vector
            vectors = named
        elif isinstance(vectors, dict):
            vectors = {**vectors, **named}
        elif named:
            vectors = {self.config.dense_name: vectors, **named}
        return self.upsert(ids, vectors, payloads, idempotency_key=key)

    def text_vectors(self: _Parts) -> list[str]:
        """The names of the sparse vectors that an analyzer fills from text (hybrid queries use them)."""
        return sorted(name for name, spec in self.config.sparse.items() if spec.analyzer is not None)

    def search_text(self: _Parts, using: str, text: str, k: int = 10, **options: Any) -> list[Hit]:
        """Analyze `text` with sparse vector `using`'s analyzer and search that vector (BM25)."""
        return self.search_sparse(using, analyzer_of(self, using).counts(text), k, **options)

    def search_named(self: _Parts, using: str, query: Any, k: int = 10, **options: Any) -> list[Hit]:
        """`search(query, using=...)`: the named vector's own search (dense, sparse or multi)."""
        kind = self.config.vector_kind(using)
        if kind == "dense" and using in self.config.extra_dense:
            return self.search_dense(using, query, k, **options)
        if kind == "dense":
            return self.search(query, k, **options)
        if kind == "sparse":
            return self.search_sparse(using, query, k, **options)
        if kind == "multi":
            return self.search_multi(using, query, k, **options)
        known = ", ".join(repr(v) for v in self.config.vector_names())
        raise InvalidParameter(f"collection {self.name!r} has no vector {using!r} (it has: {known})")

    def sparse_spec(self: _Parts, using: str) -> Sparse:
        """The settings of sparse vector `using` (InvalidParameter, with how to add one, if none)."""
        spec = self.config.sparse.get(using)
        if spec is None:
            raise no_vector(self.config, using, "sparse")
        return spec

    def multi_spec(self: _Parts, using: str) -> Multi:
        """The settings of multi vector `using` (InvalidParameter, with how to add one, if none)."""
        spec = self.config.multi.get(using)
        if spec is None:
            raise no_vector(self.config, using, "multi")
        return spec

    def search(
        self: _Parts,
        vector: Any,
        k: int = 10,
        *,
        using: str | None = None,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Hit]:
        """`search_batch` of one vector (`search_named` for a vector named by `using`)."""
        if isinstance(vector, str) and self.config.vector_kind(using) in ("dense", None):
            raise InvalidParameter(
                "search takes a vector; to search by text use query(text, k=...), which embeds it with "
                "the collection's model (or query(text, using='bm25') for a sparse vector)"
            )
        if using is None and isinstance(vector, SparseVector):
            raise InvalidParameter(
                "a SparseVector searches a sparse vector: name it, search(..., using='bm25')"
            )
        if using is not None:
            options = {"offset": offset, "filter": filter, "params": params, "consistency": consistency}
            return self.search_named(
                using, vector, k, with_payload=with_payload, with_vectors=with_vectors, **options
            )
        try:
            arr = vector if isinstance(vector, np.ndarray) else np.asarray(vector)
        except ValueError as exc:  # ragged lists: numpy cannot make an array of them
            raise InvalidVector(f"search takes one vector, a flat list of numbers: {exc}") from exc
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
    ) -> UpdateResult:
        """Embed `texts` and upsert them (text in payload["text"]); a retry is not embedded again."""
        text_list, checked, merged = check_texts(texts, ids, payloads)
        key = check_idempotency_key(idempotency_key)
        if key is not None and (done := self._recalled(key)) is not None:
            return UpdateResult(done, len(checked))  # a retry: nothing embedded again
        tokens = token_vectors_of(self)
        if not self.config.has_dense and not self.text_vectors() and not tokens:
            raise InvalidParameter(
                f"collection {self.name!r} has no dense vector, no sparse vector with an analyzer and "
                "no multi vector with an encoder: add(texts) has nothing to make; upsert vectors instead"
            )
        vectors: Any = (
            self.embedder().encode(text_list, batch_size=batch_size, progress=progress)
            if self.config.has_dense
            else None
        )
        if tokens:  # each multi vector with an encoder: one token matrix per text
            made = {
                name: token_encoder_of(self, name).encode_documents(
                    text_list, batch_size=batch_size, progress=progress
                )
                for name in tokens
            }
            vectors = made if vectors is None else {self.config.dense_name: vectors, **made}
        return self._write_texts(text_list, checked, vectors, merged, key)

    def query(
        self: _Parts,
        text: str,
        k: int = 10,
        *,
        embedder: Embedder | None = None,
        using: str | None = None,
        mode: str | None = None,
        fusion: str = "rrf",
        weights: Sequence[float] | None = None,
        **search_args: Any,
    ) -> list[Hit]:
        """Embed `text` with the collection's embedder and search; refuses any other embedder.

        `using="bm25"` searches that sparse vector instead (its analyzer makes the query), and
        `using=` a multi vector with an encoder searches it by MaxSim (the encoder makes the query's
        token matrix, e.g. ColBERT's 32 rows);
        `mode="hybrid"` searches the dense vector and every sparse vector that has an analyzer, and
        fuses the lists (`fusion`: "rrf", "dbsf" or "weighted"), each taken to a depth of
        max(100, k + offset)."""
        if not isinstance(text, str) or not text:
            raise InvalidParameter("query text must be a non-empty string")
        if mode not in (None, "dense", "hybrid"):
            raise InvalidParameter(f"mode {mode!r} is unknown; use 'dense' or 'hybrid'")
        if using is not None and mode is not None:
            raise InvalidParameter("give using= (one vector) or mode= (several), not both")
        if weights is not None and (mode != "hybrid" or fusion != "weighted"):
            raise InvalidParameter("weights= goes with mode='hybrid', fusion='weighted'")
        check_weights(weights)
        if using is not None and using in self.config.multi:
            matrix = token_encoder_of(self, using).encode_queries([text])[0]
            return self.search_multi(using, matrix, k, **search_args)
        if using is not None and (using != self.config.dense_name or not self.config.has_dense):
            return self.search_text(using, text, k, **search_args)
        if using is None and mode is None and not self.config.has_dense:
            from vectorforge.multivector import pages

            vectors = self.config.vectors_spec()
            if (found := pages.collection_page_encoder(vectors)) is not None:  # a page collection
                return pages.page_query(self, vectors, text, k, found, search_args)
        if not self.config.has_dense:
            encoded = token_vectors_of(self)
            names = ", ".join(repr(v) for v in self.text_vectors() + encoded) or "none"
            paged = {"patches", "rows"} <= set(self.config.multi)
            raise InvalidParameter(
                f"collection {self.name!r} has no dense vector; query one of its sparse vectors"
                f"{' or multi vectors' if encoded else ''}: query(text, using=...) with one of {names}"
                + ("; or, for pages, query_pages(text, encoder=...) with a page encoder" if paged else "")
            )
        emb = self.embedder()
        if embedder is not None and embedder.info != emb.info:
            raise EmbedderMismatch(
                f"query embedder {embedder.info.model} ({embedder.info.version}) is not the model that made "
                f"collection {self.name!r} ({emb.info.model}, {emb.info.version})",
                expected=emb.info.model_dump(),
                got=embedder.info.model_dump(),
            )
        vector = emb.encode([text])[0]
        if mode != "hybrid":
            return self.search(vector, k, **search_args)
        k, offset = check_k_offset(k, search_args.pop("offset", 0))
        depth = max(100, k + offset)
        lists = [self.search(vector, depth, **search_args)]
        options = {key: value for key, value in search_args.items() if key != "params"}
        lists += [self.search_text(name, text, depth, **options) for name in self.text_vectors()]
        by_id = {hit.id: hit for hits in reversed(lists) for hit in hits}
        fused = fuse([{h.id: h.score for h in hits} for hits in lists], fusion, weights=weights)
        chosen = list(fused.items())[offset : offset + k]
        return [replace(by_id[pid], score=score) for pid, score in chosen]

    def add_pages(
        self: _Parts,
        pdf_path: str | Path,
        *,
        encoder: PageEncoder | str | None = None,
        source: str | None = None,
        dpi: int = 96,
        batch_size: int = 4,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        """Render, embed and upsert every page of a PDF (`vectorforge.multivector.pages.add_pages`)."""
        from vectorforge.multivector import pages

        key = check_idempotency_key(idempotency_key)
        options: dict[str, Any] = {"source": source, "dpi": dpi, "batch_size": batch_size}
        return pages.page_add(
            self, self.config.vectors_spec(), pdf_path, encoder, idempotency_key=key, **options
        )

    def query_pages(
        self: _Parts,
        text: str,
        k: int = 10,
        *,
        encoder: PageEncoder | str | None = None,
        depth: int | None = None,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Hit]:
        """The pages that best match `text` (`vectorforge.multivector.pages.query_pages`)."""
        from vectorforge.multivector import pages

        options: dict[str, Any] = {"depth": depth, "offset": offset, "filter": filter, "params": params}
        options |= {"with_payload": with_payload, "with_vectors": with_vectors, "consistency": consistency}
        return pages.page_query(self, self.config.vectors_spec(), text, k, encoder, options)


def check_payload(payload: Any) -> dict[str, Any]:
    """A payload given to a payload update: one JSON object (checked as an upsert checks it)."""
    if not isinstance(payload, dict):
        raise InvalidPayload(f"payload must be a JSON object (a dict), not {type(payload).__name__}")
    check_payloads([payload], 1)
    return dict(payload)


def _chosen(
    ids: Sequence[PointId] | None, filter: dict[str, Any] | None
) -> tuple[list[PointId] | None, dict[str, Any] | None]:
    """The points a payload update names: ids and/or a filter (one at least; {} is every point),
    both checked before anything is written."""
    if ids is None and filter is None:
        raise InvalidParameter("a payload update needs ids=[...] or filter={...}: the points to change")
    checked = check_ids(ids, unique=False) if ids is not None else None
    if filter is not None:
        parse_filter(filter)
    return checked, filter


def token_vectors_of(col: _Parts) -> list[str]:
    """The multi vectors of `col` that a token encoder fills from text."""
    return sorted(name for name, spec in col.config.multi.items() if spec.encoder is not None)


def token_encoder_of(col: _Parts, using: str) -> TokenEncoder:
    """The token encoder of multi vector `using` (InvalidParameter if it has none)."""
    spec = col.config.multi.get(using)
    if spec is None:
        raise no_vector(col.config, using, "multi")
    if spec.encoder is None:
        raise InvalidParameter(
            f"multi vector {using!r} has no encoder: search it with a token matrix, "
            f"search(tokens, using={using!r}), or create it as vf.Multi(dim=..., encoder=NAME)"
        )
    return checked_token_encoder(spec.encoder, spec.dim)


def checked_token_encoder(name: str, dim: int) -> TokenEncoder:
    """The token encoder registered as `name`, refused unless it makes `dim`-wide tokens."""
    import vectorforge.multivector  # noqa: F401  (registers its encoders: ColBERT)

    encoder = get_token_encoder(name)  # InvalidParameter naming the registered ones
    if encoder.dim != dim:
        raise DimensionMismatch(
            f"vf.Multi(dim={dim}) but token encoder {name!r} makes {encoder.dim}-dimensional tokens",
            expected=encoder.dim,
            got=dim,
        )
    return encoder


def analyzer_of(col: _Parts, using: str) -> Analyzer:
    """The analyzer of sparse vector `using` (InvalidParameter if it has none: a weights-only vector)."""
    spec = col.sparse_spec(using)
    if spec.analyzer is None:
        raise InvalidParameter(f"sparse vector {using!r} has no analyzer: search it with a SparseVector")
    return get_analyzer(spec.analyzer)


def no_vector(config: CollectionConfig, using: str, kind: str) -> InvalidParameter:
    """The error for a named vector of `kind` that the collection lacks."""
    known = ", ".join(repr(v) for v in config.vector_names() if config.vector_kind(v) == kind)
    example = '"bm25": vf.Sparse()' if kind == "sparse" else '"tokens": vf.Multi(dim=128)'
    return InvalidParameter(
        f"collection {config.name!r} has no {kind} vector {using!r} (it has: {known or 'none'}); named "
        f"vectors are set at creation: create_collection(..., vectors={{..., {example}}})"
    )
