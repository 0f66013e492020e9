"""The FastAPI server: REST + OpenAPI + /metrics, API keys, TLS (`vectorforge serve`)."""

from __future__ import annotations

from vectorforge.extras import missing_extra

with missing_extra("the server"):
    from vectorforge.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
