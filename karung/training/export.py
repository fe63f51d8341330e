"""ONNX export, static int8 quantisation with ONNX Runtime, and the parity check.

The ONNX graph maps the preprocessed ``(N, 3, S, S)`` float32 batch to logits (dynamic batch,
opset 17). Quantisation is static: activation ranges come from real calibration images run
through the serving preprocessing. The int8 model is accepted only if its decisions, as served
(with the fp32 fallback band ``karung export`` fits, see :mod:`karung.vision.fallback`), agree
with the fp32 torch reference on at least 99.5% of a validation set.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import onnx
import torch

from karung.training.augment import EvalTransform
from karung.training.data import Sample
from karung.training.errors import ExportError, ParityError
from karung.training.loader import UNREADABLE, ImageDataset, make_loader
from karung.vision.backends import TorchBackend
from karung.vision.checkpoint import Checkpoint
from karung.vision.fallback import FallbackBand
from karung.vision.modeldir import ModelDir

if TYPE_CHECKING:
    from karung.vision.backends import InferenceBackend

OPSET: Final = 17
INPUT_NAME: Final = "input"
OUTPUT_NAME: Final = "logits"
MIN_AGREEMENT: Final = 0.995


def export_fp32(checkpoint: Checkpoint, path: Path, opset: int = OPSET) -> Path:
    """Write the fp32 ONNX graph of ``checkpoint`` (model version stored in its metadata)."""
    model = checkpoint.build_model()
    size = checkpoint.preprocessing.input_size
    dummy = torch.zeros(2, 3, size, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo, which needs onnxscript
        # (not a dependency); its output for this plain CNN is identical.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
        )
    stamp_metadata(path, checkpoint)
    return path


def stamp_metadata(path: Path, checkpoint: Checkpoint) -> None:
    """Record the checkpoint's version and labels inside the ONNX file (replacing all)."""
    meta = {
        "karung_model_version": checkpoint.model_version,
        "karung_labels": ",".join(checkpoint.labels),
    }
    _set_metadata(path, meta, keep=False)


def stamp_band(path: Path, band: FallbackBand, reference_file: str) -> None:
    """Add the fp32 fallback band (and the fp32 file it names) to an int8 file's metadata."""
    _set_metadata(path, band.to_metadata(reference_file), keep=True)


def _set_metadata(path: Path, meta: Mapping[str, str], keep: bool) -> None:
    proto = onnx.load(str(path))
    old = {p.key: p.value for p in proto.metadata_props} if keep else {}
    del proto.metadata_props[:]
    for key, value in {**old, **meta}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def onnx_model_version(path: Path) -> str:
    """The checkpoint version stamped into an exported file ("" for foreign files)."""
    proto = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    return meta.get("karung_model_version", "")


def image_batches(
    samples: Sequence[Sample], checkpoint: Checkpoint, batch_size: int = 32, workers: int = 2
) -> Iterator[np.ndarray]:
    """Preprocessed float32 batches of the readable ``samples`` (serving preprocessing)."""
    prep = checkpoint.preprocessing
    dataset = ImageDataset(samples, EvalTransform(prep), prep.input_size)
    for x, y, _ in make_loader(dataset, batch_size=batch_size, workers=workers):
        ok = y != UNREADABLE
        if bool(ok.any()):
            yield x[ok].numpy()


@dataclass(frozen=True)
class QuantOptions:
    """Static quantisation settings: uint8 activations, per-channel int8 weights, MinMax.

    ``fp32_head`` keeps everything after the last Conv (pooling, the classifier) in fp32: a
    few thousand multiply-adds per image, and rounding the logits themselves to uint8 only
    adds error (on the post-training int8 of the original model it did not move the decision
    agreement: 98.3% either way). ``karung qat`` simulates this layout.

    ``reduce_range=None`` (auto) uses 7-bit weights on CPUs without VNNI: there ONNX Runtime's
    u8s8 kernels multiply with ``vpmaddubsw``, whose 16-bit intermediate sums saturate (on the
    AVX2 development machine full-range weights cost 3 points of decision agreement).
    """

    quant_format: str = "qdq"
    per_channel: bool = True
    reduce_range: bool | None = None
    method: str = "minmax"
    fp32_head: bool = True

    @property
    def effective_reduce_range(self) -> bool:
        """The resolved ``reduce_range``."""
        return not has_vnni() if self.reduce_range is None else self.reduce_range

    def __post_init__(self) -> None:
        if self.quant_format not in ("qdq", "qoperator"):
            raise ExportError(f"quant_format must be qdq or qoperator, got {self.quant_format!r}")
        if self.method not in ("minmax", "entropy", "percentile"):
            raise ExportError(f"method must be minmax, entropy or percentile, got {self.method!r}")


