"""Serving as a design goal: `ServingGoal` metrics in `design_values`, sizing for serving
(at the max rate and at a load), both disaggregated pools, speculative decoding, and the
CLI's --serving flags. (Split from test_serving.py so the two run on both workers.)"""

import json
import math

import equinox as eqx
import jax
import pytest

import diffhw

TR = dict(input_tokens=1024, output_tokens=128)




def test_serving_goal_metrics_are_serve_at_the_max_rate():
    d = diffhw.from_presets("h100-sxm", "llama-3.1-8b", batch=8, input_tokens=1024, output_tokens=128,
                            serving=diffhw.serving_goal(0.45, 0.04))
    names = diffhw.metric_names(d)
    assert set(diffhw.SERVING_METRICS + diffhw.SERVING_ECONOMICS) <= set(names)
    v = diffhw.design_values(d)
    assert set(names) == set(v)
    s = diffhw.serve(d.hardware, d.model, diffhw.traffic(1.0, **TR), d.parallelism, ttft_limit_s=0.45,
                     tpot_limit_s=0.04, at_max_rate=True, technology=d.technology)
    assert float(v["serving_max_request_rate_per_s"]) == pytest.approx(float(s.max_request_rate_per_s), rel=1e-5)
    assert float(v["serving_usd_per_million_tokens"]) == pytest.approx(float(s.economics.usd_per_million_tokens),
                                                                       rel=1e-5)
    assert float(v["serving_output_tokens_per_s"]) == pytest.approx(128.0 * float(s.max_request_rate_per_s),
                                                                    rel=1e-5)
    # the batch plays no part in serving
    v2 = diffhw.design_values(diffhw.set_values(d, {"workload.batch": 64.0}))
    assert float(v2["serving_max_request_rate_per_s"]) == float(v["serving_max_request_rate_per_s"])
    with pytest.raises(diffhw.InputError, match="prefix_hit"):
        diffhw.serving_goal(2.0, 0.2, prefix_hit=1.0)
    # the output-length spread reaches serve (same structure: no new compile)
    g = diffhw.serving_goal(0.45, 0.04, output_cv=1.0)
    v3 = diffhw.design_values(eqx.tree_at(lambda d: d.serving, d, g))
    s3 = diffhw.serve(d.hardware, d.model, diffhw.traffic(1.0, output_cv=1.0, **TR), d.parallelism, ttft_limit_s=0.45,
                      tpot_limit_s=0.04, at_max_rate=True, technology=d.technology)
    assert float(v3["serving_max_request_rate_per_s"]) == pytest.approx(float(s3.max_request_rate_per_s), rel=1e-5)
    assert float(v3["serving_max_request_rate_per_s"]) < float(v["serving_max_request_rate_per_s"]) * 0.999
    with pytest.raises(diffhw.InputError, match="output_cv"):
        diffhw.serving_goal(2.0, 0.2, output_cv=-1.0)


def test_size_minimises_serving_cost_under_limits():
    d = diffhw.from_presets("h100-sxm", "llama-3.1-8b", batch=8, input_tokens=1024, output_tokens=128,
                            serving=diffhw.serving_goal(2.0, 0.2))
    r = diffhw.size(d, [diffhw.variable("memory_bandwidth", 1e12, 2e13)], "serving_usd_per_million_tokens",
                    [diffhw.Constraint("serving_max_request_rate_per_s", lower=5.0),
                     diffhw.Constraint("chip_area_mm2", upper=858.0)],
                    starts=1, inner_steps=15, outer_steps=2, progress=False)
    assert r.feasible and r.objective <= r.objective_baseline * (1 + 1e-6)
    assert r.metrics["serving_max_request_rate_per_s"] >= 5.0 * (1 - 1e-4)
    # the chosen design re-checked by serve itself
    s = diffhw.serve(r.design.hardware, r.design.model, diffhw.traffic(1.0, **TR), r.design.parallelism,
                     ttft_limit_s=2.0, tpot_limit_s=0.2, at_max_rate=True, technology=r.design.technology, tau=0.0)
    assert float(s.economics.usd_per_million_tokens) == pytest.approx(r.objective, rel=1e-3)


@pytest.mark.parametrize("args,field", [
    (["size", "--serving", "off", "--serving-ttft-p99-ms", "100"], "--serving-ttft-p99-ms"),
    (["size", "--serving", "off", "--min-request-rate", "3"], "--min-request-rate"),
    (["size", "--min-request-rate", "-3"], "--min-request-rate"),
    (["size", "--serving", "off", "--output-cv", "1"], "--output-cv"),
    (["sensitivity", "--serving", "server", "--output-cv", "-1"], "--output-cv"),
    (["sweep", "--serving", "server", "--serving-tpot-p99-ms", "-5", "--vary", "workload.batch=1:8:2"],
     "--serving-tpot-p99-ms"),
])
def test_cli_serving_flags_refuse_bad_input(_cli, args, field):
    p = _cli(*args)
    assert p.returncode == 2 and field in p.stderr and "Traceback" not in p.stderr


