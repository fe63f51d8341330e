"""The model as bytes, so one copy travels through Ray's object store to every worker node.

Workers of a cluster need not share a filesystem with the driver: the driver reads the model
folder's files once (checkpoint, ONNX exports, parity report, config), puts them in the object
store, and each worker writes them to a private temporary folder and loads them with
:meth:`karung.vision.classifier.Classifier.from_path`. Preprocessing (input size, mean, std)
travels inside the checkpoint, so a retrained model with another input size just works.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from karung.vision.checkpoint import Checkpoint
from karung.vision.classifier import Classifier
from karung.vision.errors import CheckpointError
from karung.vision.labels import Thresholds
from karung.vision.modeldir import BACKEND_FILES, ModelDir

# The files Classifier.from_path reads beside the checkpoint (reports and cards stay home).
SHIPPED_SUFFIXES: Final = frozenset({".pt", ".onnx", ".json"})


@dataclass(frozen=True)
class ModelBundle:
    """A checkpoint's folder as ``{file name: bytes}`` plus which file is the checkpoint."""

    checkpoint_name: str
    files: dict[str, bytes]
    model_version: str
    thresholds: Thresholds

    @classmethod
    def from_path(cls, path: str | Path) -> ModelBundle:
        """Read the checkpoint at ``path`` (file or model folder) and the files beside it."""
        model_dir = ModelDir.find(path)
        ckpt = model_dir.checkpoint
        files = {
            p.name: p.read_bytes()
            for p in sorted(model_dir.root.iterdir())
            if p.is_file() and (p.suffix in SHIPPED_SUFFIXES or p == ckpt)
        }
        checkpoint = Checkpoint.load(ckpt)
        return cls(ckpt.name, files, checkpoint.model_version, checkpoint.thresholds)

    @property
    def nbytes(self) -> int:
        """Total size of the shipped files."""
        return sum(len(b) for b in self.files.values())

    def check_backend(self, backend: str) -> None:
        """Fail on the driver, not in every worker, when ``backend`` needs a missing export."""
        wanted = BACKEND_FILES.get(backend, ())
        if wanted and not any(name in self.files for name in wanted):
            raise CheckpointError(
                f"--backend {backend} needs {' or '.join(wanted)} beside the checkpoint "
                "(run `karung export --format onnx`, or pass --backend torch)"
            )

    def materialise(self, folder: Path | None = None) -> Path:
        """Write the files to ``folder`` (default: a new temp folder); return the checkpoint."""
        target = folder or Path(tempfile.mkdtemp(prefix="karung-model-"))
        target.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (target / name).write_bytes(data)
        return ModelDir(target, self.checkpoint_name).checkpoint

    def load(self, backend: str, threads: int | None = 1) -> Classifier:
        """Materialise and load the classifier on ``backend`` (see ``Classifier.from_path``)."""
        return Classifier.from_path(self.materialise(), backend=backend, threads=threads)
