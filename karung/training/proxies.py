"""Model-agnostic proxies for accuracy on real listing photos, which the project does not have.

No real photo of a bale is available here, so three measurable stand-ins are reported (model
card, ``karung train``'s ``metrics.json``, ``karung evaluate --proxies``). None of them is the
real-photo accuracy; each bounds a different way of failing on it:

* **leave-one-variant-out AUC**: a head is refitted without one whole renderer variant (the
  first two words of the manifest's ``variant``, e.g. every ``sack-woven-*`` or ``bale-wall``
  image) and scored on the held-out variant's validation images against the other class. A
  model that only knows the renderers it saw scores low here.
* **real false alarms**: the share of real CC0 garment photos of validation senders that reach
  ``review`` and ``block`` (with 95 % intervals): honest preloved listings flagged.
* **domain gap**: a linear probe that tells synthetic garment composites from real CC0 garment
  photos (train senders to fit, validation senders to score). 0.5 means the features cannot
  tell them apart; the closer to 1.0, the more the renderer is recognisable. Lower is better.

All three run on cached frozen features (:mod:`karung.training.features`), so they take seconds
per head fit rather than a retraining each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from karung.training.data import Sample
from karung.training.errors import KarungTrainingError, MetricError
from karung.training.head import fit_linear_head, risk_of
from karung.training.metrics import roc_auc
from karung.training.negatives import RateAt
from karung.vision.probs import RiskHead, risk_indices

# Synthetic variants that are real CC0 photos with the shared nuisances (not rendered objects):
# left out of the domain-gap probe, which measures the renderer.
PHOTO_VARIANT_SUFFIX = "-photo"


@dataclass(frozen=True)
class VariantAuc:
    """One held-out variant: its label, how many val images it had and the AUC on them."""

    variant: str
    label: str
    n_val: int
    auc: float


@dataclass(frozen=True)
class LovoReport:
    """Leave-one-variant-out AUCs, per variant and summarised."""

    variants: tuple[VariantAuc, ...]
    mean_auc: float
    min_auc: float
    min_variant: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def variant_family(variant: str) -> str:
    """The renderer family of a manifest variant: its first two dash-separated words."""
    return "-".join(variant.split("-")[:2])


def leave_one_variant_out(
    x: np.ndarray,
    samples: Sequence[Sample],
    labels: Sequence[str],
    *,
    l2: float,
    min_val: int = 10,
    progress: bool = True,
) -> LovoReport:
    """Refit without each synthetic variant family in turn and score its validation images.

    Training keeps every other row (real photos included), as the recipe does; each refit is
    warm-started from the head fitted on all rows. A held-out
    positive variant is scored against all synthetic validation negatives; a held-out negative
    variant against all synthetic validation positives. Variants with fewer than ``min_val``
    validation images are skipped.

    Raises:
        MetricError: no variant has enough validation images.
    """
    risky = risk_indices(labels)
    y = np.array([s.label for s in samples])
    variant = np.array([variant_family(s.variant) if s.variant else "" for s in samples])
    train = np.array([s.split == "train" for s in samples])
    val = np.array([s.split == "val" for s in samples]) & (variant != "")
    positive = np.isin(y, risky)
    names = sorted({v for v in variant[val] if int(np.sum(val & (variant == v))) >= min_val})
    if not names:
        raise MetricError("no synthetic variant has enough validation images")
    rows = []
    full = fit_linear_head(x[train], y[train], len(labels), l2=l2)
    for name in tqdm(names, desc="leave-one-variant-out", disable=not progress):
        keep = train & (variant != name)
        head = fit_linear_head(x[keep], y[keep], len(labels), l2=l2, init=full)
        held = val & (variant == name)
        other_side = val & (positive != positive[held][0]) & (variant != name)
        idx = held | other_side
        auc = roc_auc(positive[idx], risk_of(head, x[idx], RiskHead(tuple(labels))))
        rows.append(VariantAuc(name, labels[int(y[held][0])], int(held.sum()), auc))
    aucs = np.array([r.auc for r in rows])
    worst = rows[int(aucs.argmin())]
    return LovoReport(tuple(rows), float(aucs.mean()), float(aucs.min()), worst.variant)


@dataclass(frozen=True)
class FalseAlarms:
    """Real negatives of validation senders reaching each cut."""

    at_review: RateAt
    at_block: RateAt

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def real_false_alarms(neg_risk: np.ndarray, block: float, review: float) -> FalseAlarms:
    """The share of real negatives sent to review or worse, and blocked, with 95 % intervals."""
    if np.asarray(neg_risk).size == 0:
        raise MetricError("no real negatives of validation senders")
    return FalseAlarms(RateAt.measure(neg_risk, review), RateAt.measure(neg_risk, block))


@dataclass(frozen=True)
class DomainGap:
    """Balanced accuracy of the synthetic-vs-real probe on validation senders (lower is better)."""

    balanced_accuracy: float
    n_train: tuple[int, int]
    n_val: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def domain_gap(
    x: np.ndarray, samples: Sequence[Sample], labels: Sequence[str], *, l2: float = 1e-3
) -> DomainGap:
    """Fit synthetic garment composites vs real garment photos on train, score on val.

    Raises:
        MetricError: a split lacks synthetic composites or real photos.
    """
    garment = labels.index("garment") if "garment" in labels else -1
    is_garment = np.array([s.label == garment for s in samples])
    real = np.array([s.is_real for s in samples]) & is_garment
    synth = (
        np.array(
            [bool(s.variant) and not s.variant.endswith(PHOTO_VARIANT_SUFFIX) for s in samples]
        )
        & is_garment
    )
    split = np.array([s.split for s in samples])
    sides = {}
    for name in ("train", "val"):
        s_idx, r_idx = synth & (split == name), real & (split == name)
        if not s_idx.any() or not r_idx.any():
            raise MetricError(f"domain gap: {name} needs synthetic garments and real photos")
        sides[name] = (s_idx, r_idx)
    (st, rt), (sv, rv) = sides["train"], sides["val"]
    fit_rows = st | rt
    head = fit_linear_head(x[fit_rows], synth[fit_rows].astype(np.int64), 2, l2=l2)
    pred = head.logits(x).argmax(axis=1) == 1
    acc = 0.5 * (float(pred[sv].mean()) + float((~pred[rv]).mean()))
    return DomainGap(acc, (int(st.sum()), int(rt.sum())), (int(sv.sum()), int(rv.sum())))


def run_proxies(jobs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run each proxy job; a job the data cannot support is recorded as ``{"skipped": why}``."""
    out: dict[str, Any] = {}
    for name, job in jobs.items():
        try:
            out[name] = job().to_dict()
        except KarungTrainingError as exc:
            out[name] = {"skipped": str(exc)}
    return out
