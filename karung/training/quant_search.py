"""Sensitivity-guided mixed precision: keep the few int8-hostile nodes of a graph in fp32.

Full static int8 can miss the decision-agreement gate by a point or two. Usually a handful
of nodes cause most of the error, so the search

1. calibrates once (ONNX Runtime's calibration cache), after which every int8 variant is a
   quantisation pass of about a second instead of a recalibration;
2. ranks the quantisable nodes by how much keeping each one's output in fp32 helps on a
   *tuning* set of validation images, disjoint from the calibration and the parity images
   (tuning on the parity set would overfit the gate);
3. excludes them in that order, keeping each only if it lowers the risk error without
   costing agreement, until the tuning agreement clears the gate by ``margin``.

The unit is a *group*: a node together with every node reading its output. Excluding a
single node hardly helps, because its int8 neighbours keep its activations quantised;
in MobileNetV2 most of the error is activation rounding, not weights.

The caller then runs the ordinary parity check on the parity set.

Measured on the shipped 160 px MobileNetV2 (AVX2, 7-bit weights): the int8 error is spread
over the whole network (simulated QDQ without ORT's int8 kernels gives the same 98.5%), the
best single group (the stem conv's output) cuts the mean risk error by ~30%, and the tuning
set only clears 99.8% with ~48 of 64 groups in fp32, so there the search cannot buy parity
cheaply and the gate still refuses the file.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx

from karung.training.errors import ExportError
from karung.training.export import (
    MIN_AGREEMENT,
    QuantOptions,
    head_nodes,
    prepare_for_quantization,
    quantize_prepared,
)
from karung.vision.backends import TorchBackend
from karung.vision.checkpoint import Checkpoint
from karung.vision.onnx_backend import OnnxBackend

# Ops whose int8 form does arithmetic on quantised values. Clip/Relu fold into the producer's
# output range and reshaping ops only move data, so excluding those changes nothing.
CANDIDATE_OPS: Final = frozenset(
    {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "GlobalAveragePool", "AveragePool"}
)

# Ops that carry a tensor on unchanged or clamp it: the range of their input carries through.
PASS_THROUGH_OPS: Final = frozenset(
    {"Clip", "Relu", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity"}
)


@dataclass(frozen=True)
class SearchOptions:
    """How hard to look and how much headroom to leave on the tuning set."""

    margin: float = 0.003
    max_excluded: int = 16
    max_tries: int = 32
    op_types: frozenset[str] = CANDIDATE_OPS

    def __post_init__(self) -> None:
        if not 0.0 <= self.margin < 0.5:
            raise ExportError(f"margin must be in [0, 0.5), got {self.margin}")
        if self.max_excluded < 1 or self.max_tries < 1:
            raise ExportError("max_excluded and max_tries must be at least 1")
        if not self.op_types:
            raise ExportError("op_types must name at least one operator type")


@dataclass(frozen=True)
class TuningScore:
    """How one int8 variant follows torch fp32 on the tuning images."""

    decision_agreement: float
    mean_abs_risk_diff: float
    max_abs_risk_diff: float

    def better_than(self, other: TuningScore) -> bool:
        """A smaller mean risk error without losing agreeing decisions.

        The continuous error decides: accepting whatever fixes one more decision on the
        tuning set overfits it (measured: 99.7% there, 99.2% on the parity set).
        """
        return (
            self.mean_abs_risk_diff < other.mean_abs_risk_diff
            and self.decision_agreement >= other.decision_agreement
        )


@dataclass(frozen=True)
class SearchResult:
    """The fp32 nodes chosen and the tuning-set figures before and after.

    ``groups`` names the node whose output tensor each chosen group keeps in fp32;
    ``excluded`` is every node left in fp32 (the union of the groups).
    """

    excluded: tuple[str, ...]
    groups: tuple[str, ...]
    n_tuning: int
    tuning_disjoint: bool
    target: float
    full_int8: TuningScore
    mixed: TuningScore
    variants_evaluated: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (recorded in ``parity.json`` under the int8 entry)."""
        body = asdict(self)
        body["excluded"] = list(self.excluded)
        body["groups"] = list(self.groups)
        return body


class CalibratedQuantizer:
    """An fp32 graph prepared and calibrated once; each variant then costs one quick pass."""

    def __init__(
        self,
        fp32_path: Path,
        batches: Sequence[np.ndarray],
        opts: QuantOptions,
        work_dir: Path,
    ) -> None:
        self.opts = opts
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        self.pre = prepare_for_quantization(fp32_path, work_dir / "pre.onnx")
        self.head = head_nodes(self.pre)  # once, not on every one of ~70 variants
        self.cache = work_dir / "ranges.json"
        self._batches = list(batches)
        self.built = 0

    def build(self, exclude: Sequence[str] = (), out: Path | None = None) -> Path:
        """Quantise with the nodes in ``exclude`` left in fp32 (calibrates on first use)."""
        self.built += 1
        # Variants share one scratch file: each is scored before the next one is built.
        path = out or self.work_dir / "variant.onnx"
        return quantize_prepared(
            self.pre,
            path,
            self.opts,
            batches=self._batches,
            exclude=exclude,
            cache=self.cache,
            head=self.head,
        )

    def candidates(self, op_types: frozenset[str] = CANDIDATE_OPS) -> list[str]:
        """Names of the nodes whose int8 form could be traded back to fp32, in graph order."""
        graph = onnx.load(str(self.pre), load_external_data=False).graph
        return [n.name for n in graph.node if n.op_type in op_types and n.name]

    def groups(self, op_types: frozenset[str] = CANDIDATE_OPS) -> dict[str, tuple[str, ...]]:
        """Each candidate node with every node that reads its output (see :func:`output_groups`)."""
        return output_groups(onnx.load(str(self.pre), load_external_data=False).graph, op_types)


