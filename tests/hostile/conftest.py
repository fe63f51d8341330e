"""Fixtures of the hostile-load suite: the service fixtures of tests/serve, reused."""

from __future__ import annotations

from serve.conftest import image_server, live_service, make_service, model_dirs, service

__all__ = ["image_server", "live_service", "make_service", "model_dirs", "service"]
