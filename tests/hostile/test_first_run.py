"""Processes started at once on a new database all succeed (the schema lock, issue 16 point 8).

Each process imports everything first, then waits at a barrier file, so the migrations really
start together; before the lock, 1-2 of 4 ``karung bank add`` runs failed with ``table ...
already exists``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from imagegen import encode, textured
from sqlalchemy import func, select

from karung.serve.bank.models import EntryRow
from karung.serve.db import make_engine

PROCESSES = 4
# Import the CLI, wait for the barrier, then run `karung bank add` (argv after the barrier).
RUNNER = """
import sys, time
from pathlib import Path
from karung.cli.main import main
import karung.cli.bank, karung.serve.bank.service, karung.serve.db, alembic.command
barrier = Path(sys.argv[1])
while not barrier.exists():
    time.sleep(0.005)
sys.exit(main(sys.argv[2:]))
"""


def _run_together(tmp_path: Path, db: str) -> list[subprocess.CompletedProcess[str]]:
    barrier = tmp_path / "go"
    procs = []
    for i in range(PROCESSES):
        image = tmp_path / f"p{i}.png"
        image.write_bytes(encode(textured(64, 48, seed=i), "PNG"))
        argv = ["bank", "add", str(image), "--bank", "b", "--db", db]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", RUNNER, str(barrier), *argv],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    time.sleep(4.0)  # every interpreter has imported and is polling the barrier
    barrier.touch()
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return out


def _entries(db: str) -> int:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(EntryRow)) or 0)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_concurrent_first_runs_on_new_sqlite(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'new.db'}"
    results = _run_together(tmp_path, db)
    assert [r.returncode for r in results] == [0] * PROCESSES, [r.stderr[-500:] for r in results]
    assert _entries(db) == PROCESSES


@pytest.mark.slow
def test_concurrent_first_runs_on_new_postgres(tmp_path: Path, pg_url: str) -> None:
    results = _run_together(tmp_path, pg_url)
    assert [r.returncode for r in results] == [0] * PROCESSES, [r.stderr[-500:] for r in results]
    assert _entries(pg_url) == PROCESSES
