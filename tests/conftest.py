"""Shared pytest setup. Area-specific fixtures live in each tests/<area>/conftest.py."""

import os

# Two cores: keep torch from oversubscribing when tests run beside other work.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Idle OpenMP threads sleep instead of spinning: the suite shares two cores with its servers.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# The frozen recipe caches backbone features; tests never touch the user's cache.
if "KARUNG_FEATURE_CACHE" not in os.environ:
    import tempfile

    os.environ["KARUNG_FEATURE_CACHE"] = tempfile.mkdtemp(prefix="karung-test-features-")
