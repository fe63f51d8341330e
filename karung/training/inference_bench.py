"""Inference throughput of every backend on the same batch, measured in one run.

Backends: torch fp32 eager (the baseline), torch fp32 channels-last, torch bf16 autocast,
ONNX Runtime fp32, and ONNX Runtime int8 (QDQ and QOperator). Rounds are interleaved and each
backend's best round is reported, so a neighbour's burst of CPU use on a shared machine
penalises all backends alike instead of whichever happened to run during it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from karung.training.data import load_samples
from karung.training.export import QuantOptions, export_fp32, image_batches, quantize_int8
from karung.training.export_job import pick
from karung.vision.backends import TorchBackend
from karung.vision.checkpoint import Checkpoint
from karung.vision.fallback import FallbackBackend
from karung.vision.modeldir import ModelDir
from karung.vision.onnx_backend import OnnxBackend, load_onnx

Runner = Callable[[np.ndarray], np.ndarray]
FALLBACK_ROW = "onnx int8 + fp32 fallback (shipped)"


@dataclass(frozen=True)
class BenchRow:
    """Throughput of one backend and how far its probabilities are from the baseline."""

    name: str
    images_per_second: float
    ratio: float
    max_prob_diff: float
    note: str = ""


def synthetic_batch(batch: int, size: int, seed: int = 0) -> np.ndarray:
    """A normalised batch of smooth random images (photo-like value ranges, not white noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0.0, 1.0, size=(batch, 3, 8, 8)).astype(np.float32)
    t = torch.nn.functional.interpolate(
        torch.from_numpy(coarse), size=(size, size), mode="bilinear"
    )
    return (t.numpy() + rng.normal(0, 0.2, size=t.shape)).astype(np.float32)


def real_batch(ckpt: Checkpoint, data: tuple[str, ...], batch: int, seed: int = 0) -> np.ndarray:
    """``batch`` readable images drawn at random from ``data``, preprocessed for ``ckpt``.

    Real photos matter for the guarded int8 model: how many it re-runs on fp32 depends on
    how many are close calls, which random pixels say nothing about.
    """
    samples = pick(load_samples(list(data), ckpt.labels), 2 * batch, seed)
    arrays = np.concatenate(list(image_batches(samples, ckpt, workers=0)))
    if len(arrays) < batch:
        raise ValueError(f"only {len(arrays)} readable images in {', '.join(data)}")
    return np.ascontiguousarray(arrays[:batch])


