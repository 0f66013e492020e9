"""The vectorforge app served in this process, for the HTTP client: a sync httpx transport that hands
each request to the ASGI app through httpx's own `ASGITransport` (no socket, no server process)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


class InProcessTransport(httpx.BaseTransport):
    """Runs each request on a fresh event loop (the client is synchronous); the app's sync routes
    run in its thread pool as under uvicorn."""

    def __init__(self, app: Any) -> None:
        # An error in a route becomes the 500 a real server answers, not an exception in the client.
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run(send())
