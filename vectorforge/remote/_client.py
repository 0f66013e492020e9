"""The HTTP client: `vf.connect("http://...")` returns a `RemoteDatabase` with the embedded API.

It knows only `vectorforge.types` and `vectorforge.errors`: an error response carries the exception's
class name, message and details, and is raised here as the same class the embedded engine raises.
Reads and writes are retried on connection failures and 503s with exponential back-off: every write
(upsert, delete, add) carries an Idempotency-Key header, fresh per call and the same on its retries,
so a retry after a lost answer is applied once and returns the first result. Other calls (create,
delete or restore a collection) are sent once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Unpack

import httpx
import msgpack

from vectorforge import errors as e
from vectorforge.api import CollectionSettings
from vectorforge.embed.tokens import PageEncoder
from vectorforge.engine.fusion import check_weights
from vectorforge.types import (
    CollectionConfig,
    Dense,
    Hit,
    Multi,
    PointId,
    Record,
    ScrollPage,
    Sparse,
    SparseVector,
    UpdateResult,
    check_name,
)
from vectorforge.wire import (
    MSGPACK,
    hit_from_dict,
    named_to_wire,
    record_from_dict,
    sparse_to_wire,
    to_json,
    update_from_dict,
    vectors_to_wire,
)

__all__ = ["RemoteCollection", "RemoteDatabase"]


class RemoteDatabase:
    """A vectorforge server, used like an embedded `Database`.

    Args:
        url: the server, e.g. "http://127.0.0.1:6333".
        api_key: sent as `Authorization: Bearer <key>`.
        timeout: seconds per request (connect, read, write).
        retries: extra attempts for idempotent calls after a connection error or a 503.
        verify: TLS verification: True, False, or a CA bundle path.
        transport: an httpx transport to send requests through (a proxy, a mount, a test double).
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self.retries = retries
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            verify=verify,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            transport=transport,
        )
        self._closed = False
        # One handle per name, as the embedded database keeps one Collection per name.
        self._handles: dict[str, RemoteCollection] = {}

    def _handle(self, name: str, info: dict[str, Any]) -> RemoteCollection:
        handle = self._handles.get(name)
        if handle is None or handle._closed:
            handle = self._handles[name] = RemoteCollection(self, name, info)
        else:
            handle._info = info
        return handle

    # -- transport --------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        """Send one request; map failures to vectorforge errors."""
        if self._closed:
            raise e.UsageError("the client is closed; connect again with vf.connect(url)")
        if "json" in kwargs:  # encoded here: a NaN or a set in a payload is the caller's error, said so
            try:
                kwargs["content"] = json.dumps(kwargs.pop("json"), allow_nan=False).encode()
            except (TypeError, ValueError) as exc:
                raise e.InvalidPayload(
                    f"the request cannot be sent as JSON ({exc}): payloads and filters hold JSON values "
                    "only (no NaN or infinity, no sets or objects)"
                ) from None
            kwargs["headers"] = {"Content-Type": "application/json", **kwargs.get("headers", {})}
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    time.sleep(min(2.0, 0.05 * 2**attempt))
                    continue
                raise e.ServerUnavailable(
                    f"cannot reach the vectorforge server at {self.url}: {exc}"
                ) from exc
            if response.status_code == 503 and attempt + 1 < attempts:
                time.sleep(min(2.0, 0.05 * 2**attempt))
                continue
            if response.status_code >= 400:
                raise _error_from(response)
            return response
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> Any:
        return self.request(method, path, idempotent=idempotent, **kwargs).json()

    def _msgpack(
        self, method: str, path: str, body: dict[str, Any], *, idempotent: bool = True, **kwargs: Any
    ) -> Any:
        """A hot call through its msgpack route (`/msgpack/...`: the same body and answer as the
        JSON route, without JSON's cost on either side). What msgpack cannot carry (an integer
        beyond 64 bits, a key that is not a str) goes to the JSON route, so that the server
        names the problem as it does for every client."""
        try:
            content = msgpack.packb(body, use_bin_type=True)
        except (TypeError, ValueError, OverflowError):
            return self._json(method, path, idempotent=idempotent, json=body, **kwargs)
        headers = {"Content-Type": MSGPACK, "Accept": MSGPACK, **kwargs.pop("headers", {})}
        answer = self.request(
            method, "/msgpack" + path, idempotent=idempotent, content=content, headers=headers, **kwargs
        )
        return msgpack.unpackb(answer.content, raw=False)

    # -- collections ------------------------------------------------------------------------------
    def create_collection(
        self,
        name: str,
        dim: int | None = None,
        metric: str = "cosine",
        index: str = "hnsw",
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
    ) -> RemoteCollection:
        """Create a collection on the server (see `Database.create_collection`)."""
        check_name(name)
        body = _create_body(
            dim=dim,
            metric=metric,
            index=index,
            index_params=index_params,
            embedder=embedder,
            max_segment_points=max_segment_points,
            shards=shards,
            sharding=sharding,
            shard_key=shard_key,
            n_probe=n_probe,
            replicas=replicas,
            write_quorum=write_quorum,
            sparse=sparse,
            vectors=vectors,
        )
        info = self._json("PUT", f"/collections/{name}", idempotent=False, json=body)
        return self._handle(name, info)

    def get_or_create_collection(self, name: str, **settings: Unpack[CollectionSettings]) -> RemoteCollection:
        check_name(name)
        body = _create_body(**settings)
        info = self._json(
            "PUT", f"/collections/{name}", idempotent=True, json=body, params={"exist_ok": "true"}
        )
        return self._handle(str(info.get("name", name)), info)

    def get_collection(self, name: str) -> RemoteCollection:
        check_name(name)
        info = self._json("GET", f"/collections/{name}")
        # Through an alias: the handle of the collection it points at now, as embedded.
        return self._handle(str(info.get("name", name)), info)

    def list_collections(self) -> list[str]:
        return list(self._json("GET", "/collections")["collections"])

    def has_collection(self, name: str) -> bool:
        return check_name(name) in self.list_collections() or name in self.list_aliases()

    def delete_collection(self, name: str) -> None:
        check_name(name)
        self._json("DELETE", f"/collections/{name}", idempotent=False)
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle._closed = True

    def restore(self, path: str | Path, name: str | None = None) -> RemoteCollection:
        """Upload a snapshot file and restore it as `name` (default: the name stored in it)."""
        source = Path(path)
        if not source.is_file():
            raise e.InvalidParameter(f"snapshot {source} does not exist or is not a file")
        if name is None:
            name = _snapshot_name(source)
        check_name(name)
        info = self._json(
            "POST",
            f"/collections/{name}/restore",
            idempotent=False,
            content=source.read_bytes(),
            headers={"Content-Type": "application/x-tar"},
        )
        return self._handle(name, info)

    # -- aliases --------------------------------------------------------------------------------
    def create_alias(self, alias: str, collection: str) -> None:
        check_name(alias, "alias")
        check_name(collection)
        self._json("PUT", f"/aliases/{alias}", idempotent=False, json={"collection": collection})

    def switch_alias(self, alias: str, collection: str) -> None:
        check_name(alias, "alias")
        check_name(collection)
        # Idempotent: the same switch twice leaves the same state, so a lost answer may be retried.
        self._json("POST", f"/aliases/{alias}/switch", json={"collection": collection})

    def delete_alias(self, alias: str) -> None:
        check_name(alias, "alias")
        self._json("DELETE", f"/aliases/{alias}", idempotent=False)

    def list_aliases(self) -> dict[str, str]:
        return dict(self._json("GET", "/aliases")["aliases"])

    def close(self) -> None:
        if not self._closed:
            self._http.close()
            self._closed = True

    def __enter__(self) -> RemoteDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteDatabase({self.url!r})"