def has_vnni() -> bool:
    """Whether the CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def quantize_int8(
    fp32_path: Path,
    int8_path: Path,
    batches: Sequence[np.ndarray],
    opts: QuantOptions,
    exclude: Sequence[str] = (),
) -> Path:
    """Static int8 quantisation: uint8 activations, int8 weights, calibrated on ``batches``.

    Nodes named in ``exclude`` stay in fp32 (mixed precision, see ``quant_search``).
    """
    if not batches:
        raise ExportError("no readable calibration images")
    with tempfile.TemporaryDirectory(prefix="karung-quant-") as tmp:
        pre = prepare_for_quantization(fp32_path, Path(tmp) / "pre.onnx")
        return quantize_prepared(pre, int8_path, opts, batches=batches, exclude=exclude)


def prepare_for_quantization(fp32_path: Path, pre_path: Path) -> Path:
    """Shape inference + graph cleanup, as ORT's quantisation guide recommends."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(fp32_path), str(pre_path), skip_symbolic_shape=True)
    return pre_path


def quantize_prepared(
    pre_path: Path,
    int8_path: Path,
    opts: QuantOptions,
    batches: Sequence[np.ndarray] = (),
    exclude: Sequence[str] = (),
    cache: Path | None = None,
    head: Sequence[str] | None = None,
) -> Path:
    """Quantise a prepared graph, keeping the nodes in ``exclude`` in fp32.

    With ``cache``, the activation ranges are read from that file when it exists (no
    calibration pass, so a variant costs about a second) and are computed from ``batches``
    and saved there otherwise. ``head`` names the head nodes when the caller already knows
    them (:func:`head_nodes` of ``pre_path``; each call otherwise reloads the graph).
    """
    from onnxruntime import quantization as q

    # ORT before 1.32 has no calibration cache: then every variant recalibrates (slower).
    cached = cache is not None and _ort_has_calibration_cache()
    if not batches and not (cached and cache is not None and cache.is_file()):
        raise ExportError("no readable calibration images")
    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }
    fmt = q.QuantFormat.QDQ if opts.quant_format == "qdq" else q.QuantFormat.QOperator
    if not opts.fp32_head:
        head = []
    elif head is None:
        head = head_nodes(pre_path)
    q.quantize_static(
        str(pre_path),
        str(int8_path),
        _Reader(batches) if batches else None,
        quant_format=fmt,
        per_channel=opts.per_channel,
        reduce_range=opts.effective_reduce_range,
        activation_type=q.QuantType.QUInt8,
        weight_type=q.QuantType.QInt8,
        nodes_to_exclude=list(dict.fromkeys([*exclude, *head])),
        calibrate_method=methods[opts.method],
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        **({"calibration_cache_path": str(cache)} if cached else {}),
    )
    return int8_path


def head_nodes(path: Path) -> list[str]:
    """Names of the nodes after the graph's last Conv (global pooling and the classifier)."""
    nodes = list(onnx.load(str(path), load_external_data=False).graph.node)
    last_conv = max((i for i, n in enumerate(nodes) if n.op_type == "Conv"), default=-1)
    return [n.name for n in nodes[last_conv + 1 :] if n.name]


def _ort_has_calibration_cache() -> bool:
    """Whether ``quantize_static`` can save and reuse activation ranges (ORT >= 1.32)."""
    import inspect

    from onnxruntime.quantization import quantize_static

    return "calibration_cache_path" in inspect.signature(quantize_static).parameters


class _Reader:
    """ONNX Runtime ``CalibrationDataReader`` over in-memory batches."""

    def __init__(self, batches: Sequence[np.ndarray]) -> None:
        self._batches = list(batches)
        self._pos = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._pos >= len(self._batches):
            return None
        self._pos += 1
        return {INPUT_NAME: self._batches[self._pos - 1]}

    def rewind(self) -> None:
        self._pos = 0


