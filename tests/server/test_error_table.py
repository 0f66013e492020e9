"""Every error class crosses HTTP as itself, with its status code (the table is derived, not listed)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import httpx
import pytest

import vectorforge as vf
from tests.serverproc import start_server
from vectorforge import errors as e
from vectorforge.remote._client import _error_from
from vectorforge.server.errors import error_response, status_of

ALL = e._subclasses(e.VectorForgeError)
EXPECTED_STATUS = {
    e.AuthenticationError: 401,
    e.PermissionDenied: 403,
    e.RequestTooLarge: 413,
    e.RequestTimeout: 408,
    e.NotFoundError: 404,
    e.ConflictError: 409,
    e.InvalidInputError: 422,
    e.UsageError: 400,
    e.UnavailableError: 503,
    e.WriteNotDurable: 507,
    e.StorageError: 500,
    e.VectorForgeError: 500,
}


def _instance(cls: type[e.VectorForgeError]) -> e.VectorForgeError:
    required = {
        name: {"expected": 3, "got": 4}.get(name, "x")
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    }
    return cls(f"a {cls.__name__} happened", **required, where="here")


def test_the_table_holds_every_class_a_replica_can_raise() -> None:
    names = {cls.__name__ for cls in ALL}
    assert {"StaleEpoch", "ReplicaLost", "ReplicaOutOfSync", "WriteNotDurable", "CollectionFailed"} <= names
    assert all(getattr(vf, cls.__name__) is cls for cls in ALL)  # every class is public too


@pytest.mark.parametrize("cls", ALL, ids=[c.__name__ for c in ALL])
def test_every_class_round_trips_with_its_status(cls: type[e.VectorForgeError]) -> None:
    err = _instance(cls)
    response = error_response(err)
    expected = next(code for base, code in EXPECTED_STATUS.items() if isinstance(err, base))
    assert response.status_code == status_of(err) == expected
    back = _error_from(httpx.Response(response.status_code, content=bytes(response.body)))
    assert type(back) is cls
    assert str(back) == str(err) and back.details == err.details
    assert json.loads(bytes(response.body))["error"] == cls.__name__


def test_a_real_server_names_a_vacuous_delete_and_a_bad_key(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        with vf.connect(server.url) as db:
            col = db.create_collection("r", dim=4, index="flat", replicas=3)
            col.upsert([1], [[1.0, 0, 0, 0]])
            with pytest.raises(vf.InvalidParameter, match="would delete every point"):
                col.delete(filter={"must": []})
            with pytest.raises(vf.InvalidParameter, match="Idempotency-Key"):
                col.upsert([2], [[1.0, 0, 0, 0]], idempotency_key="\\n" * 300)
    finally:
        server.stop()
