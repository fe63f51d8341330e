"""Champion against challenger on the same held-out real photos, with paired bootstrap CIs.

Guarded metrics (each oriented so that larger is better for the gate):

* ``false_block_rate``: share of held-out real negatives (reviewed garments/others of held-out
  sellers and the real CC0 negatives of validation senders) at ``risk >= block``; lower is better.
* ``recall``: share of reviewed positives (bales, sacks) of held-out sellers at
  ``risk >= review`` (blocked or sent to a moderator): what reaches a decision.
* ``auc``: ROC AUC of risk, reviewed positives against all held-out real negatives.

"At least as good" is a non-inferiority test on the *paired* bootstrap: the same resampled
rows score both models, and the challenger passes a metric when the one-sided 95 % lower bound
(5th percentile) of its improvement is above ``-margin``. The margins are a small fraction of what
one photo weighs in a first day's labels (see :class:`GatePolicy`), so a challenger that is really
worse is refused while noise on a few dozen photos does not block every refit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np

from karung.training.metrics import roc_auc

GUARDED: Final = ("false_block_rate", "recall", "auc")
LOWER_IS_BETTER: Final = frozenset({"false_block_rate"})


@dataclass(frozen=True)
class GatePolicy:
    """Non-inferiority margins of the guarded metrics, and the bootstrap's size."""

    false_block_margin: float = 0.005  # +0.5 pp: the block-rate target itself (karung train)
    recall_margin: float = 0.02
    auc_margin: float = 0.005  # half of what one day's labels were measured to add (issue 21)
    rounds: int = 1000
    seed: int = 0

    def margin(self, metric: str) -> float:
        """The margin of one guarded metric."""
        return {
            "false_block_rate": self.false_block_margin,
            "recall": self.recall_margin,
            "auc": self.auc_margin,
        }[metric]


@dataclass(frozen=True)
class Scored:
    """One model's risk on the evaluation rows and the cuts it decides with."""

    risk: np.ndarray
    block: float
    review: float


def point_metrics(
    s: Scored, positive: np.ndarray, idx: np.ndarray | None = None
) -> dict[str, float]:
    """The guarded metrics of one model on the rows ``idx`` (all rows when None)."""
    rows = np.arange(s.risk.size) if idx is None else idx
    risk, pos = s.risk[rows], positive[rows]
    neg = ~pos
    out = {
        "false_block_rate": float(np.mean(risk[neg] >= s.block)) if neg.any() else float("nan"),
        "recall": float(np.mean(risk[pos] >= s.review)) if pos.any() else float("nan"),
        "auc": float(roc_auc(pos, risk)) if pos.any() and neg.any() else float("nan"),
    }
    return out


@dataclass(frozen=True)
class MetricComparison:
    """One guarded metric: both estimates with 95 % CIs, the paired improvement and the verdict."""

    metric: str
    # Point estimates on all held-out rows, and percentile intervals over the bootstrap rounds.
    champion: float
    challenger: float
    champion_ci95: tuple[float, float]
    challenger_ci95: tuple[float, float]
    # Oriented so that positive is better (false blocks: champion minus challenger).
    improvement: float
    improvement_lower95: float  # 5th percentile of the paired improvement
    margin: float
    passed: bool  # improvement_lower95 >= -margin


@dataclass(frozen=True)
class Comparison:
    """Every guarded metric, the evaluation counts and the overall verdict."""

    metrics: list[MetricComparison]
    positives: int
    negatives: int
    policy: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when the challenger is at least as good on every guarded metric."""
        return bool(self.metrics) and all(m.passed for m in self.metrics)

    def reasons(self) -> list[str]:
        """Why the gate refused (empty when it passed)."""
        if not self.metrics:
            return ["no held-out reviewed positives and negatives to judge on"]
        return [
            f"{m.metric}: improvement lower bound {m.improvement_lower95:+.4f} is below "
            f"-{m.margin:.4f}"
            for m in self.metrics
            if not m.passed
        ]

    def side(self, which: str) -> dict[str, Any]:
        """The metrics of ``champion`` or ``challenger`` with their CIs, as plain data."""
        out: dict[str, Any] = {}
        for m in self.metrics:
            out[m.metric] = getattr(m, which)
            out[f"{m.metric}_ci95"] = list(getattr(m, f"{which}_ci95"))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (lineage, report, CLI output)."""
        return {
            "passed": self.passed,
            "positives": self.positives,
            "negatives": self.negatives,
            "policy": self.policy,
            "metrics": [asdict(m) for m in self.metrics],
            "reasons": self.reasons(),
        }


def _resample(pos_idx: np.ndarray, neg_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A stratified bootstrap sample: positives and negatives resampled separately."""
    return np.concatenate([rng.choice(pos_idx, pos_idx.size), rng.choice(neg_idx, neg_idx.size)])


def compare(
    champion: Scored, challenger: Scored, positive: np.ndarray, policy: GatePolicy | None = None
) -> Comparison:
    """Compare two models on the same rows (``positive``: reviewed bale/sack rows)."""
    pol = policy or GatePolicy()
    pos_idx, neg_idx = np.flatnonzero(positive), np.flatnonzero(~positive)
    if pos_idx.size == 0 or neg_idx.size == 0:
        return Comparison([], int(pos_idx.size), int(neg_idx.size), asdict(pol))
    rng = np.random.default_rng(pol.seed)
    draws: dict[str, list[tuple[float, float]]] = {m: [] for m in GUARDED}
    for _ in range(pol.rounds):
        idx = _resample(pos_idx, neg_idx, rng)
        a, b = point_metrics(champion, positive, idx), point_metrics(challenger, positive, idx)
        for m in GUARDED:
            draws[m].append((a[m], b[m]))
    base, new = point_metrics(champion, positive), point_metrics(challenger, positive)
    rows = [_judge(m, base[m], new[m], np.asarray(draws[m]), pol) for m in GUARDED]
    return Comparison(rows, int(pos_idx.size), int(neg_idx.size), asdict(pol))


def _judge(
    metric: str, base: float, new: float, draws: np.ndarray, pol: GatePolicy
) -> MetricComparison:
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    gain = sign * (draws[:, 1] - draws[:, 0])
    lower = float(np.nanpercentile(gain, 5))
    margin = pol.margin(metric)

    def ci(col: int) -> tuple[float, float]:
        lo, hi = np.nanpercentile(draws[:, col], [2.5, 97.5])
        return float(lo), float(hi)

    return MetricComparison(
        metric=metric,
        champion=base,
        challenger=new,
        champion_ci95=ci(0),
        challenger_ci95=ci(1),
        improvement=sign * (new - base),
        improvement_lower95=lower,
        margin=margin,
        passed=bool(lower >= -margin),
    )
