"""Request body limits: size (413) and the time each part of it may take to arrive (408)."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vectorforge.errors import RequestTimeout, RequestTooLarge, VectorForgeError
from vectorforge.server.deps import DEFAULT_BODY_TIMEOUT
from vectorforge.server.errors import error_response

__all__ = ["BodyLimit"]


class BodyLimit:
    """Refuse request bodies over `max_body` bytes with 413, before they are read into memory, and
    bodies whose next part takes over `read_timeout` seconds to arrive with 408 (a slow sender
    must not hold a connection and a handler for as long as it likes)."""

    def __init__(self, app: ASGIApp, max_body: int, read_timeout: float = DEFAULT_BODY_TIMEOUT) -> None:
        self.app = app
        self.max_body = max_body
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = RequestTooLarge(
            f"request body over {self.max_body // (1024 * 1024)} MiB; send smaller batches",
            limit=self.max_body,
        )
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await error_response(too_large)(scope, receive, send)
            return
        seen = 0
        refusal: VectorForgeError | None = None

        async def limited() -> Message:
            nonlocal seen, refusal
            try:
                async with asyncio.timeout(self.read_timeout):  # wait_for would start a task per part
                    message = await receive()
            except TimeoutError:
                refusal = RequestTimeout(
                    f"the request body did not arrive within {self.read_timeout:g} s", limit=self.read_timeout
                )
                raise refusal from None
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                refusal = too_large
                raise too_large
            return message

        async def guarded(message: Message) -> None:
            if refusal is None:  # past a limit, the app's answer (FastAPI's 400, a 500) gives way
                await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None:
            answer = error_response(refusal)
            if isinstance(refusal, RequestTimeout):  # the rest of the body may still come: start afresh
                answer.headers["connection"] = "close"
            await answer(scope, receive, send)
