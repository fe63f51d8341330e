"""The model the service scores with, swappable without a restart.

Requests read :attr:`ModelHolder.current` once when they start and keep that
:class:`~karung.vision.classifier.Classifier` to the end, so a swap never mixes two models in one
answer: in-flight requests finish on the old model, new ones get the new model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from karung.serve.swaps import Swap
from karung.vision.classifier import Classifier
from karung.vision.modeldir import ModelDir

log = logging.getLogger("karung.serve.runtime")


@dataclass(frozen=True)
class ModelInfo:
    """What the admin API reports about the loaded model."""

    model_version: str
    path: str
    backend: str
    labels: tuple[str, ...]
    input_size: int
    block_threshold: float
    review_threshold: float
    loaded_at: str


class ModelHolder:
    """Holds the current classifier; :meth:`load` replaces it atomically.

    Args:
        path: checkpoint file or model directory loaded by default.
        backend: a name from :data:`~karung.vision.backend_names.BACKENDS` (``auto``: the
            fastest parity-checked ONNX export here, else torch).
    """

    def __init__(self, path: Path, backend: str = "auto", threads: int = 0) -> None:
        self.path = Path(path)
        self.backend = backend
        self.threads = threads
        self.current: Classifier | None = None
        self.info: ModelInfo | None = None
        self.error: str | None = None
        self.swap_id = 0  # the newest recorded swap (karung.serve.swaps) this holder has seen
        self._swap_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether a model is ready to score."""
        return self.current is not None

    @property
    def rechecked_share(self) -> float:
        """Share of images the current int8 model re-ran on fp32 (0 for other backends)."""
        backend = self.current.backend if self.current is not None else None
        return float(getattr(backend, "rechecked_share", 0.0))

    def load(
        self,
        path: Path | None = None,
        backend: str | None = None,
        record: Callable[[ModelInfo], int] | None = None,
    ) -> ModelInfo:
        """Load a checkpoint (blocking) and make it current; the old one stays on failure.

        ``record``, called under the swap lock once the model is current, stores the swap for
        the other replicas and returns its id, so that :meth:`follow` here skips it.

        Raises:
            karung.vision.errors.KarungVisionError: the checkpoint cannot be loaded.
            ValueError: unknown backend.
        """
        path = Path(path) if path is not None else self.path
        backend = backend or self.backend
        with self._swap_lock:  # one load at a time; readers never wait for it
            info = self._load_locked(path, backend)
            if record is not None:
                self.swap_id = max(self.swap_id, record(info))
        return info

    def follow(self, swap: Swap) -> bool:
        """Load a swap another replica recorded, unless this holder has seen it; return whether
        the model changed. A swap that fails here is logged and not retried."""
        with self._swap_lock:
            if swap.id <= self.swap_id:
                return False
            self.swap_id = swap.id
            try:
                self._load_locked(Path(swap.path), swap.backend)
            except Exception as exc:  # keep serving the current model
                log.exception("could not follow model swap %d to %s", swap.id, swap.path)
                self.error = f"swap {swap.id} not applied: {type(exc).__name__}: {exc}"
                return False
        return True

    def _load_locked(self, path: Path, backend: str) -> ModelInfo:
        classifier = build_classifier(path, backend, self.threads)
        info = describe(classifier, path)
        self.current, self.info, self.error = classifier, info, None
        self.path, self.backend = path, backend
        log.info(
            "model loaded", extra={"model_version": info.model_version, "backend": info.backend}
        )
        return info

    def try_load(self) -> None:
        """Load the default model at start-up; remember the error instead of raising."""
        try:
            self.load()
        except Exception as exc:  # a broken model must not stop the bank API from serving
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("no model loaded: %s", self.error)


def build_classifier(path: Path, backend: str, threads: int = 0) -> Classifier:
    """Load a checkpoint on the fastest verified backend (see ``Classifier.from_path``).

    ``threads`` > 0 caps the backend's intra-op threads: on a small machine shared with
    decode threads, fewer inference threads avoid spin-waiting on oversubscribed cores.
    """
    if threads and backend == "torch":
        import torch

        torch.set_num_threads(threads)  # process-wide: the service runs one model at a time
    model_dir = ModelDir.find(path)
    return Classifier.from_path(model_dir, backend=backend, threads=threads or None)


def describe(classifier: Classifier, path: Path) -> ModelInfo:
    """Summarise a loaded classifier."""
    cut = classifier.thresholds
    return ModelInfo(
        model_version=classifier.model_version,
        path=str(path),
        backend=str(getattr(classifier.backend, "name", type(classifier.backend).__name__)),
        labels=tuple(classifier.labels),
        input_size=classifier.preprocessing.input_size,
        block_threshold=cut.block,
        review_threshold=cut.review,
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
