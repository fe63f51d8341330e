"""The layout of a model folder: the one place that names its files.

A training run's output folder (``runs/NAME``) and a shipped model folder (``models/default``)
share one layout: the checkpoint, the parity-checked ONNX exports beside it, the export's
parity report, the validation metrics, the training config, the model card and the
evaluation reports. Training writes these files and serving, the batch runner and the CLI read
them, all through :class:`ModelDir`, so a file name is spelled once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from karung.vision.errors import CheckpointError

CHECKPOINT_FILE: Final = "model.pt"
INT8_ONNX_FILE: Final = "model.int8.onnx"
FP32_ONNX_FILE: Final = "model.fp32.onnx"
# Preferred first (int8 with its fp32 fallback); `karung export` installs a file only after
# it passed the parity check. Which is faster depends on the CPU: see `load_fastest`.
ONNX_FILES: Final = (INT8_ONNX_FILE, FP32_ONNX_FILE)
# An export that failed its parity check keeps this suffix, so no backend ever loads it.
FAILED_SUFFIX: Final = ".failed.onnx"
PARITY_FILE: Final = "parity.json"
METRICS_FILE: Final = "metrics.json"
CONFIG_FILE: Final = "config.json"
MODEL_CARD_FILE: Final = "MODEL_CARD.md"
REPORTS_DIR: Final = "reports"
HISTORY_FILE: Final = "history.jsonl"
# Where the model came from (parent, data, the comparison that promoted it): vision/lineage.py.
LINEAGE_FILE: Final = "lineage.json"
# The compact features `karung retrain` refits from (a shipped model's folder).
RETRAIN_BASE_FILE: Final = "retrain_base.npz"
QAT_CONFIG_FILE: Final = "qat.json"
QAT_HISTORY_FILE: Final = "qat_history.jsonl"
# A run's resumable state and its best weights so far (a run folder only, never shipped).
STATE_FILE: Final = "state.pt"
BEST_WEIGHTS_FILE: Final = "best_weights.pt"
# Which ONNX files each pinned serving backend may load.
BACKEND_FILES: Final = {
    "onnx": ONNX_FILES,
    "onnx-int8": (INT8_ONNX_FILE,),
    "onnx-fp32": (FP32_ONNX_FILE,),
}


@dataclass(frozen=True)
class ModelDir:
    """A model (or training run) folder; ``checkpoint_name`` is ``model.pt`` unless a
    checkpoint file of another name was given."""

    root: Path
    checkpoint_name: str = CHECKPOINT_FILE

    @classmethod
    def at(cls, path: str | os.PathLike[str]) -> ModelDir:
        """The folder ``path`` names, or the folder of the checkpoint file ``path`` names
        (nothing needs to exist yet: writers use this)."""
        p = Path(path)
        if p.is_file() or (p.suffix == ".pt" and not p.is_dir()):
            return cls(p.parent, p.name)
        return cls(p)

    @classmethod
    def find(cls, path: str | os.PathLike[str]) -> ModelDir:
        """Like :meth:`at` for a checkpoint that must exist (a file or a folder holding
        ``model.pt``); raises :class:`CheckpointError` otherwise."""
        p = Path(path)
        found = cls(p) if p.is_dir() else cls(p.parent, p.name)
        if not found.checkpoint.is_file():
            raise CheckpointError(f"no checkpoint at {found.checkpoint}")
        return found

    @property
    def checkpoint(self) -> Path:
        """The checkpoint file."""
        return self.root / self.checkpoint_name

    @property
    def int8_onnx(self) -> Path:
        """The parity-checked int8 ONNX export (with its fp32 fallback band)."""
        return self.root / INT8_ONNX_FILE

    @property
    def fp32_onnx(self) -> Path:
        """The parity-checked fp32 ONNX export."""
        return self.root / FP32_ONNX_FILE

    @property
    def parity(self) -> Path:
        """The export's parity reports (JSON)."""
        return self.root / PARITY_FILE

    @property
    def metrics(self) -> Path:
        """The validation (or evaluation) metrics (JSON)."""
        return self.root / METRICS_FILE

    @property
    def config(self) -> Path:
        """The training config with its resolved facts (JSON)."""
        return self.root / CONFIG_FILE

    @property
    def model_card(self) -> Path:
        """The model card (Markdown)."""
        return self.root / MODEL_CARD_FILE

    @property
    def reports(self) -> Path:
        """The folder of evaluation and benchmark reports."""
        return self.root / REPORTS_DIR

    @property
    def history(self) -> Path:
        """A training run's per-epoch figures (JSON lines)."""
        return self.root / HISTORY_FILE

    @property
    def qat_config(self) -> Path:
        """The settings of a ``karung qat`` run (JSON)."""
        return self.root / QAT_CONFIG_FILE

    @property
    def qat_history(self) -> Path:
        """A ``karung qat`` run's per-step losses (JSON lines)."""
        return self.root / QAT_HISTORY_FILE

    @property
    def state(self) -> Path:
        """A training run's resumable state."""
        return self.root / STATE_FILE

    @property
    def lineage(self) -> Path:
        """The model's lineage record."""
        return self.root / LINEAGE_FILE

    @property
    def retrain_base(self) -> Path:
        """The compact base-set features ``karung retrain`` starts from."""
        return self.root / RETRAIN_BASE_FILE

    @property
    def best_weights(self) -> Path:
        """A training run's best weights so far."""
        return self.root / BEST_WEIGHTS_FILE

    def file(self, name: str) -> Path:
        """A file of this folder by name (an ONNX name of :data:`ONNX_FILES`, for instance)."""
        return self.root / name

    def failed(self, name: str) -> Path:
        """Where an export named ``name`` goes when it fails its parity check."""
        return self.root / name.replace(".onnx", FAILED_SUFFIX)

    def onnx_files(self, backend: str = "onnx") -> list[Path]:
        """The parity-checked ONNX exports present that ``backend`` may load, preferred
        first (``auto`` and ``onnx`` may load any)."""
        names = BACKEND_FILES.get(backend, ONNX_FILES)
        return [self.root / n for n in names if (self.root / n).is_file()]


def default_model_dir() -> Path:
    """Where the shipped model lives: ``$KARUNG_MODEL`` or ``models/default`` of the checkout."""
    env = os.environ.get("KARUNG_MODEL")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "models" / "default"