def torch_runners(ckpt: Checkpoint, bf16: bool = True) -> dict[str, Runner]:
    """Eager fp32 (via :class:`TorchBackend`), channels-last fp32 and bf16 autocast."""
    model = ckpt.build_model()
    eager = TorchBackend(model)
    cl_model = ckpt.build_model().to(memory_format=torch.channels_last)

    def channels_last(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return np.asarray(cl_model(x).float().numpy())

    def autocast_bf16(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return np.asarray(model(torch.from_numpy(batch)).float().numpy())

    runners: dict[str, Runner] = {
        "torch fp32 eager": eager.logits,
        "torch fp32 channels-last": channels_last,
    }
    if bf16:
        runners["torch bf16 autocast"] = autocast_bf16
    return runners


def onnx_runners(
    ckpt: Checkpoint,
    ckpt_dir: Path | None,
    calibration: list[np.ndarray],
    work: Path,
    threads: int | None,
    formats: tuple[str, ...] = ("qdq", "qoperator"),
) -> dict[str, Runner]:
    """ONNX fp32, the shipped int8 file when present, and freshly quantised int8 variants."""
    fp32 = export_fp32(ckpt, ModelDir(work).fp32_onnx)
    runners: dict[str, Runner] = {"onnx fp32": OnnxBackend(fp32, threads).logits}
    shipped = ModelDir(ckpt_dir).int8_onnx if ckpt_dir else None
    if shipped is not None and shipped.is_file():
        runners["onnx int8 (shipped file)"] = OnnxBackend(shipped, threads).logits
    for fmt in formats:
        path = quantize_int8(
            fp32, work / f"model.{fmt}.int8.onnx", calibration, QuantOptions(quant_format=fmt)
        )
        runners[f"onnx int8 {fmt}"] = OnnxBackend(path, threads).logits
    return runners


def shipped_fallback(
    ckpt: Checkpoint, ckpt_dir: Path | None, threads: int | None
) -> FallbackBackend | None:
    """The shipped int8 file as served, with its fp32 fallback (None without a band)."""
    shipped = ModelDir(ckpt_dir).int8_onnx if ckpt_dir else None
    if shipped is None or not shipped.is_file():
        return None
    guarded = load_onnx(shipped, ckpt.risk_head, threads)
    return guarded if isinstance(guarded, FallbackBackend) else None


def measure(
    runners: dict[str, Runner], batch: np.ndarray, seconds: float, rounds: int = 3
) -> dict[str, float]:
    """Best-round images/s of each runner; each gets ``seconds / rounds`` per round."""
    for run in runners.values():
        run(batch)  # warm-up
    best = dict.fromkeys(runners, 0.0)
    for _ in range(rounds):
        for name, run in runners.items():
            done, start = 0, time.perf_counter()
            while True:
                run(batch)
                done += batch.shape[0]
                elapsed = time.perf_counter() - start
                if elapsed >= seconds / rounds:
                    break
            best[name] = max(best[name], done / elapsed)
    return best


@dataclass(frozen=True)
class BenchOptions:
    """What to measure."""

    batch_size: int = 64
    seconds: float = 6.0
    threads: int | None = None
    bf16: bool = True
    formats: tuple[str, ...] = ("qdq", "qoperator")
    data: tuple[str, ...] = ()


def run_bench(ckpt: Checkpoint, ckpt_dir: Path | None, opts: BenchOptions) -> list[BenchRow]:
    """Measure every backend on one batch; ratios are against torch fp32 eager.

    The batch is real images from ``opts.data`` when given, else smooth random images.
    """
    size = ckpt.preprocessing.input_size
    batch = (
        real_batch(ckpt, opts.data, opts.batch_size)
        if opts.data
        else synthetic_batch(opts.batch_size, size)
    )
    calibration = [synthetic_batch(16, size, seed=s) for s in range(1, 5)]
    guarded = shipped_fallback(ckpt, ckpt_dir, opts.threads)
    with tempfile.TemporaryDirectory(prefix="karung-bench-") as tmp:
        runners = {
            **torch_runners(ckpt, opts.bf16),
            **onnx_runners(ckpt, ckpt_dir, calibration, Path(tmp), opts.threads, opts.formats),
            **({FALLBACK_ROW: guarded.logits} if guarded else {}),
        }
        reference = ckpt.risk_head.probs(runners["torch fp32 eager"](batch))
        diffs = {
            n: float(np.abs(ckpt.risk_head.probs(r(batch)) - reference).max())
            for n, r in runners.items()
        }
        speed = measure(runners, batch, opts.seconds)
    # Every call ran on the same batch, so the running share is this batch's share.
    notes = (
        {FALLBACK_ROW: f"{guarded.rechecked_share:.0%} of this batch re-run on fp32"}
        if guarded
        else {}
    )
    base = speed["torch fp32 eager"]
    return [BenchRow(n, speed[n], speed[n] / base, diffs[n], notes.get(n, "")) for n in runners]


def bench_checkpoint(model: str | None, input_size: int) -> tuple[Checkpoint, Path | None]:
    """The checkpoint to time and its file: ``model``, else the shipped model, else the
    ImageNet backbone with a fresh head at ``input_size`` (no file).

    Raises:
        KarungVisionError: ``model`` holds no checkpoint (``CheckpointError``), or neither the
            shipped model nor the ImageNet weights are there.
    """
    from karung.vision.errors import KarungVisionError
    from karung.vision.labels import LABELS
    from karung.vision.model import build_model
    from karung.vision.modeldir import default_model_dir
    from karung.vision.preprocess import Preprocessing

    try:
        path = ModelDir.find(model or default_model_dir()).checkpoint
        return Checkpoint.load(path), path
    except KarungVisionError:
        if model:
            raise
    backbone = build_model(len(LABELS), pretrained=True)
    prep = Preprocessing(input_size=input_size)
    return Checkpoint.from_model(backbone, LABELS, preprocessing=prep), None


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (int8 speed depends on it)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown CPU"
    names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
    return names[0] if names else "unknown CPU"
