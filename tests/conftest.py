"""Shared pytest setup. Area-specific fixtures live in each tests/<area>/conftest.py."""

import os

# Two cores: keep torch from oversubscribing when tests run beside other work.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Idle OpenMP threads sleep instead of spinning: the suite shares two cores with its servers.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Diverse review sampling queues a random share of photos; tests that count queue items must not
# see them, so it is off unless a test turns it on (tests/loop/test_diverse.py).
os.environ.setdefault("KARUNG_REVIEW_DIVERSE_SHARE", "0")

# The frozen recipe caches backbone features; tests never touch the user's cache.
if "KARUNG_FEATURE_CACHE" not in os.environ:
    import tempfile

    os.environ["KARUNG_FEATURE_CACHE"] = tempfile.mkdtemp(prefix="karung-test-features-")