def test_cli_size_serves_at_the_largest_rate(_cli):
    """diffhw size sizes for serving by default: the p99 limits and the load are
    constraints, and serve's exact max rate at the chosen design is reported (here with
    MTP speculative decoding, which the exact check uses too; without it:
    test_size_both_disaggregated_pools)."""
    p = _cli("size", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--chips", "1", "--input-tokens", "1024",
             "--output-tokens", "128", "--precision", "bf16", "--serving", "interactive", "--mtp",
             "--draft-tokens", "2", "--acceptance", "0.8",
             "--vary", "memory_bandwidth=1e12:1e13", "--vary", "batch=1:256", "--starts", "2", "--steps", "40",
             "--outer", "4", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["serving"]["speculative"] == {"draft_model": "mtp", "draft_tokens": 2.0, "acceptance": 0.8}
    assert d["objective"]["terms"][0]["metric"] == "serving_usd_per_million_tokens" and d["feasible"]
    assert {c["constraint"] for c in d["constraints"]} >= {"serving_utilization <= 1", "serving_ttft_p99_s <= 0.45",
                                                            "serving_tpot_p99_s <= 0.04"}
    m, sv = d["metrics"], d["serving"]
    assert sv["scenario"] == "interactive" and sv["chosen"]["meets_slo"]
    # the load found meets the limits, so serve's largest rate is at least its rate
    assert sv["chosen"]["max_request_rate_per_s"] >= m["serving_request_rate_per_s"] * (1 - 1e-3)
    assert sv["chosen"]["usd_per_million_tokens"] <= sv["baseline"]["usd_per_million_tokens"]


def test_size_both_disaggregated_pools(_cli):
    """The paper's case: sized together, the Decode pool sheds compute (memory-bound
    steps) while the Prefill pool keeps it; both chips meet the budgets and serve
    re-checks the pair at its exact largest rate."""
    p = _cli("size", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--chips", "1", "--prefill-chips", "1",
             "--input-tokens", "4096", "--output-tokens", "512", "--precision", "bf16", "--serving", "interactive",
             "--vary", "compute=0.25:4", "--vary", "prefill_compute=0.25:4", "--vary", "batch=1:256",
             "--starts", "2", "--steps", "40", "--outer", "4", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    chosen = {v["name"]: v["chosen"] for v in d["variables"]}
    assert d["feasible"] and chosen["compute"] < chosen["prefill_compute"]
    labels = {c["constraint"] for c in d["constraints"]}
    assert {"serving_prefill_chip_area_mm2 <= 858", "serving_prefill_peak_power_w <= 1000"} <= labels
    sv = d["serving"]["chosen"]
    assert sv["meets_slo"] and sv["max_request_rate_per_s"] >= d["metrics"]["serving_request_rate_per_s"] * (1 - 1e-3)
    assert sv["usd_per_million_tokens"] <= d["serving"]["baseline"]["usd_per_million_tokens"] * (1 + 1e-6)


def test_serving_goal_disaggregated_metrics():
    base = diffhw.from_presets("h100-sxm", "llama-3.1-8b", batch=8, input_tokens=1024, output_tokens=128)
    dis = diffhw.disaggregated(diffhw.presets.hardware("b200"), diffhw.parallelism(tp=1))
    for load in ("max_rate", "batch"):
        d = base.__class__(base.hardware, base.model, base.workload, base.parallelism, base.technology,
                           diffhw.serving_goal(2.0, 0.2, load=load, disaggregation=dis))
        v = diffhw.design_values(d)
        assert set(diffhw.metric_names(d)) == set(v)
        b200 = diffhw.evaluate(dis.prefill_hardware, d.model, d.workload, diffhw.parallelism(tp=1),
                               technology=d.technology).economics
        assert float(v["serving_prefill_chip_area_mm2"]) == pytest.approx(float(b200.chip_area_mm2), rel=1e-5)
        # the path a sizing varies reaches the Prefill pool
        path = "serving.disaggregation.prefill_hardware.memory_bandwidth_bytes_per_s"
        assert float(diffhw.get_value(d, path)) == float(dis.prefill_hardware.memory_bandwidth_bytes_per_s)


def test_serving_goal_with_speculation():
    """A goal's speculative decoding is serve's: the same max rate, a parameter a sizing
    can vary, and at load (`load="batch"`) serve_at_load's point, with a gradient in the
    acceptance (that speculation raises the rate: test_speculative_decoding)."""
    base = diffhw.from_presets("h100-sxm", "llama-3.1-8b", batch=8, input_tokens=1024, output_tokens=128)
    spec = diffhw.speculative(3, 0.8)  # MTP heads
    tr = diffhw.traffic(1.0, **TR)
    for load in ("max_rate", "batch"):
        d = eqx.tree_at(lambda d: d.serving, base, diffhw.serving_goal(0.45, 0.04, load=load, speculation=spec),
                        is_leaf=lambda x: x is None)
        v = diffhw.design_values(d)
        assert float(diffhw.get_value(d, "serving.speculation.acceptance")) == pytest.approx(0.8)
        if load == "max_rate":
            s = diffhw.serve(d.hardware, d.model, tr, d.parallelism, ttft_limit_s=0.45, tpot_limit_s=0.04,
                             at_max_rate=True, technology=d.technology, speculation=spec)
            assert float(v["serving_max_request_rate_per_s"]) == pytest.approx(float(s.max_request_rate_per_s),
                                                                                rel=1e-5)
        else:
            def tpot(acceptance):  # serve_at_load's point at 8 sequences (no economics: a small program)
                s = diffhw.Speculation(3.0, acceptance)
                return diffhw.serve_at_load(d.hardware, d.model, tr, d.parallelism, 8.0, speculation=s).tpot_mean_s

            at, dt = jax.jit(jax.value_and_grad(tpot))(0.8)  # one program for the value and its gradient
            assert float(v["serving_tpot_mean_s"]) == pytest.approx(float(at), rel=1e-6)
            dt = float(dt)
            assert math.isfinite(dt) and dt < 0  # better drafts, faster tokens
            better = diffhw.design_values(diffhw.set_values(d, {"serving.speculation.acceptance": 0.9}))
            assert float(better["serving_tpot_mean_s"]) < float(v["serving_tpot_mean_s"])  # the path a sizing sets
    with pytest.raises(diffhw.InputError, match="speculation"):
        diffhw.serving_goal(2.0, 0.2, speculation=0.7)


def test_cli_speculation_needs_serving(_cli):
    bad = _cli("size", "--serving", "off", "--mtp")
    assert bad.returncode == 2 and "--mtp" in bad.stderr and "Traceback" not in bad.stderr


def test_size_the_prefill_pool_in_replicas(_cli):
    """Long prompts at a rate one Prefill chip cannot take: sizing adds whole Prefill
    replicas (`prefill_replicas`, the pool's dp) until the load meets the limits."""
    v = diffhw.variable("prefill_replicas", 1, 6)
    assert v.integer and v.paths == ("serving.disaggregation.prefill_parallelism.dp",)
    p = _cli("size", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--chips", "1", "--prefill-chips", "1",
             "--input-tokens", "8192", "--output-tokens", "64", "--precision", "bf16", "--serving", "server",
             "--vary", "prefill_replicas=1:6", "--vary", "batch=1:256", "--min-request-rate", "8",
             "--starts", "2", "--steps", "40", "--outer", "4", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    chosen = {x["name"]: x["chosen"] for x in d["variables"]}
    assert d["feasible"] and chosen["prefill_replicas"] >= 2 and chosen["prefill_replicas"] == int(chosen["prefill_replicas"])
    sv = d["serving"]["chosen"]
    assert sv["meets_slo"] and sv["max_request_rate_per_s"] >= 8.0 * (1 - 1e-3)
    assert d["serving"]["baseline"]["max_request_rate_per_s"] < 8.0  # one replica could not


def test_metrics_of_the_chip_and_the_goal_alone_equal_the_full_evaluation():
    """`design_values(..., names=)` skips timing the static batch when every name comes
    from the chip or the serving goal; the values are those of the full evaluation, and
    `sensitivity(breakdown=False)` (built on it) matches finite differences."""
    d = diffhw.from_presets("h100-sxm", "llama-3.1-8b", batch=8, input_tokens=1024, output_tokens=128,
                            serving=diffhw.serving_goal(0.45, 0.04, load="batch"))
    names = ("serving_usd_per_million_tokens", "serving_tpot_p99_s", "chip_area_mm2", "peak_power_w", "batch")
    full = diffhw.design_values(d, checked=False)
    some = diffhw.design_values(d, checked=False, names=names)
    assert set(some) == set(names)
    for n in names:
        assert float(some[n]) == pytest.approx(float(full[n]), rel=1e-6), n
    # a name the chip and goal do not give: everything is computed
    from diffhw._evaluation._design import _without_static_batch

    assert _without_static_batch(d, names) and not _without_static_batch(d, ("tpot_s", *names))
    metric, path = "serving_usd_per_million_tokens", "hardware.memory_bandwidth_bytes_per_s"
    b = diffhw.sensitivity(d, (metric,), (path,), breakdown=False)
    assert b.bound is None and b.bound_shares == {}
    bw = float(diffhw.get_value(d, path))
    at = [float(diffhw.design_values(diffhw.set_values(d, {path: bw * f}), checked=False, names=names)[metric])
          for f in (1.01, 1 / 1.01)]
    assert float(b.elasticity[0, 0]) == pytest.approx(math.log(at[0] / at[1]) / (2 * math.log(1.01)), rel=2e-2, abs=1e-3)
