"""benchmarks/accuracy.py's reading of ../shared/data/published_measurements.csv: every
row diffhw can express becomes a prediction task, the rest are skipped with a reason."""

import importlib.util
import math
from pathlib import Path

import pytest

import diffhw

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "published_measurements.csv"


@pytest.fixture(scope="module")
def accuracy():
    if not DATA.exists():
        pytest.skip("shared/data not present")
    spec = importlib.util.spec_from_file_location("accuracy_bench", ROOT / "benchmarks" / "accuracy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_accuracy_reads_every_expressible_row(accuracy):
    points, skipped = accuracy.published_points()
    reasons = dict(skipped)
    assert not [i for i, why in skipped if why.startswith("no preset")], reasons
    ids = {p["id"].split("/")[0] for p in points}
    assert not ids & set(reasons)
    assert accuracy.ORIGINAL_ROWS <= ids  # every row predicted before still is
    assert len(ids) + len(reasons) == 122
    by = {p["id"]: p for p in points}
    # a trtllm-bench FP4 Blackwell row: the FP8 KV cache TensorRT-LLM keeps, in its theme
    m055 = by["M055"]
    assert (m055["hardware"], m055["model"], m055["weight_precision"], m055["kv_precision"]) == (
        "b200", "llama-3.3-70b", "fp4", "fp8")
    assert "theme: FP4 Blackwell max-throughput" in m055["themes"]
    # an AWQ row runs as AWQ where diffhw has that precision, else as int4, and says so
    assert by["M115"]["format"].startswith("AWQ") and by["M115"]["weight_precision"] in ("awq", "int4")
    # Llama-3.1-405B FP8 on 8 H200s without a stated layout: the smallest TP that holds it
    assert (by["M089"]["tp"], by["M089"]["dp"]) == (4, 2)
    # the perf-overview's MoE rows, alike: the table's TP 8 for attention, the experts over
    # all 8 GPUs (not the attention DP of M074-M076's software field: see accuracy.py)
    for i in ("M074", "M075", "M076", "M077"):
        assert (by[i]["tp"], by[i]["dp"], by[i]["ep"]) == (8, 1, 8), i
    for p in points:
        assert p["measured"] > 0 and math.isfinite(p["measured"]), p["id"]
        diffhw.parallelism(tp=p["tp"], dp=p["dp"], ep=p.get("ep", 1))


def test_serving_rows_at_the_measured_utilisation(accuracy):
    """A Server row's latencies are compared twice: at the measured rate, and at the
    measured utilisation (the rate over the matching Offline row's: M004 / M003)."""
    points, _ = accuracy.published_points()
    by = {p["id"]: p for p in points}
    at_u = by["M004/tpot_mean@u"]
    assert at_u["utilisation"] == pytest.approx(18.06 / 18.9752, rel=1e-6)
    assert at_u["metric"] == by["M004/tpot_mean"]["metric"] == "serve_tpot_mean_s"
    assert "utilisation" not in by["M004/tpot_mean"] and "measured utilisation" in at_u["group"]
    # every latency point at the measured rate has its twin (each such row has an Offline row)
    rate = [i for i, p in by.items() if p["metric"] in accuracy.SERVE_LATENCY_METRICS and "@u" not in i]
    assert rate and all(i + "@u" in by and 0.5 < by[i + "@u"]["utilisation"] < 1.0 for i in rate)


def test_goal_line_counts_each_serving_row_once(accuracy):
    """With `serving`, an MLPerf Server/Interactive row counts by `serve`'s maximum rate,
    not also by the static-batch search; without, as the goal was first stated."""
    points, _ = accuracy.published_points()
    static = [p for p in points if p["group"] in accuracy.STATIC_SERVING_GROUPS]
    served = [p for p in points if p["metric"] in accuracy.SERVE_RATE_METRICS]
    assert static and served
    assert all(accuracy._goal_point(p, serving=False) and not accuracy._goal_point(p, serving=True) for p in static)
    assert all(accuracy._goal_point(p, serving=True) and not accuracy._goal_point(p, serving=False) for p in served)
    # every static serving row has its serving-model point: nothing drops out of the line
    assert {p["id"] for p in static} <= {p["id"].split("/")[0] for p in served}
    offline = next(p for p in points if p["group"] == "MLPerf offline")
    assert accuracy._goal_point(offline, serving=True) and accuracy._goal_point(offline, serving=False)


def test_heldout_points_are_not_in_the_data(accuracy):
    """benchmarks/heldout.py judges on published points outside ../shared/data: none of
    them is a data row (same chip, model, precision and ISL/OSL), and each is built on a
    data row of its table."""
    spec = importlib.util.spec_from_file_location("heldout_bench", ROOT / "benchmarks" / "heldout.py")
    heldout = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(heldout)
    pts = heldout.points()
    assert len(pts) == 105
    data = {(p["hardware"], p["model"], p["weight_precision"], p["input_tokens"], p["output_tokens"])
            for p in accuracy.published_points()[0] if p["metric"] == "max_throughput"}
    for _, chip, (isl, osl), measured, p in pts:
        assert measured > 0 and p["hardware"] == chip
        assert (chip, p["model"], p["weight_precision"], float(isl), float(osl)) not in data, p["id"]
