"""The public API, once: what every database and collection offers, wherever it runs.

`DatabaseAPI` and `CollectionAPI` are the protocols that the embedded engine (`engine/`), the
sharded and replicated collections (`cluster/`) and the HTTP client (`remote/`) implement; mypy
checks each implementation against them (`connect.py`), and `vf.connect()` returns a `DatabaseAPI`.
The docstrings here are the reference for every method; an implementation's own docstring says only
what is particular to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypedDict, Unpack

from vectorforge.embed.tokens import PageEncoder
from vectorforge.types import Hit, PointId, Record, ScrollPage, UpdateResult

__all__ = ["CollectionAPI", "CollectionSettings", "DatabaseAPI", "SearchOptions"]


class SearchOptions(TypedDict, total=False):
    """The keyword options every search takes (as in `CollectionAPI.search`); internal protocols
    name them once with `**options: Unpack[SearchOptions]`."""

    offset: int
    filter: dict[str, Any] | None
    params: dict[str, Any] | None
    with_payload: bool
    with_vectors: bool
    consistency: str | None


class CollectionSettings(TypedDict, total=False):
    """`create_collection`'s settings by keyword (`get_or_create_collection` takes them so)."""

    dim: int | None
    metric: Any
    index: Any
    index_params: dict[str, Any] | None
    embedder: str | None
    max_segment_points: int | None
    shards: int
    sharding: str
    shard_key: str | None
    n_probe: int | None
    replicas: int
    write_quorum: str
    sparse: dict[str, Any] | None
    vectors: dict[str, Any] | None


