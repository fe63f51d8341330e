"""The training configuration: parsed once from the command line into a frozen dataclass,
validated, and saved as ``config.json`` beside the checkpoint.

Only the standard library is imported here, so ``karung train --help`` stays instant.

Two recipes:

* ``frozen`` (default): the ImageNet MobileNetV2 backbone stays frozen; pooled 224 px features
  are cached per image (:mod:`karung.training.features`) and an L2-regularised linear head is
  fitted on them (:mod:`karung.training.head`); thresholds come from real negative photos. It
  keeps what ImageNet learned from real photos, which transferred far better to real listings
  than fine-tuning on synthetic images did.
* ``finetune``: the earlier two-stage recipe (head, then blocks ``unfreeze_from``-18) with
  augmentation, early stopping and ``--resume``; the epoch options apply to it only. About
  40 minutes for 20,000 images on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from karung.training.errors import CalibrationError, ConfigError
from karung.vision.labels import LABELS
from karung.vision.modeldir import ModelDir

PRECISIONS: Final = ("auto", "fp32", "bf16")
RECIPES: Final = ("frozen", "finetune")
# Fields that may differ between an interrupted run and its --resume without breaking it.
RESUME_FREE: Final = frozenset(
    {"resume", "workers", "threads", "progress", "frozen_engine", "max_minutes"}
)


@dataclass(frozen=True)
class AugmentConfig:
    """Strength knobs of the training augmentation (saved in the run config; see
    :func:`karung.training.augment.train_transform`)."""

    # The mild random crop (half of the time): the smallest share of the photo's area kept.
    min_scale: float = 0.6
    # Brightness, contrast and saturation jitter (each a factor in 1 +- this).
    jitter: float = 0.35
    # Distortion of the random perspective (applied to 30 % of the images).
    perspective: float = 0.25
    # Probabilities: Gaussian blur, a JPEG re-encode at quality 25-90, erasing a patch,
    # grayscale.
    blur_p: float = 0.2
    jpeg_p: float = 0.4
    erase_p: float = 0.25
    grayscale_p: float = 0.05


@dataclass(frozen=True)
class ThresholdPolicy:
    """How the cuts are chosen (saved in the run config).

    Attributes:
        target_precision: ``block`` is the smallest cut whose validation precision reaches this.
        review_recall: ``review`` is the largest cut still catching this share of positives.
        review_ratio: ``review`` is at most this fraction of ``block``, so that a review band
            exists even when the recall cut lies above ``block``.
        min_block: floor on ``block``: never auto-block while the risky labels are not even the
            majority of the probability mass, however clean the validation set looks (synthetic
            validation data is easier than real listings).
        min_review: floor on ``review`` so a weak model cannot flood the moderators' queue.
    """

    target_precision: float = 0.99
    review_recall: float = 0.95
    review_ratio: float = 0.6
    min_block: float = 0.5
    min_review: float = 0.2

    def __post_init__(self) -> None:
        for name in (
            "target_precision",
            "review_recall",
            "review_ratio",
            "min_block",
            "min_review",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise CalibrationError(f"{name} must be in [0, 1], got {value}")
        if self.min_review > self.min_block:
            raise CalibrationError("min_review must not exceed min_block")


@dataclass(frozen=True)
class NegativeRates:
    """The frozen recipe's threshold targets on held-out REAL negatives (see
    :class:`karung.training.negatives.NegativePolicy`, which applies them)."""

    block_rate: float = 0.005
    review_rate: float = 0.03

    def __post_init__(self) -> None:
        if not 0.0 <= self.block_rate <= self.review_rate <= 1.0:
            raise CalibrationError("need 0 <= block_rate <= review_rate <= 1")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run."""

    data: tuple[str, ...]
    out: str
    labels: tuple[str, ...] = LABELS
    recipe: str = "frozen"
    head_l2: float = 0.1
    feature_cache: str = ""
    proxies: bool = True
    input_size: int = 224
    batch_size: int = 32
    epochs: int = 8
    head_epochs: int = 2
    unfreeze_from: int = 14
    epoch_images: int = 0
    val_images: int = 1500
    lr_head: float = 1e-3
    lr_backbone: float = 3e-4
    weight_decay: float = 0.02
    warmup_fraction: float = 0.05
    label_smoothing: float = 0.1
    patience: int = 3
    max_minutes: float = 0.0
    precision: str = "auto"
    frozen_engine: str = "onnx"
    val_fraction: float = 0.2
    seed: int = 0
    workers: int = 2
    threads: int = 0
    pretrained: bool = True
    progress: bool = True
    resume: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    thresholds: ThresholdPolicy = field(default_factory=ThresholdPolicy)
    negatives: NegativeRates = field(default_factory=NegativeRates)

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("give at least one --data directory")
        checks = {
            "input_size >= 32": self.input_size >= 32,
            "batch_size >= 2": self.batch_size >= 2,
            "epochs >= 1": self.epochs >= 1,
            "0 <= head_epochs <= epochs": 0 <= self.head_epochs <= self.epochs,
            "0 <= unfreeze_from <= 19": 0 <= self.unfreeze_from <= 19,
            "epoch_images >= 0": self.epoch_images >= 0,
            "val_images >= 0": self.val_images >= 0,
            "learning rates > 0": self.lr_head > 0 and self.lr_backbone > 0,
            "0 <= label_smoothing < 1": 0 <= self.label_smoothing < 1,
            "0 <= warmup_fraction < 1": 0 <= self.warmup_fraction < 1,
            "patience >= 1": self.patience >= 1,
            "max_minutes >= 0": self.max_minutes >= 0,
            "0 < val_fraction < 1": 0 < self.val_fraction < 1,
            "workers >= 0": self.workers >= 0,
            "threads >= 0": self.threads >= 0,
            "head_l2 >= 0": self.head_l2 >= 0,
        }
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            raise ConfigError("invalid training options: need " + "; ".join(failed))
        if self.recipe not in RECIPES:
            raise ConfigError(f"recipe must be one of {RECIPES}, got {self.recipe!r}")
        if self.recipe == "frozen" and not self.pretrained:
            raise ConfigError("the frozen recipe needs the ImageNet weights (drop --no-pretrained)")
        if self.frozen_engine not in ("onnx", "torch"):
            raise ConfigError(f"frozen_engine must be onnx or torch, got {self.frozen_engine!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def out_dir(self) -> Path:
        """The run directory."""
        return Path(self.out)

    @property
    def intra_op_threads(self) -> int:
        """Torch threads for the trainer (``threads=0``: all cores)."""
        return self.threads or (os.cpu_count() or 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        data = asdict(self)
        data["data"] = list(self.data)
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (unknown keys are rejected)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config keys: {sorted(unknown)}")
        values = dict(data)
        values["data"] = tuple(values["data"])
        values["labels"] = tuple(values.get("labels", LABELS))
        values["augment"] = AugmentConfig(**values.get("augment", {}))
        values["thresholds"] = ThresholdPolicy(**values.get("thresholds", {}))
        values["negatives"] = NegativeRates(**values.get("negatives", {}))
        return cls(**values)

    def save(self, extra: dict[str, Any] | None = None, out_dir: Path | None = None) -> Path:
        """Write ``config.json`` (plus resolved facts such as the chosen precision).

        ``out_dir`` (default: the run's own) lets a derived run, such as ``karung qat``'s,
        keep the configuration of the training run it started from.
        """
        target = out_dir or self.out_dir
        target.mkdir(parents=True, exist_ok=True)
        path = ModelDir(target).config
        body = {**self.to_dict(), "resolved": extra or {}}
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        return path

    def resume_mismatch(self, other: TrainConfig) -> list[str]:
        """Names of fields that differ from ``other`` and would make a resume unsound."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(k for k in mine if k not in RESUME_FREE and mine[k] != theirs.get(k))


# The plain ``--name VALUE`` options of ``karung train`` in ``--help`` order: (flag, help); each
# one's default, and its type, is the TrainConfig field of the same name (``--block-rate`` and
# ``--review-rate``: of its ``negatives``).
_RECIPE_OPTIONS: Final = (
    ("--head-l2", "frozen recipe: L2 strength of the linear head (larger = simpler head)"),
    (
        "--feature-cache",
        "frozen recipe: feature cache folder (default $KARUNG_FEATURE_CACHE or the user cache dir)",
    ),
    ("--block-rate", "frozen recipe: share of held-out real negatives allowed at block"),
    (
        "--review-rate",
        "frozen recipe: share of held-out real negatives allowed at review or worse",
    ),
)
_EPOCH_OPTIONS: Final = (
    ("--epochs", "total epochs (stage 1 + stage 2)"),
    ("--head-epochs", "stage 1 epochs: head only"),
    ("--unfreeze-from", "stage 2 trains backbone blocks from this index (0-18) upwards"),
    ("--input-size", None),
    ("--batch-size", None),
    ("--epoch-images", "images drawn (class-balanced) per epoch; 0: the training-set size"),
    (
        "--val-images",
        "validation images scored after each epoch (0: all); calibration uses all",
    ),
    ("--lr-head", None),
    ("--lr-backbone", None),
    ("--weight-decay", None),
    ("--label-smoothing", None),
    ("--patience", "early-stopping patience in epochs"),
    (
        "--max-minutes",
        "wall-time budget: skip the remaining epochs when the next would overrun (0: none)",
    ),
)
_RUN_OPTIONS: Final = (
    (
        "--val-fraction",
        "share of senders (or files) put in validation when the data has no split column",
    ),
    ("--seed", None),
    ("--workers", "decode workers"),
    ("--threads", "torch threads (0: all cores)"),
)


def _add_plain(
    parser: argparse.ArgumentParser, options: tuple[tuple[str, str | None], ...]
) -> None:
    d = TrainConfig(data=("-",), out="-")
    for flag, text in options:
        name = flag[2:].replace("-", "_")
        default = getattr(d.negatives if name.endswith("_rate") else d, name)
        metavar = {"--feature-cache": "DIR"}.get(flag)
        parser.add_argument(flag, type=type(default), default=default, metavar=metavar, help=text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``karung train`` options (defaults come from :class:`TrainConfig`)."""
    d = TrainConfig(data=("-",), out="-")
    add = parser.add_argument
    add(
        "--data",
        action="append",
        required=True,
        metavar="DIR",
        help="ImageFolder or folder with manifest.csv (file,label[,split][,sender_id]); repeatable",
    )
    add("--out", required=True, metavar="RUN_DIR", help="run directory (e.g. runs/NAME)")
    add(
        "--recipe",
        choices=RECIPES,
        default=d.recipe,
        help="frozen: ImageNet backbone frozen, linear head on cached features (default); "
        "finetune: also train the upper backbone blocks (the epoch options apply to it)",
    )
    _add_plain(parser, _RECIPE_OPTIONS)
    add("--no-proxies", action="store_true", help="skip the real-photo proxies after training")
    _add_plain(parser, _EPOCH_OPTIONS)
    add(
        "--precision",
        choices=PRECISIONS,
        default=d.precision,
        help="auto: bf16 autocast only where measured faster than fp32 on this CPU",
    )
    add(
        "--frozen-engine",
        choices=("onnx", "torch"),
        default=d.frozen_engine,
        help="run the frozen lower blocks in ONNX Runtime (about 5x faster) or torch",
    )
    _add_plain(parser, _RUN_OPTIONS)
    add("--no-pretrained", action="store_true", help="random init (tests only)")
    add("--no-progress", action="store_true", help="no progress bars")
    add("--resume", action="store_true", help="continue an interrupted run in --out")


def from_args(args: argparse.Namespace) -> TrainConfig:
    """Build the frozen config from parsed arguments (options named after its fields)."""
    names = {f.name for f in fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    return TrainConfig(
        **{
            **given,
            "data": tuple(str(Path(p).resolve()) for p in args.data),
            "out": str(args.out),
            "proxies": not args.no_proxies,
            "negatives": NegativeRates(block_rate=args.block_rate, review_rate=args.review_rate),
            "pretrained": not args.no_pretrained,
            "progress": not args.no_progress,
        }
    )
