"""ONNX Runtime inference backend (fp32 or the int8 file written by ``karung export``).

The ONNX graph takes the preprocessed NCHW float32 batch (dynamic batch axis) and returns
logits, so it is a drop-in :class:`~karung.vision.backends.InferenceBackend`; temperature,
thresholds and labels still come from the checkpoint.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from karung.vision.backend_names import check_batch
from karung.vision.errors import CheckpointError
from karung.vision.fallback import META_MODEL, FallbackBackend, FallbackBand
from karung.vision.probs import RiskHead

if TYPE_CHECKING:  # torch-free at run time
    from karung.vision.backends import InferenceBackend


def session_options(threads: int | None = None, spin: bool = True) -> ort.SessionOptions:
    """All graph optimisations, one sequential stream, ``threads`` intra-op threads.

    ``threads=None`` uses every core the process may run on; inter-op parallelism stays at 1
    because a CNN is a chain of ops and extra pools only contend for the same cores.
    ``spin=False`` lets idle worker threads sleep instead of busy-waiting: slightly higher
    latency per call, but on a machine shared with other jobs spinning threads burn the
    cores everyone else needs (measured: twice the throughput of a training loop there).
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads if threads else len(os.sched_getaffinity(0))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: ORT warns about harmless unused initialisers
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OnnxBackend:
    """Logits from an ONNX model with ONNX Runtime on the CPU.

    Args:
        path: the ``.onnx`` file (e.g. ``models/default/model.int8.onnx``).
        threads: intra-op threads (default: all available cores).
        spin: let idle ORT threads busy-wait (lowest latency on a dedicated machine).

    Raises:
        CheckpointError: the file is missing or is not a loadable ONNX model.
    """

    name = "onnx"

    def __init__(
        self, path: str | os.PathLike[str], threads: int | None = None, spin: bool = True
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"no ONNX model at {self.path}; run `karung export` first")
        try:
            self._session = ort.InferenceSession(
                str(self.path),
                sess_options=session_options(threads, spin),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # ORT raises its own exception zoo for bad files
            raise CheckpointError(f"cannot load ONNX model {self.path}: {exc}") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise CheckpointError(f"{self.path} has {len(inputs)} inputs, expected 1")
        self._input = inputs[0].name
        side = inputs[0].shape[-1] if inputs[0].shape else None
        self._size = side if isinstance(side, int) else None  # None: a dynamic input size
        self.name = "onnx-int8" if ".int8." in self.path.name else "onnx"

    @property
    def metadata(self) -> dict[str, str]:
        """The file's custom metadata (``karung export`` stamps version, labels, band)."""
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Run the graph on a ``(N, 3, S, S)`` float32 batch; returns ``(N, L)`` float32.

        Raises:
            InvalidBatch: ``batch`` is not ``(N, 3, S, S)`` numbers of the graph's input size.
        """
        check_batch(batch, self._size)
        feed = {self._input: np.ascontiguousarray(batch, dtype=np.float32)}
        out = self._session.run(None, feed)[0]
        return np.asarray(out, dtype=np.float32)


def load_onnx(
    path: str | os.PathLike[str],
    head: RiskHead,
    threads: int | None = None,
    spin: bool = True,
) -> InferenceBackend:
    """The backend an exported file asks for.

    A plain file gives an :class:`OnnxBackend`. An int8 file that ``karung export`` stamped
    with a fallback band gives a :class:`~karung.vision.fallback.FallbackBackend` that
    re-runs the in-band images on the fp32 file named in the same metadata (beside it).

    Raises:
        CheckpointError: the file, or the fp32 file its band needs, is missing or broken.
    """
    fast = OnnxBackend(path, threads, spin)
    meta = fast.metadata
    band = FallbackBand.from_metadata(meta)
    if band is None:
        return fast
    reference_file = fast.path.parent / meta.get(META_MODEL, "")
    if not reference_file.is_file() or reference_file == fast.path:
        raise CheckpointError(
            f"{fast.path} re-checks close calls on {reference_file.name or '(unnamed)'}, "
            "which is missing beside it; re-run `karung export`"
        )
    reference = OnnxBackend(reference_file, threads, spin)
    return FallbackBackend(fast, reference, band, head)


# Share of images a fallback backend is assumed to re-run when ranking speeds: 8.9% of the
# synthetic validation images and 1.3% of real garment photos for the shipped model.
ASSUMED_RECHECK_SHARE = 0.1


def seconds_per_batch(backend: InferenceBackend, batch: np.ndarray, rounds: int = 3) -> float:
    """Best of ``rounds`` timed calls on ``batch`` (after one warm-up call)."""
    backend.logits(batch)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        backend.logits(batch)
        best = min(best, time.perf_counter() - started)
    return best


def load_fastest(
    paths: Sequence[str | os.PathLike[str]],
    head: RiskHead,
    input_size: int,
    threads: int | None = None,
    spin: bool = True,
) -> InferenceBackend:
    """Load each parity-checked export and keep the one that is fastest on this CPU.

    Int8 is not faster everywhere: on an Intel AVX2 machine it ran 1.6x the fp32 graph, on
    an AMD Zen 1 machine 0.9x. A guarded int8 file is charged its int8 time plus
    ``ASSUMED_RECHECK_SHARE`` of the fp32 time for the close calls it re-runs. All
    candidates passed the same parity gate, so the choice changes speed, not decisions.
    """
    if not paths:
        raise CheckpointError("no ONNX files to choose from; run `karung export` first")
    loaded = [load_onnx(p, head, threads, spin) for p in paths]
    if len(loaded) == 1:
        return loaded[0]
    rng = np.random.default_rng(0)
    batch = rng.normal(0.0, 1.0, size=(16, 3, input_size, input_size)).astype(np.float32)
    return fastest(loaded, batch)


def fastest(backends: Sequence[InferenceBackend], batch: np.ndarray) -> InferenceBackend:
    """The backend with the smallest cost per ``batch`` (fallbacks charged for re-checks)."""
    if not backends:
        raise CheckpointError("no backends to choose from")
    costs = [_cost(backend, batch) for backend in backends]
    return backends[int(np.argmin(costs))]


def _cost(backend: InferenceBackend, batch: np.ndarray) -> float:
    if isinstance(backend, FallbackBackend):
        return seconds_per_batch(backend.fast, batch) + ASSUMED_RECHECK_SHARE * seconds_per_batch(
            backend.reference, batch
        )
    return seconds_per_batch(backend, batch)