def output_groups(graph: onnx.GraphProto, op_types: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """For each candidate node, the nodes to exclude so that its output tensor stays fp32.

    Excluding one node alone keeps its activations quantised whenever a neighbour is still
    int8 (the neighbour asks for the Q/DQ pair), so only its weights change. Keeping the
    *output* in fp32 needs the producer and every consumer, followed through pass-through
    ops (Clip, Flatten, ...), excluded together.
    """
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    groups: dict[str, tuple[str, ...]] = {}
    for node in graph.node:
        if node.op_type in op_types and node.name:
            members = [node.name]
            frontier = list(node.output)
            while frontier:
                for reader in consumers.get(frontier.pop(), []):
                    members.append(reader.name)
                    if reader.op_type in PASS_THROUGH_OPS:
                        frontier.extend(reader.output)
            groups[node.name] = tuple(dict.fromkeys(members))
    return groups


class TuningSet:
    """Tuning images with their torch fp32 risks, computed once."""

    def __init__(self, ckpt: Checkpoint, batches: Sequence[np.ndarray], disjoint: bool) -> None:
        if not batches:
            raise ExportError("no readable tuning images for the int8 search")
        self.ckpt = ckpt
        self.batches = list(batches)
        self.disjoint = disjoint
        ref = TorchBackend(ckpt.build_model())
        self.ref_risk = np.concatenate([self._risk(ref.logits(b)) for b in self.batches])
        self.ref_decisions = self._decide(self.ref_risk)

    @property
    def n(self) -> int:
        """Number of tuning images."""
        return int(self.ref_risk.size)

    def _risk(self, logits: np.ndarray) -> np.ndarray:
        return self.ckpt.risk_head.risk_of_logits(logits)

    def _decide(self, risks: np.ndarray) -> list[str]:
        return [str(self.ckpt.thresholds.decide(float(r))) for r in risks]

    def risks(self, onnx_path: Path) -> np.ndarray:
        """The risk an ONNX file gives each tuning image."""
        # Idle threads sleep: the search runs many short sessions on a possibly shared machine.
        backend = OnnxBackend(onnx_path, spin=False)
        return np.concatenate([self._risk(backend.logits(b)) for b in self.batches])

    def score(self, onnx_path: Path) -> TuningScore:
        """Decision agreement and risk error of one ONNX file against torch fp32."""
        risk = self.risks(onnx_path)
        same = [a == b for a, b in zip(self.ref_decisions, self._decide(risk), strict=True)]
        diff = np.abs(risk - self.ref_risk)
        return TuningScore(float(np.mean(same)), float(diff.mean()), float(diff.max()))


Groups = dict[str, tuple[str, ...]]


def union(groups: Groups, anchors: Sequence[str]) -> list[str]:
    """The node names of the chosen groups, each once, in the order given."""
    return list(dict.fromkeys(name for anchor in anchors for name in groups[anchor]))


def rank_groups(
    quantizer: CalibratedQuantizer, tuning: TuningSet, groups: Groups
) -> list[tuple[str, TuningScore]]:
    """Each group's tuning score when it alone stays fp32, smallest risk error first.

    Ranked by the continuous risk error: single flips near a threshold are too noisy to
    rank ~60 small effects by.
    """
    scored = [(anchor, tuning.score(quantizer.build(nodes))) for anchor, nodes in groups.items()]
    return sorted(scored, key=lambda ns: ns[1].mean_abs_risk_diff)


def greedy_exclude(
    quantizer: CalibratedQuantizer,
    tuning: TuningSet,
    groups: Groups,
    ranked: Sequence[str],
    start: TuningScore,
    target: float,
    opts: SearchOptions,
) -> tuple[list[str], TuningScore, int]:
    """Add groups in ``ranked`` order, each kept only if it helps, until ``target`` is met.

    Returns the chosen group anchors, their score and the number of variants built.
    """
    chosen: list[str] = []
    current, built = start, 0
    for anchor in ranked[: opts.max_tries]:
        if current.decision_agreement >= target or len(chosen) >= opts.max_excluded:
            break
        trial = tuning.score(quantizer.build(union(groups, [*chosen, anchor])))
        built += 1
        if trial.better_than(current):
            chosen.append(anchor)
            current = trial
    return chosen, current, built


def search_exclusions(
    quantizer: CalibratedQuantizer,
    tuning: TuningSet,
    required: float = MIN_AGREEMENT,
    opts: SearchOptions | None = None,
) -> SearchResult:
    """Find the fp32 nodes that lift tuning agreement to ``required + margin``.

    No node is excluded when full int8 already clears the target, or when the target is
    unreachable (``required > 1``, used to test the gate itself).
    """
    opts = opts or SearchOptions()
    started = time.perf_counter()
    target = required + opts.margin
    full = tuning.score(quantizer.build())
    chosen: list[str] = []
    groups: Groups = {}
    mixed, built = full, 1
    if full.decision_agreement < target and required <= 1.0:
        groups = quantizer.groups(opts.op_types)
        ranked = [anchor for anchor, _ in rank_groups(quantizer, tuning, groups)]
        chosen, mixed, n_greedy = greedy_exclude(
            quantizer, tuning, groups, ranked, full, target, opts
        )
        built += len(groups) + n_greedy
    return SearchResult(
        excluded=tuple(union(groups, chosen)),
        groups=tuple(chosen),
        n_tuning=tuning.n,
        tuning_disjoint=tuning.disjoint,
        target=target,
        full_int8=full,
        mixed=mixed,
        variants_evaluated=built,
        seconds=round(time.perf_counter() - started, 1),
    )
