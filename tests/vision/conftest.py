"""Fixtures for the vision tests."""

from __future__ import annotations

import pytest
from imagegen import encode, textured


@pytest.fixture
def jpeg_bytes() -> bytes:
    """A small valid JPEG."""
    return encode(textured(), "JPEG", quality=90)
