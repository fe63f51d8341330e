"""ONNX Runtime inference backend (fp32 or the int8 file written by ``karung export``).

The ONNX graph takes the preprocessed NCHW float32 batch (dynamic batch axis) and returns
logits, so it is a drop-in :class:`~karung.vision.backends.InferenceBackend`; temperature,
thresholds and labels still come from the checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from karung.vision.errors import CheckpointError


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
        self.name = "onnx-int8" if ".int8." in self.path.name else "onnx"

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Run the graph on a ``(N, 3, S, S)`` float32 batch; returns ``(N, L)`` float32."""
        feed = {self._input: np.ascontiguousarray(batch, dtype=np.float32)}
        out = self._session.run(None, feed)[0]
        return np.asarray(out, dtype=np.float32)
