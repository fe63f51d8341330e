"""How the review area plugs into the service built by :func:`karung.serve.app.create_app`.

``create_app`` calls :func:`install` once while building the app (routers, templates) and enters
:func:`running` inside its lifespan, after ``app.state`` holds ``settings``, ``engine``,
``sessions``, ``bank`` and ``models`` (background jobs such as the webhook outbox live there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount the review area's routers on ``app``."""


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """Run the review area's background jobs for the lifetime of the service."""
    yield
