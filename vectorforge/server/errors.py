"""The one table from exception class to HTTP status, and the handlers that use it.

The body of every error response is `VectorForgeError.to_dict()`: {"error": class name, "message",
"details"}. The client (`vectorforge.remote`) rebuilds the same exception class from it, so code that
catches `vf.CollectionNotFound` works the same embedded and remote.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vectorforge import errors as e

__all__ = [
    "STATUS",
    "error_response",
    "install_error_handlers",
    "status_of",
    "unexpected_error",
    "validation_error",
]

logger = logging.getLogger(__name__)

# Most specific first: the first class an error is an instance of decides.
STATUS: list[tuple[type[e.VectorForgeError], int]] = [
    (e.AuthenticationError, 401),
    (e.PermissionDenied, 403),
    (e.RequestTooLarge, 413),
    (e.RequestTimeout, 408),
    (e.NotFoundError, 404),
    (e.ConflictError, 409),
    (e.InvalidInputError, 422),
    (e.UsageError, 400),
    (e.UnavailableError, 503),
    (e.WriteNotDurable, 507),
    (e.CorruptionError, 500),
    (e.StorageError, 500),
    (e.VectorForgeError, 500),
]


def status_of(exc: e.VectorForgeError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(exc: e.VectorForgeError, root: Path | None = None) -> JSONResponse:
    """The JSON answer for `exc`. Paths under the data folder `root` are cut to their place in it
    (a collection's own layout), and the server's temporary folders are named for what they are:
    no answer tells a client where the server keeps its files."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, e.AuthenticationError) else None
    body = exc.to_dict()
    if root is not None:
        body = _redact(body, root)
    return JSONResponse(body, status_code=status_of(exc), headers=headers)


_TEMPORARY = re.compile(r"(snapshots/upload-[\w-]+\.tar|\.restore-[0-9a-f]+)")


def _redact(value: Any, root: Path) -> Any:
    if isinstance(value, str):
        text = value.replace(f"{root}/collections/", "").replace(f"{root}/", "").replace(str(root), "")
        return _TEMPORARY.sub("the uploaded snapshot", text)
    if isinstance(value, dict):
        return {k: _redact(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, root) for v in value]
    return value


def validation_error(exc: RequestValidationError) -> e.InvalidParameter:
    """What a request body that does not fit its schema (or is not JSON) is called."""
    first: dict[str, Any] = dict(exc.errors()[0]) if exc.errors() else {"loc": (), "msg": "invalid"}
    if first.get("type") == "json_invalid":  # loc is ("body", character offset), not a field
        at = first.get("loc", ("body", "?"))[-1]
        reason = first.get("ctx", {}).get("error", "not JSON")
        return e.InvalidParameter(f"the request body is not valid JSON: {reason} at character {at}")
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    message = f"request field {where or 'body'}: {first.get('msg')}; see /docs for the request schema"
    return e.InvalidParameter(message, errors=len(exc.errors()))


def unexpected_error(exc: Exception, method: str, path: str) -> JSONResponse:
    """A 500 that names the exception's class only (the server log has the rest)."""
    logger.error("unhandled error on %s %s", method, path, exc_info=exc)
    body = e.VectorForgeError(f"internal error ({type(exc).__name__}); the server log has the details")
    return JSONResponse(body.to_dict(), status_code=500)


def install_error_handlers(app: FastAPI, root: Path | None = None) -> None:
    """Map vectorforge errors, request validation errors and stray exceptions to JSON bodies."""

    @app.exception_handler(e.VectorForgeError)
    async def _vf_error(request: Request, exc: e.VectorForgeError) -> JSONResponse:
        return error_response(exc, root)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = e.NotFoundError if exc.status_code == 404 else e.VectorForgeError
        body = cls(f"{exc.detail} ({request.method} {request.url.path})").to_dict()
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_error(exc, request.method, request.url.path)