@dataclass(frozen=True)
class ParityReport:
    """How closely a fast backend follows the torch fp32 reference."""

    n: int
    max_abs_prob_diff: float
    mean_abs_prob_diff: float
    max_abs_risk_diff: float
    decision_agreement: float
    label_agreement: float
    required_agreement: float
    onnx_file: str
    images_per_second: float = 0.0
    reference_images_per_second: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether the decision agreement meets the requirement."""
        return self.decision_agreement >= self.required_agreement

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with the verdict."""
        return {**asdict(self), "passed": self.passed}

    def summary(self) -> str:
        """One human-readable line."""
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"parity {verdict} on {self.n} images: decision agreement "
            f"{self.decision_agreement:.2%} (need {self.required_agreement:.1%}), label agreement "
            f"{self.label_agreement:.2%}, max |dp| {self.max_abs_prob_diff:.4f}, "
            f"max |drisk| {self.max_abs_risk_diff:.4f}{self._speed()}"
        )

    def _speed(self) -> str:
        if not (self.images_per_second and self.reference_images_per_second):
            return ""
        ratio = self.images_per_second / self.reference_images_per_second
        return f", {self.images_per_second:.0f} img/s ({ratio:.1f}x torch fp32 eager)"


class _Tally:
    """Running agreement figures of one fast model against the reference."""

    def __init__(self) -> None:
        self.diffs: list[np.ndarray] = []
        self.risk_diffs: list[np.ndarray] = []
        self.same_label: list[np.ndarray] = []
        self.same_decision: list[bool] = []
        self.seconds = 0.0

    def add(self, ckpt: Checkpoint, p_ref: np.ndarray, p_fast: np.ndarray) -> None:
        head = ckpt.risk_head
        r_ref, r_fast = head.risk(p_ref), head.risk(p_fast)
        self.diffs.append(np.abs(p_ref - p_fast).max(axis=1))
        self.risk_diffs.append(np.abs(r_ref - r_fast))
        cut = ckpt.thresholds
        self.same_decision.extend(
            cut.decide(float(a)) == cut.decide(float(b)) for a, b in zip(r_ref, r_fast, strict=True)
        )
        self.same_label.append(p_ref.argmax(axis=1) == p_fast.argmax(axis=1))

    def report(self, required: float, onnx_file: str, reference_seconds: float) -> ParityReport:
        if not self.diffs:
            raise ExportError("no readable images for the parity check")
        d = np.concatenate(self.diffs)
        return ParityReport(
            n=int(d.size),
            max_abs_prob_diff=float(d.max()),
            mean_abs_prob_diff=float(d.mean()),
            max_abs_risk_diff=float(np.concatenate(self.risk_diffs).max()),
            decision_agreement=float(np.mean(self.same_decision)),
            label_agreement=float(np.concatenate(self.same_label).mean()),
            required_agreement=required,
            onnx_file=onnx_file,
            images_per_second=d.size / self.seconds if self.seconds else 0.0,
            reference_images_per_second=d.size / reference_seconds if reference_seconds else 0.0,
        )


def parity(
    checkpoint: Checkpoint,
    backends: Mapping[str, InferenceBackend],
    batches: Iterator[np.ndarray] | Sequence[np.ndarray],
    required: float = MIN_AGREEMENT,
) -> dict[str, ParityReport]:
    """Compare calibrated probabilities and decisions of each backend with torch fp32.

    The torch reference runs once per batch and every fast backend is compared with it;
    each one's forward passes are timed, so the reports also quote images per second on
    the same real images (a fallback backend's speed includes its re-checks).
    """
    ref = TorchBackend(checkpoint.build_model())
    tallies = {name: _Tally() for name in backends}
    ref_seconds = 0.0
    for batch in batches:
        started = time.perf_counter()
        ref_logits = ref.logits(batch)
        ref_seconds += time.perf_counter() - started
        p_ref = checkpoint.risk_head.probs(ref_logits)
        for name, backend in backends.items():
            started = time.perf_counter()
            logits = backend.logits(batch)
            tallies[name].seconds += time.perf_counter() - started
            tallies[name].add(checkpoint, p_ref, checkpoint.risk_head.probs(logits))
    return {
        name: t.report(required, str(getattr(backends[name], "path", "")), ref_seconds)
        for name, t in tallies.items()
    }


def write_parity(
    reports: dict[str, ParityReport],
    out_dir: Path,
    notes: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Save the parity reports as ``parity.json`` in ``out_dir``; raise
    :class:`ParityError` if any failed.

    ``notes`` adds keys to a report's entry (e.g. the int8 search's excluded nodes).
    """
    path = ModelDir(out_dir).parity
    body = {k: {**r.to_dict(), **(notes or {}).get(k, {})} for k, r in reports.items()}
    path.write_text(json.dumps(body, indent=2) + "\n")
    failed = [f"{k}: {r.summary()}" for k, r in reports.items() if not r.passed]
    if failed:
        raise ParityError("; ".join(failed))
    return path
