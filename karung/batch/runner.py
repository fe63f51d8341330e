"""The backfill driver: inputs -> Ray Data -> shard files, database writes and a summary.

The driver reads the input list, the model's files and a bank snapshot once, puts the model and
the snapshot in Ray's object store (one copy per node, however many workers), and runs one Ray
Data pipeline over the shards that are not finished yet: a pool of actors, one per CPU by
default, each loading the model and building the bank's indexes once, scores batches of rows.
Results stream back to the driver, which writes each shard as soon as its last row arrives.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from karung.batch.bundle import ModelBundle
from karung.batch.errors import BackfillConfigError
from karung.batch.inputs import fingerprint, read_inputs
from karung.batch.report import summarise, write_summary
from karung.batch.scorer import ScorerOptions
from karung.batch.shards import Manifest, finished, open_output, read_results, write_shard
from karung.batch.sinks import DatabaseSink
from karung.batch.snapshot import BankSnapshot
from karung.batch.worker import ScoreActor, Shipped

log = logging.getLogger("karung.batch.runner")
# Ray Data hands a block to one actor. Blocks of at least this many batches keep a task's
# scheduling (a few ms) small next to its images; aiming at BLOCKS_PER_ACTOR blocks per actor
# keeps every actor busy until the end; blocks never exceed a shard (a huge job then has one
# object per shard, not per few images).
BATCHES_PER_BLOCK = 4
BLOCKS_PER_ACTOR = 8


@dataclass(frozen=True)
class BackfillConfig:
    """Everything one ``karung backfill`` run needs (parsed once at the CLI edge)."""

    inputs: tuple[str, ...]
    out: Path
    model: Path
    backend: str = "onnx"
    db: str | None = None  # bank snapshot and, with the flags below, where results go
    address: str | None = None  # None: RAY_ADDRESS, else a local embedded Ray
    shard_size: int = 1000
    batch_size: int = 16
    actors: int | None = None  # None: one per CPU of the cluster
    limit: int | None = None
    enqueue_review: bool = False
    add_to_bank: str | None = None
    min_risk: float | None = None  # needed with add_to_bank (no default risk to bank at)
    record_matches: bool = False
    progress: bool = True
    scorer: ScorerOptions = field(default_factory=ScorerOptions)

    def __post_init__(self) -> None:
        """Refuse bad options before any input is read or Ray starts.

        Raises:
            BackfillConfigError: a count below 1, ``add_to_bank`` without ``min_risk``, or an
                allowed network that is not a CIDR.
        """
        if self.add_to_bank and self.min_risk is None:
            raise BackfillConfigError("--add-to-bank needs --min-risk")
        for name in ("shard_size", "batch_size", "actors", "limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BackfillConfigError(f"--{name.replace('_', '-')} must be >= 1")
        for cidr in self.scorer.fetch.allowed_networks:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise BackfillConfigError(str(exc)) from exc


@dataclass
class RunStats:
    """What one run did (the rest of the summary comes from the shards)."""

    shards_total: int = 0
    shards_skipped: int = 0
    shards_written: int = 0
    rows_scored: int = 0
    seconds: float = 0.0
    worker_cpu_seconds: float = 0.0  # inside the actors' batches: the steady-state work
    # rows received per unfinished shard (not reported)
    buffers: dict[int, list[pa.Table]] = field(default_factory=lambda: defaultdict(list))
    received: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def report(self) -> dict[str, Any]:
        """The counters, for the summary."""
        keys = ("shards_total", "shards_skipped", "shards_written", "rows_scored", "seconds")
        out: dict[str, Any] = {k: getattr(self, k) for k in keys}
        out["worker_cpu_seconds"] = round(self.worker_cpu_seconds, 3)
        return out


def run_backfill(config: BackfillConfig) -> dict[str, Any]:
    """Run (or resume) the backfill described by ``config``; return its summary."""
    started = time.perf_counter()
    inputs = read_inputs(config.inputs, config.limit)
    bundle = ModelBundle.from_path(config.model)
    bundle.check_backend(config.backend)
    manifest = Manifest(
        fingerprint(inputs), inputs.num_rows, config.shard_size, bundle.model_version
    )
    open_output(config.out, manifest)
    done = finished(config.out, manifest)
    stats = RunStats(shards_total=manifest.shards, shards_skipped=len(done))
    engine = _engine(config.db) if config.db else None
    snapshot = BankSnapshot.read(engine) if engine is not None else BankSnapshot.empty()
    sink = None
    if engine is not None and (
        config.enqueue_review or config.add_to_bank or config.record_matches
    ):
        threshold = _block_threshold(bundle, config.scorer)
        sink = DatabaseSink(engine, threshold, record_matches=config.record_matches)
    pending = [k for k in range(manifest.shards) if k not in done]
    log.info("%d of %d shards already finished", len(done), manifest.shards)
    if pending:
        _execute(config, inputs, manifest, pending, bundle, snapshot, sink, stats)
    stats.seconds = round(time.perf_counter() - started, 3)
    extra = {
        "model_version": bundle.model_version,
        "bank_version": snapshot.version,
        "bank_entries": snapshot.entries,
        "run": stats.report(),
        "database_writes": vars(sink.counts) if sink else None,
    }
    summary = summarise(read_results(config.out), extra)
    write_summary(config.out, summary)
    return summary


def _execute(
    config: BackfillConfig,
    inputs: pa.Table,
    manifest: Manifest,
    pending: list[int],
    bundle: ModelBundle,
    snapshot: BankSnapshot,
    sink: DatabaseSink | None,
    stats: RunStats,
) -> None:
    """Score the pending shards' rows on Ray and write each shard when it is complete."""
    import ray

    _init_ray(config.address)
    # One copy of each in the object store; every actor gets references, not the bytes.
    shipped = Shipped(ray.put(bundle), ray.put(snapshot), _options(config), config.backend)
    actors = config.actors or _cluster_cpus()
    total = sum(_span(manifest, k)[1] for k in pending)
    per_actor = -(-total // (actors * BLOCKS_PER_ACTOR))
    rows = max(config.batch_size * BATCHES_PER_BLOCK, min(manifest.shard_size, per_actor))
    blocks = _blocks(inputs, manifest, pending, rows)
    dataset = ray.data.from_arrow(blocks).map_batches(
        ScoreActor,
        fn_constructor_kwargs={"shipped": shipped},
        batch_size=config.batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
    )
    with tqdm(total=total, unit="img", desc="backfill", disable=not config.progress) as bar:
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            table = cast(pa.Table, batch)
            _collect(config.out, manifest, table, sink, stats)
            bar.update(table.num_rows)
    if stats.buffers:
        raise RuntimeError(f"shards {sorted(stats.buffers)} got fewer rows than they hold")


def _collect(
    out: Path, manifest: Manifest, table: pa.Table, sink: DatabaseSink | None, stats: RunStats
) -> None:
    """Buffer a result batch by shard; write every shard whose last row has arrived."""
    for shard, part in _split_by_shard(table, manifest.shard_size):
        stats.buffers[shard].append(part)
        stats.received[shard] += part.num_rows
        if stats.received[shard] == _span(manifest, shard)[1]:
            _flush(out, shard, stats.buffers.pop(shard), sink)
            stats.shards_written += 1
    stats.rows_scored += table.num_rows
    stats.worker_cpu_seconds += float(pc.sum(table.column("_cpu_s")).as_py() or 0.0)


def _flush(out: Path, shard: int, parts: list[pa.Table], sink: DatabaseSink | None) -> None:
    """Database writes first, then the shard file: a kill in between redoes idempotent writes."""
    table = pa.concat_tables(parts)
    if sink is not None:
        sink.write(table)
    write_shard(out, shard, table)


def _split_by_shard(batch: pa.Table, shard_size: int) -> list[tuple[int, pa.Table]]:
    shard_of = pc.divide(batch.column("input_index"), shard_size)
    return [(int(k), batch.filter(pc.equal(shard_of, k))) for k in pc.unique(shard_of).to_pylist()]


def _blocks(inputs: pa.Table, manifest: Manifest, pending: list[int], rows: int) -> list[pa.Table]:
    """The pending shards' rows in blocks of ``rows``: Ray Data hands a block to one actor, so
    blocks much smaller than a shard keep every actor busy until the end."""
    out = []
    for shard in pending:
        start, length = _span(manifest, shard)
        out += [
            inputs.slice(i, min(rows, start + length - i))
            for i in range(start, start + length, rows)
        ]
    return out


def _span(manifest: Manifest, shard: int) -> tuple[int, int]:
    """(offset, length) of a shard in the input table."""
    start, stop = manifest.bounds(shard)
    return start, stop - start


def _options(config: BackfillConfig) -> ScorerOptions:
    from dataclasses import replace

    return replace(
        config.scorer,
        thumbnails=config.enqueue_review,
        bank_name=config.add_to_bank,
        min_risk=1.0 if config.min_risk is None else config.min_risk,
    )


def _init_ray(address: str | None) -> None:
    """Connect to ``address`` (or ``RAY_ADDRESS``), else start an embedded local Ray."""
    import ray

    if ray.is_initialized():
        return
    if address:  # an existing cluster (or Ray Client): its own settings apply
        ray.init(address=address)
    else:  # RAY_ADDRESS when set, else a new embedded local Ray without the dashboard
        ray.init(include_dashboard=False if not os.environ.get("RAY_ADDRESS") else None)


def _cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _engine(url: str) -> Any:
    from karung.serve.db import make_engine, migrate

    engine = make_engine(url)
    migrate(engine)
    return engine


def _block_threshold(bundle: ModelBundle, options: ScorerOptions) -> float:
    from karung.serve.policy import resolve_thresholds

    model = bundle.thresholds
    return resolve_thresholds(model, (options.block_threshold, options.review_threshold)).block