class RemoteCollection:
    """A collection on a server, with the methods of the embedded `Collection`."""

    def __init__(self, db: RemoteDatabase, name: str, info: dict[str, Any]) -> None:
        self._db = db
        self.name = name
        self._info = info
        self._closed = False
        # The session token: the server's timestamp of this object's last write; "session" reads
        # send it, so that they wait for this client's writes (not for everyone's).
        self.session_ts = 0

    @property
    def dim(self) -> int | None:
        """The dense vector's length (None: the collection has no dense vector)."""
        dim = self._info["dim"]
        return None if dim is None else int(dim)

    @property
    def config(self) -> CollectionConfig:
        """The collection's settings, as the server reported them."""
        keys = ("name", "dim", "metric", "index", "index_params", "embedder", "max_segment_points")
        settings = {k: self._info[k] for k in keys if k in self._info}
        if settings.get("dim") is None:  # no dense vector: the placeholder the server keeps
            settings.update(dim=1, metric="l2", index="flat", has_dense=False)
        return CollectionConfig(**settings)

    def __repr__(self) -> str:
        return f"RemoteCollection({self.name!r}, dim={self.dim}, server={self._db.url!r})"

    def _post(self, path: str, body: dict[str, Any], *, idempotent: bool = True, **kwargs: Any) -> Any:
        self._check_open()
        return self._db._json(
            "POST", f"/collections/{self.name}{path}", idempotent=idempotent, json=body, **kwargs
        )

    def _check_open(self) -> None:
        if self._closed:
            raise e.UsageError(f"collection {self.name!r} is closed; get it again from an open database")

    def _read(self, path: str, body: dict[str, Any], *, fast: bool = False) -> Any:
        """A read (`fast`: through its msgpack route)."""
        if body.get("consistency") == "session":
            body["session_ts"] = self.session_ts
        if fast:
            self._check_open()
            return self._db._msgpack("POST", f"/collections/{self.name}{path}", body)
        return self._post(path, body)

    def _wrote(self, answer: dict[str, Any]) -> dict[str, Any]:
        self.session_ts = max(self.session_ts, int(answer.get("seq", 0)))
        return answer

    # -- writes -----------------------------------------------------------------------------------
    def upsert(
        self,
        ids: Sequence[PointId],
        vectors: Any,
        payloads: Sequence[dict[str, Any] | None] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        self._check_open()
        wire = named_to_wire(vectors) if isinstance(vectors, dict) else _wire(vectors)
        body = {"ids": _ids(ids), "vectors": wire, "payloads": _list_or_none(payloads)}
        answer = self._db._msgpack(
            "PUT", f"/collections/{self.name}/points", body, headers=_key(idempotency_key)
        )
        return update_from_dict(self._wrote(answer))

    def delete(
        self,
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        body = {"ids": None if ids is None else _ids(ids), "filter": filter}
        answer = self._post("/points/delete", body, headers=_key(idempotency_key))
        return update_from_dict(self._wrote(answer))

    def set_payload(
        self,
        payload: dict[str, Any],
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        return self._payload("POST", "/points/payload", {"payload": payload}, ids, filter, idempotency_key)

    def overwrite_payload(
        self,
        payload: dict[str, Any],
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        return self._payload("PUT", "/points/payload", {"payload": payload}, ids, filter, idempotency_key)

    def delete_payload(
        self,
        keys: Sequence[str],
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        body = {"keys": keys if isinstance(keys, str) else list(keys)}  # a str: the server refuses it
        return self._payload("POST", "/points/payload/delete", body, ids, filter, idempotency_key)

    def create_payload_index(self, field: str, schema: str = "keyword") -> None:
        self._check_open()
        body = {"field_name": field, "field_schema": schema}
        self._db._json("PUT", f"/collections/{self.name}/index", json=body)

    def delete_payload_index(self, field: str) -> None:
        self._check_open()
        if not isinstance(field, str) or not field or "/" in field:
            raise e.InvalidParameter(f"a payload index needs a payload key (1-256 characters), not {field!r}")
        self._db._json("DELETE", f"/collections/{self.name}/index/{field}")

    def _payload(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        ids: Sequence[PointId] | None,
        filter: dict[str, Any] | None,
        key: str | None,
    ) -> UpdateResult:
        self._check_open()
        body = {**body, "ids": None if ids is None else _ids(ids), "filter": filter}
        answer = self._db._json(
            method,
            f"/collections/{self.name}{path}",
            json=body,
            headers=_key(key),
            idempotent=key is not None,
        )
        return update_from_dict(self._wrote(answer))

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
        body = {
            "texts": list(texts),
            "ids": None if ids is None else _ids(ids),
            "payloads": _list_or_none(payloads),
        }
        return update_from_dict(self._wrote(self._post("/points/add", body, headers=_key(idempotency_key))))

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
        """The PDF is rendered and its pages embedded here, in the client (the server has no page
        encoder, and needs none): `encoder` is a `PageEncoder` object, or a name registered in this
        process (None: the name the "patches" vector was created with); then the pages go to the
        server as one upsert (see `CollectionAPI.add_pages`)."""
        from vectorforge.multivector import pages

        vectors = self.info().get("vectors") or {}
        options: dict[str, Any] = {"source": source, "dpi": dpi, "batch_size": batch_size}
        return pages.page_add(self, vectors, pdf_path, encoder, idempotency_key=idempotency_key, **options)

    def flush(self) -> None:
        self._post("/flush", {})

    def optimize(self) -> bool:
        return bool(self._post("/optimize", {})["merged"])

    def repair(self) -> dict[str, Any]:
        """Anti-entropy on the server (see `ShardedCollection.repair`)."""
        result: dict[str, Any] = self._post("/repair", {})
        return result

    def reshard(
        self, shards: int, *, n_probe: int | None = None, batch_size: int = 100, progress: bool = False
    ) -> None:
        """Reshard on the server (see `ShardedCollection.reshard`); waits for it, however long it takes."""
        body = {"shards": shards, "n_probe": n_probe, "batch_size": batch_size}
        self._check_open()
        self._db._json("POST", f"/collections/{self.name}/reshard", idempotent=False, json=body, timeout=None)

    # -- reads ------------------------------------------------------------------------------------
    def count(self, filter: dict[str, Any] | None = None, *, consistency: str | None = None) -> int:
        return int(self._read("/points/count", {"filter": filter, "consistency": consistency})["count"])

    def get(
        self,
        ids: Sequence[PointId],
        *,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Record]:
        body = {"ids": _ids(ids), "with_payload": with_payload, "with_vectors": with_vectors}
        body["consistency"] = consistency
        return [record_from_dict(r) for r in self._read("/points/get", body)["records"]]

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
        body = {
            "limit": limit,
            "cursor": cursor,
            "filter": filter,
            "with_payload": with_payload,
            "with_vectors": with_vectors,
            "consistency": consistency,
        }
        out = self._read("/points/scroll", body)
        return ScrollPage([record_from_dict(r) for r in out["records"]], out["next_cursor"])

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
        body = {
            "vector": _query_vector(vector, using),
            "using": using,
            **_options(k, offset, filter, params, with_payload, with_vectors, consistency),
        }
        return [hit_from_dict(h) for h in self._read("/points/search", body, fast=True)["hits"]]

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
        options = _options(k, offset, filter, params, with_payload, with_vectors, consistency)
        body = {"vectors": _wire(vectors), **options}
        out = self._read("/points/search/batch", body, fast=True)
        return [[hit_from_dict(h) for h in hits] for hits in out["results"]]

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
        if using is None and mode is None and self._info.get("dim") is None:
            from vectorforge.multivector import pages

            vectors = self._vectors()
            if (found := pages.collection_page_encoder(vectors)) is not None:  # a page collection
                return pages.page_query(self, vectors, text, k, found, search_args)
        body = {"text": text, "k": k, "using": using, "mode": mode, "fusion": fusion, **search_args}
        if weights is not None:
            check_weights(weights)  # NaN has no JSON form: refused here with the server's message
            body["weights"] = list(weights)
        return [hit_from_dict(h) for h in self._read("/points/query", body)["hits"]]

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
        """The query is encoded here, in the client (`encoder`, or the name the "patches" vector was
        created with, registered in this process); its two searches go to the server (see
        `CollectionAPI.query_pages`). `query(text)` does the same on a page collection when this
        process knows its page encoder by name (else the server is asked)."""
        from vectorforge.multivector import pages

        options: dict[str, Any] = {"depth": depth, "offset": offset, "filter": filter, "params": params}
        options |= {"with_payload": with_payload, "with_vectors": with_vectors, "consistency": consistency}
        return pages.page_query(self, self._vectors(), text, k, encoder, options)

    def _vectors(self) -> dict[str, Any]:
        """The collection's vectors and their settings, as the server last reported them (they are
        fixed at creation); asked for when not yet known."""
        if "vectors" not in self._info:
            self.info()
        vectors: dict[str, Any] = self._info.get("vectors") or {}
        return vectors

    # -- maintenance ------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        self._check_open()
        self._info = self._db._json("GET", f"/collections/{self.name}")
        return self._info

    def snapshot(self, path: str | Path) -> Path:
        """Download the collection as one file at `path` (on this machine)."""
        target = Path(path)
        response = self._db.request("POST", f"/collections/{self.name}/snapshot", idempotent=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(response.content)
        tmp.replace(target)
        return target


def _error_from(response: httpx.Response) -> e.VectorForgeError:
    try:
        body = response.json()
        cls = e.error_class(str(body["error"]))
        details = body.get("details") or {}
        try:
            return cls(str(body["message"]), **details)
        except TypeError:  # details that the class does not take: keep the message and the class
            err = e.VectorForgeError.__new__(cls)
            e.VectorForgeError.__init__(err, str(body["message"]), **details)
            return err
    except (ValueError, KeyError, TypeError):
        return e.VectorForgeError(f"server answered {response.status_code}: {response.text[:200]}")


def _plain_spec(spec: Any, kind: bool = True) -> Any:
    """A vector's settings as JSON: vf.Dense / vf.Sparse / vf.Multi (with their kind)."""
    if isinstance(spec, Dense | Sparse | Multi):
        return {"kind": spec.kind, **spec.model_dump(mode="json")} if kind else spec.model_dump(mode="json")
    return spec


def _key(key: str | None) -> dict[str, str]:
    """The Idempotency-Key header of one write: the caller's key, or a fresh one. The same headers
    go with every retry of the call, so a retry after a lost answer is applied once."""
    return {"Idempotency-Key": key if key is not None else uuid.uuid4().hex}


def _ids(ids: Any) -> list[Any]:
    if isinstance(ids, str | bytes | int) or ids is None:
        raise e.InvalidId(f"ids must be a list of ids, not {type(ids).__name__}; wrap a single id in a list")
    return [int(i) if hasattr(i, "dtype") else i for i in ids]


def _list_or_none(items: Any) -> list[Any] | None:
    if items is None:
        return None
    if isinstance(items, dict):
        raise e.InvalidPayload("payloads must be a list with one dict per id, not a single dict")
    return list(items)


def _wire(vectors: Any) -> Any:
    """Bulk vectors go as base64 float32 when they are numeric; anything else is sent as-is for the
    server to refuse with the same error the engine gives."""
    import numpy as np

    try:
        arr = np.asarray(vectors)
    except (TypeError, ValueError):
        return to_json(vectors)
    if arr.dtype.kind in "iuf" and arr.ndim in (1, 2) and arr.size:
        return vectors_to_wire(arr)
    return arr.tolist() if arr.dtype.kind != "O" else to_json(vectors)


def _create_body(**settings: Any) -> dict[str, Any]:
    """The body of PUT /collections/{name}: the settings given, as JSON."""
    body = dict(settings)
    for key in ("metric", "index"):
        if key in body:
            body[key] = str(body[key])
    if body.get("sparse") is not None:
        body["sparse"] = {k: _plain_spec(v, kind=False) for k, v in body["sparse"].items()}
    if body.get("vectors") is not None:
        body["vectors"] = {k: _plain_spec(v) for k, v in body["vectors"].items()}
    return body


def _query_vector(vector: Any, using: str | None) -> Any:
    """A query of a named vector: a sparse one as {"indices", "values"}, a token matrix as base64
    with its shape; a dense one as `_one_vector`."""
    import numpy as np

    if isinstance(vector, SparseVector):
        wire = sparse_to_wire([vector])
        return wire if isinstance(wire, dict) else to_json(vector)
    if isinstance(vector, str):  # text: the server's engine says where it goes
        return vector
    if using is None:
        return _one_vector(vector)
    try:
        ndim = np.ndim(vector)
    except ValueError:  # ragged: the server says what is wrong
        return to_json(vector)
    # The named vector's kind is the server's to know: a matrix goes with its shape, a vector as a list.
    return _wire(vector) if ndim == 2 else to_json(vector)


def _one_vector(vector: Any) -> Any:
    import numpy as np

    arr = np.asarray(vector)
    if arr.ndim != 1:
        raise e.InvalidParameter(f"search takes one vector (1-D); got shape {arr.shape}; use search_batch")
    return _wire(arr)


def _options(
    k: int,
    offset: int,
    filter: Any,
    params: Any,
    with_payload: bool,
    with_vectors: bool,
    consistency: str | None = None,
) -> dict[str, Any]:
    return {
        "consistency": consistency,
        "k": k,
        "offset": offset,
        "filter": filter,
        "params": params,
        "with_payload": with_payload,
        "with_vectors": with_vectors,
    }


def _snapshot_name(path: Path) -> str:
    import json
    import tarfile

    try:
        with tarfile.open(path) as tar:
            member = tar.extractfile("config.json")
            if member is None:
                raise KeyError("config.json")
            return str(json.loads(member.read())["name"])
    except (tarfile.TarError, KeyError, ValueError) as exc:
        raise e.InvalidParameter(f"{path} is not a vectorforge snapshot: {exc}") from exc