class CollectionAPI(Protocol):
    """A collection of points (id, vector, payload), searchable by vector and filterable by payload."""

    @property
    def name(self) -> str: ...

    # -- writes ---------------------------------------------------------------------------------
    def upsert(
        self,
        ids: Sequence[PointId],
        vectors: Any,
        payloads: Sequence[dict[str, Any] | None] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        """Insert or replace points; returns once the write is durable: an `UpdateResult` (the
        operation's id, a session token, and how many points were written).

        Args:
            ids: one id per point (int from 0 to 2**63-1, or a non-empty str), unique within the call.
            vectors: (n, dim) array or list of lists of numbers; or a dict by vector name: for each
                vector an (n, dim) array, or a list with one vector, `SparseVector` or token matrix
                (tokens x dim) per id, None where a point lacks it (a name left out: every point).
            payloads: one JSON object (or None) per id.
            idempotency_key: unique to this write; a retry with the same key applies nothing and
                returns the first result.

        Every write (upsert, add, delete, the payload updates) returns an `UpdateResult`.
        """
        ...

    def delete(
        self,
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        """Delete points by id and/or filter; `count`: how many existed and were deleted. A filter
        that matches every point is refused."""
        ...

    def set_payload(
        self,
        payload: dict[str, Any],
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        """Merge `payload` into the payload of the points chosen by `ids` and/or `filter` (its keys
        replace theirs, the others stay); vectors are not sent again. `count`: the points changed."""
        ...

    def overwrite_payload(
        self,
        payload: dict[str, Any],
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        """Replace the whole payload of the chosen points with `payload`."""
        ...

    def delete_payload(
        self,
        keys: Sequence[str],
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        """Remove the payload keys `keys` from the chosen points."""
        ...

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[PointId] | None = None,
        payloads: Sequence[dict[str, Any] | None] | None = None,
        *,
        batch_size: int = 64,
        progress: bool = False,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        """Embed `texts` with the collection's embedder and upsert them (text in payload["text"])."""
        ...

    def add_pages(
        self,
        pdf_path: str | Path,
        *,
        encoder: PageEncoder | str | None = None,
        source: str | None = None,
        dpi: int = 96,
        batch_size: int = 4,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        """Render every page of the PDF at `pdf_path` (pypdfium2, `dpi`), embed each page image as
        patch vectors with the page encoder, and upsert one point per page: id "<source>#<page>"
        (pages from 0), payload {"source": source or the file's name, "page": i}, vectors
        "patches" (every patch) and "rows" (one per row of the patch grid). For a page collection
        (`vectorforge.multivector.pages.create_page_collection`): "patches" and "rows" multi
        vectors. `encoder`: a `PageEncoder` (embed/tokens.py), a registered name, or None for the
        "patches" vector's own. A missing or unreadable file, a file that is not a PDF, or a
        collection without the page layout or a page encoder is refused (InvalidParameter, naming
        it) before anything is written."""
        ...

    def query_pages(
        self,
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
        """The `k` pages of a page collection that best match `text`: the query's token matrix
        (the page encoder's `encode_queries`) searches "rows" for `depth` candidates (default
        max(100, 10 (k + offset))), which exact MaxSim on "patches" re-ranks (scores: the
        patches' MaxSim). `query(text)` does this on a collection whose "patches" vector names a
        page encoder; `encoder=` here takes any `PageEncoder` instead."""
        ...

    # -- reads ----------------------------------------------------------------------------------
    def get(
        self,
        ids: Sequence[PointId],
        *,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Record]:
        """The stored points among `ids`, in the order asked; ids that do not exist are left out."""
        ...

    def count(self, filter: dict[str, Any] | None = None, *, consistency: str | None = None) -> int:
        """Number of points, or of those matching `filter`."""
        ...

    def scroll(
        self,
        limit: int = 1000,
        cursor: str | None = None,
        *,
        filter: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> ScrollPage:
        """Points in id order (ints, then strs), `limit` at a time; pass `next_cursor` to continue."""
        ...

    def search(
        self,
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
        """The `k` points most similar to `vector` (after skipping `offset`), best first; scores are
        higher-is-better. `filter` gives the true top-k of the matching points; `consistency` is
        "strong" (default), "bounded", "session" or "eventual". `using` names the vector to search
        (default: the dense one): a sparse one takes a `SparseVector` (BM25 or dot product), a multi
        one a token matrix (exact MaxSim)."""
        ...

    def search_batch(
        self,
        vectors: Any,
        k: int = 10,
        *,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[list[Hit]]:
        """`search` for each row of `vectors` (at most 1,024 queries, 100,000 hits in all)."""
        ...

    def query(
        self,
        text: str,
        k: int = 10,
        *,
        using: str | None = None,
        mode: str | None = None,
        fusion: str = "rrf",
        weights: Sequence[float] | None = None,
        **search_args: Any,
    ) -> list[Hit]:
        """Embed `text` with the collection's embedder and search (`search_args` as in `search`).

        `using="bm25"` searches that sparse vector instead; `mode="hybrid"` searches the dense
        vector and every sparse one and fuses the lists (`fusion`: "rrf", "dbsf" or "weighted";
        `weights`: for "weighted", one per list, the dense one first, then the sparse ones by name).
        On a page collection (no dense vector; "patches" names a page encoder) it is
        `query_pages(text, k, ...)`, which also takes `depth=`."""
        ...

    def create_payload_index(self, field: str, schema: str = "keyword") -> None:
        """Index payload key `field` on every segment now and from now on (listed in `info()`), so
        no filter of it pays for the build. `schema`: Qdrant's names, recorded; the index serves
        every filter of the key whatever its values. Keys without one are indexed on first use."""
        ...

    def delete_payload_index(self, field: str) -> None:
        """Stop building `field`'s index up front (filters of it still work)."""
        ...

    # -- upkeep ---------------------------------------------------------------------------------
    def flush(self) -> None:
        """Seal what is in memory into segments."""
        ...

    def optimize(self) -> bool:
        """Merge small or mostly-dead segments now; True if anything merged."""
        ...

    def repair(self) -> dict[str, Any]:
        """Anti-entropy: compare the replicas and rewrite any that differ; a report."""
        ...

    def reshard(
        self, shards: int, *, n_probe: int | None = None, batch_size: int = 100, progress: bool = False
    ) -> None:
        """Move every point to `shards` shards while reads and writes go on (sharded collections)."""
        ...

    def info(self) -> dict[str, Any]:
        """Settings, counts and sizes."""
        ...

    def snapshot(self, path: str | Path) -> Path:
        """Write the whole collection into one file that `DatabaseAPI.restore` reads."""
        ...


class DatabaseAPI(Protocol):
    """Collections by name: in memory, in a data folder, on a Ray cluster or behind a server."""

    def create_collection(
        self,
        name: str,
        dim: int | None = None,
        metric: Any = "cosine",
        index: Any = "hnsw",
        *,
        index_params: dict[str, Any] | None = None,
        embedder: str | None = None,
        max_segment_points: int | None = None,
        shards: int = 1,
        sharding: str = "hash",
        shard_key: str | None = None,
        n_probe: int | None = None,
        replicas: int = 1,
        write_quorum: str = "majority",
        sparse: dict[str, Any] | None = None,
        vectors: dict[str, Any] | None = None,
    ) -> CollectionAPI:
        """Create an empty collection (see docs/guide.md and docs/distributed.md for every option)."""
        ...

    def get_collection(self, name: str) -> CollectionAPI:
        """The collection called `name`, or that the alias `name` points at (its `.name` is the
        collection's own); CollectionNotFound if there is none. Every call that takes a collection
        name takes an alias."""
        ...

    def get_or_create_collection(self, name: str, **settings: Unpack[CollectionSettings]) -> CollectionAPI:
        """The collection `name`, created with `settings` if there is none (Chroma's name for it).
        An existing collection whose settings differ from those given is refused (ConflictError,
        naming the setting), never silently returned."""
        ...

    def list_collections(self) -> list[str]:
        """Names of all collections (that the caller may see), sorted."""
        ...

    def has_collection(self, name: str) -> bool: ...

    def delete_collection(self, name: str) -> None:
        """Delete a collection and its data. Refused (ConflictError) for an alias, and for a
        collection that aliases point at: the error names them; switch or delete them first."""
        ...

    def restore(self, path: str | Path, name: str | None = None) -> CollectionAPI:
        """Bring back a collection from a snapshot file, as `name` (default: its own name); the
        snapshot is checked part against part, within limits, before it opens."""
        ...

    # -- aliases --------------------------------------------------------------------------------
    # An alias is a second name for a collection (Qdrant's and Milvus's aliases): clients query
    # "docs" while "docs" moves from one collection to the next in one write. Aliases and
    # collections share one namespace and follow the same name rules.

    def create_alias(self, alias: str, collection: str) -> None:
        """Name `collection` also `alias`. Refused if `alias` is an alias already
        (AliasAlreadyExists) or a collection's name (ConflictError); `collection` must be a
        collection that exists (CollectionNotFound), not another alias (InvalidParameter)."""
        ...

    def switch_alias(self, alias: str, collection: str) -> None:
        """Point the existing `alias` at `collection` instead: one durable write, after which every
        lookup of `alias` finds `collection`; a lookup during it finds the old one or the new one,
        never none. AliasNotFound if `alias` is not an alias."""
        ...

    def delete_alias(self, alias: str) -> None:
        """Remove `alias`; its collection stays. AliasNotFound if `alias` is not an alias."""
        ...

    def list_aliases(self) -> dict[str, str]:
        """Every alias (that the caller may see) and the collection it points at, sorted by alias."""
        ...

    def close(self) -> None:
        """Seal and close every collection and release the data folder (or the connection)."""
        ...

    def __enter__(self) -> DatabaseAPI: ...

    def __exit__(self, *exc: object) -> None: ...
