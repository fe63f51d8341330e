"""Sensitivity-guided mixed precision (int8 with a few fp32 nodes) on the tiny trained model."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from karung.training.errors import ExportError
from karung.training.export import QuantOptions, export_fp32, image_batches
from karung.training.export_job import ExportJob, choose_sets, choose_tuning, run_export
from karung.training.quant_search import (
    CalibratedQuantizer,
    SearchOptions,
    TuningSet,
    greedy_exclude,
    rank_groups,
    search_exclusions,
    union,
)
from karung.vision.checkpoint import Checkpoint
from karung.vision.modeldir import INT8_ONNX_FILE

# Few candidates keep each test to seconds: every candidate is one quantisation pass. The head
# is quantised here (fp32_head=False) so that excluding it makes a difference.
FEW_OPS = frozenset({"Gemm", "GlobalAveragePool"})
INT8_HEAD = QuantOptions(fp32_head=False)


def small_job(model_dir: Path, **overrides: object) -> ExportJob:
    """8 calibration, 8 parity and the remaining 8 validation images for tuning."""
    values: dict[str, object] = {
        "checkpoint": model_dir / "model.pt",
        "out_dir": model_dir,
        "calibration_images": 8,
        "parity_images": 8,
        "workers": 0,
        "search": True,
        "search_options": SearchOptions(op_types=FEW_OPS),
        "options": INT8_HEAD,
    }
    values.update(overrides)
    return ExportJob(**values)  # type: ignore[arg-type]


@pytest.fixture
def parts(model_dir: Path, tmp_path: Path) -> tuple[CalibratedQuantizer, TuningSet, set[str]]:
    """A calibrated quantizer, a disjoint tuning set and the graph's node names."""
    job = small_job(model_dir)
    ckpt = Checkpoint.load(job.checkpoint)
    calibration, parity_set = choose_sets(job, ckpt)
    tuning_samples, disjoint = choose_tuning(job, ckpt, calibration, parity_set)
    assert disjoint and len(tuning_samples) == 8
    assert not {s.path for s in tuning_samples} & {s.path for s in calibration + parity_set}
    fp32 = export_fp32(ckpt, tmp_path / "fp32.onnx")
    cal = list(image_batches(calibration, ckpt, workers=0))
    quantizer = CalibratedQuantizer(fp32, cal, INT8_HEAD, tmp_path / "work")
    tuning = TuningSet(ckpt, list(image_batches(tuning_samples, ckpt, workers=0)), disjoint)
    names = {n.name for n in onnx.load(str(quantizer.pre)).graph.node}
    assert names <= {n.name for n in onnx.load(str(fp32)).graph.node}  # Constants fold away
    return quantizer, tuning, names


def test_groups_keep_a_tensor_fp32_with_its_readers(
    parts: tuple[CalibratedQuantizer, TuningSet, set[str]],
) -> None:
    quantizer, _, names = parts
    groups = quantizer.groups()
    first = "/features/features.0/features.0.0/Conv"
    # The stem conv's output passes its Clip (ReLU6) and is read by the first depthwise conv.
    assert groups[first][0] == first and len(groups[first]) == 3
    assert all(set(g) <= names for g in groups.values())
    assert set(quantizer.candidates()) == set(groups)
    # An excluded Gemm really runs in fp32: its weight is a float initialiser, not int8.
    model = onnx.load(str(quantizer.build(groups["/classifier/classifier.1/Gemm"])))
    floats = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    assert gemm.input[1] in floats
    full_gemm = next(n for n in onnx.load(str(quantizer.build())).graph.node if n.op_type == "Gemm")
    assert full_gemm.input[1] not in floats


def test_greedy_exclusions_are_graph_nodes_and_never_hurt(
    parts: tuple[CalibratedQuantizer, TuningSet, set[str]],
) -> None:
    quantizer, tuning, names = parts
    groups = quantizer.groups(FEW_OPS)
    assert groups and set(union(groups, list(groups))) <= names
    full = tuning.score(quantizer.build())
    ranked = rank_groups(quantizer, tuning, groups)
    assert {a for a, _ in ranked} == set(groups)
    # An unreachable target makes the greedy pass keep every group that helps.
    opts = SearchOptions(max_excluded=3, max_tries=len(groups))
    order = [a for a, _ in ranked]
    chosen, score, built = greedy_exclude(quantizer, tuning, groups, order, full, 1.01, opts)
    assert set(chosen) <= set(groups) and len(chosen) <= 3 and built >= 1
    assert not full.better_than(score)
    if chosen:
        assert score.better_than(full)


def test_search_result_records_tuning_figures(
    parts: tuple[CalibratedQuantizer, TuningSet, set[str]],
) -> None:
    quantizer, tuning, names = parts
    result = search_exclusions(quantizer, tuning, 1.0, SearchOptions(margin=0.0, op_types=FEW_OPS))
    assert set(result.excluded) <= names and set(result.groups) <= set(result.excluded)
    assert result.n_tuning == 8 and result.tuning_disjoint and result.target == 1.0
    assert not result.full_int8.better_than(result.mixed)
    body = result.to_dict()
    assert body["excluded"] == list(result.excluded)
    assert body["mixed"]["decision_agreement"] == result.mixed.decision_agreement
    json.dumps(body)  # JSON-able as written to parity.json


def test_export_records_exclusions_and_installs_passing_file(model_dir: Path) -> None:
    # A generous tuning margin makes the search work even on this easy toy gate.
    job = small_job(
        model_dir, min_agreement=0.5, search_options=SearchOptions(margin=0.45, op_types=FEW_OPS)
    )
    result = run_export(job)
    assert result.reports["int8"].passed and result.files["int8"] == model_dir / INT8_ONNX_FILE
    saved = json.loads((model_dir / "parity.json").read_text())
    mixed = saved["int8"]["mixed_precision"]
    assert result.search is not None and mixed["excluded"] == list(result.search.excluded)
    assert mixed["n_tuning"] == 8 and mixed["tuning_disjoint"]
    assert mixed["target"] == pytest.approx(0.95)
    assert mixed["mixed"]["decision_agreement"] >= mixed["full_int8"]["decision_agreement"]
    graph_nodes = {n.name for n in onnx.load(str(model_dir / INT8_ONNX_FILE)).graph.node}
    assert set(result.search.excluded) <= graph_nodes and mixed["groups"] == list(
        result.search.groups
    )
    assert "mixed_precision" not in saved["fp32"] and saved["fp32"]["passed"]


def test_no_search_keeps_full_int8(model_dir: Path) -> None:
    result = run_export(small_job(model_dir, min_agreement=0.5, search=False))
    assert result.search is None
    assert "mixed_precision" not in json.loads((model_dir / "parity.json").read_text())["int8"]


def test_search_options_are_validated() -> None:
    with pytest.raises(ExportError, match="margin"):
        SearchOptions(margin=0.6)
    with pytest.raises(ExportError, match="at least 1"):
        SearchOptions(max_tries=0)
    with pytest.raises(ExportError, match="op_types"):
        SearchOptions(op_types=frozenset())


def test_tuning_falls_back_to_calibration_when_pool_is_used_up(model_dir: Path) -> None:
    job = small_job(model_dir, calibration_images=16, parity_images=8)
    ckpt = Checkpoint.load(job.checkpoint)
    calibration, parity_set = choose_sets(job, ckpt)
    tuning, disjoint = choose_tuning(job, ckpt, calibration, parity_set)
    assert not disjoint and tuning == calibration
    assert not {s.path for s in tuning} & {s.path for s in parity_set}
