"""``karung evaluate`` end to end: load data and models, score, write metrics and report."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from karung.training.data import Sample, label_counts, load_samples
from karung.training.errors import DatasetError
from karung.training.evaluate import compute_metrics, predict
from karung.training.report import ModelResult, summary_rows, write_report
from karung.training.validation import plain
from karung.vision.backends import InferenceBackend
from karung.vision.checkpoint import Checkpoint
from karung.vision.modeldir import METRICS_FILE, ModelDir


@dataclass(frozen=True)
class EvaluateJob:
    """One evaluation: one or two models on the same images."""

    models: tuple[str, ...]
    data: tuple[str, ...]
    out: str
    split: str = "all"
    backend: str = "torch"
    batch_size: int = 64
    workers: int = 2
    limit: int = 0
    progress: bool = True
    seed: int = 0
    proxies: bool = False


def load_eval_samples(job: EvaluateJob, labels: tuple[str, ...]) -> list[Sample]:
    """The images of ``job.split`` (a reproducible subset when ``limit`` is set)."""
    samples = load_samples(job.data, labels)
    if job.split != "all":
        samples = [s for s in samples if s.split == job.split]
    if not samples:
        raise DatasetError(f"no images in split {job.split!r} of {', '.join(job.data)}")
    if job.limit and len(samples) > job.limit:
        samples = sorted(random.Random(job.seed).sample(samples, job.limit), key=lambda s: s.path)
    return samples


def _backend(path: Path, checkpoint: Checkpoint, kind: str) -> InferenceBackend | None:
    """``torch`` (None: the default), ``onnx-fp32`` (exact, fast) or another backend name."""
    if kind == "torch":
        return None
    from karung.vision.classifier import Classifier

    return Classifier.from_path(path, backend=kind).backend


def _evaluate_one(job: EvaluateJob, model: str, name: str, samples: list[Sample]) -> ModelResult:
    path = ModelDir.find(model).checkpoint
    ckpt = Checkpoint.load(path)
    pred = predict(
        ckpt,
        samples,
        backend=_backend(path, ckpt, job.backend),
        batch_size=job.batch_size,
        workers=job.workers,
        progress=job.progress,
        desc=f"scoring {name}",
    )
    metrics = compute_metrics(pred.probs, pred.labels, ckpt.labels, ckpt.thresholds)
    metrics["unreadable"] = pred.unreadable
    metrics["thresholds_calibrated"] = ckpt.thresholds_calibrated
    metrics["temperature"] = ckpt.temperature
    if job.proxies:
        from karung.training.proxy_job import model_false_alarms

        metrics["real_false_alarms"] = model_false_alarms(pred, ckpt.labels, ckpt.thresholds)
    return ModelResult(name, str(path), ckpt.model_version, pred, metrics)


def run_evaluation(job: EvaluateJob) -> tuple[Path, str]:
    """Score every model on the same images; write ``metrics.json``, plots and ``report.md``."""
    first = Checkpoint.load(job.models[0])
    labels = first.labels
    samples = load_eval_samples(job, labels)
    names = ["model", "compare"] if len(job.models) == 2 else ["model"]
    results = []
    for name, model in zip(names, job.models, strict=True):
        result = _evaluate_one(job, model, name, samples)
        if tuple(Checkpoint.load(result.path).labels) != tuple(labels):
            raise DatasetError(f"{model} has different labels from {job.models[0]}")
        results.append(result)
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    counts = label_counts(samples, labels)
    desc = (
        f"{', '.join(job.data)} (split {job.split}; {len(samples)} images: "
        + ", ".join(f"{n} {c}" for n, c in counts.items() if c)
        + ")"
    )
    body: dict[str, Any] = {
        "data": list(job.data),
        "split": job.split,
        "images": len(samples),
        "label_counts": counts,
        "backend": job.backend,
        "models": [
            {"name": r.name, "path": r.path, "model_version": r.model_version, "metrics": r.metrics}
            for r in results
        ],
    }
    extra: list[str] = []
    if job.proxies:
        from karung.training.proxy_job import data_proxies, proxy_lines

        body["proxies"] = data_proxies(job.data, first, threads=job.workers, progress=job.progress)
        alarms = {r.name: r.metrics["real_false_alarms"] for r in results}
        extra = proxy_lines(body["proxies"], alarms)
    (out / METRICS_FILE).write_text(json.dumps(plain(body), indent=2) + "\n")
    report = write_report(results, labels, out, desc)
    if extra:
        with report.open("a") as fh:
            fh.write("\n".join(extra) + "\n")
    return report, _summary(results)


def _summary(results: list[ModelResult]) -> str:
    lines = []
    for r in results:
        rows = summary_rows(r.metrics)
        figures = ", ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows.items()
        )
        lines.append(f"{r.name}: {figures}")
    return "\n".join(lines)
