"""Process-level settings for CPU-heavy batch jobs (train, evaluate, export).

Kept free of heavy imports: it must run before :mod:`torch` is first imported.
"""

from __future__ import annotations

import os


def prefer_passive_threads() -> None:
    """Let idle OpenMP threads sleep instead of busy-waiting (unless the user chose otherwise).

    GNU OpenMP threads spin for a while after each parallel region. On a machine shared with
    other jobs that spinning steals the cores the other thread of the same op is waiting for:
    measured on the 2-core development machine under load, a stage-2 training step ran at
    15 images/s with spinning and 29-38 images/s with ``OMP_WAIT_POLICY=PASSIVE``, using half
    the CPU time per image. Only effective before torch is imported.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
