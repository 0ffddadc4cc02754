"""Serving under load: limits, Little's law, monotonicity, the maximum rate, speculative
decoding, prefix caching, disaggregation, gradients (float64)."""

import json
import math
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw


@pytest.fixture(scope="module")
def design():
    hw = diffhw.presets.hardware("h100-sxm")
    model = diffhw.presets.model("llama-3.1-8b")
    return hw, model, diffhw.parallelism(tp=1)


def _with_rate(tr, rate):
    return eqx.tree_at(lambda t: t.request_rate_per_s, tr, jnp.asarray(rate, dtype=float))


TR = dict(input_tokens=1024, output_tokens=128)


def _leaves_ok(r):
    for x in jax.tree_util.tree_leaves(r):
        assert not np.any(np.isnan(np.asarray(x))), r


def test_vanishing_rate_is_one_request(design):
    hw, model, par = design
    r = diffhw.serve(hw, model, diffhw.traffic(1e-6, **TR), par)
    one = diffhw.evaluate(hw, model, diffhw.workload(batch=1, **TR), par)
    assert float(r.ttft_mean_s) == pytest.approx(float(one.ttft_s), rel=1e-4)
    assert float(r.ttft_p99_s) == pytest.approx(float(one.ttft_s), rel=1e-4)
    assert float(r.tpot_mean_s) == pytest.approx(float(one.tpot_s), rel=1e-4)
    assert bool(r.stable) and bool(r.meets_slo)


def test_littles_law_and_order_of_percentiles(design):
    hw, model, par = design
    tr = diffhw.traffic(1.0, **TR)
    prev = None
    cap = float(diffhw.serve(hw, model, tr, par).max_sustainable_rate_per_s)
    for frac in (0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97):
        r = diffhw.serve(hw, model, _with_rate(tr, frac * cap), par)
        _leaves_ok(r)
        assert bool(r.stable)
        rate = float(r.request_rate_per_s)
        assert float(r.requests_in_flight) == pytest.approx(rate * float(r.e2e_mean_s), rel=1e-9)
        # decoding sequences = rate x decode time (Little's law on the Decode phase)
        assert float(r.decode_sequences) * float(par.dp) == pytest.approx(
            rate * (TR["output_tokens"] - 1) * float(r.tpot_mean_s), rel=1e-6)
        for kind in ("ttft", "tpot"):
            qs = [float(getattr(r, f"{kind}_{q}_s")) for q in ("p50", "p90", "p99")]
            assert qs[0] <= qs[1] <= qs[2]
        if prev is not None:  # a higher rate never lowers a latency
            for k in ("ttft_mean_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_mean_s", "tpot_p50_s",
                      "tpot_p90_s", "tpot_p99_s", "kv_cache_occupancy", "utilization"):
                assert float(getattr(r, k)) >= float(getattr(prev, k)) * (1 - 1e-9), k
        prev = r
    assert float(r.utilization) == pytest.approx(0.97, rel=1e-6)


def test_overload_is_flagged_not_absurd(design):
    hw, model, par = design
    tr = diffhw.traffic(1.0, **TR)
    cap = float(diffhw.serve(hw, model, tr, par).max_sustainable_rate_per_s)
    r = diffhw.serve(hw, model, _with_rate(tr, 3 * cap), par, technology=diffhw.presets.technology_for("h100-sxm"))
    _leaves_ok(r)
    assert not bool(r.stable) and not bool(r.meets_slo)
    assert math.isinf(float(r.ttft_p99_s))
    assert float(r.requests_per_s) == pytest.approx(cap, rel=1e-6)  # served at capacity
    assert float(r.utilization) == pytest.approx(3.0, rel=1e-6)
    assert float(r.kv_cache_occupancy) <= 1.0 + 1e-6


def test_engine_batch_limit_caps_sequences_in_flight(design):
    """The profile's max_batch_size (vLLM max_num_seqs, TensorRT-LLM max_batch_size) caps
    the sequences decoding per replica, as it caps max_throughput's batch; the traffic's
    max_sequences too, the smaller one binding."""
    hw, model, par = design
    tr = diffhw.traffic(1.0, **TR)
    free = diffhw.serve(hw, model, tr, par)
    small = eqx.tree_at(lambda h: h.profile.max_batch_size, hw, jnp.asarray(8.0, dtype=float))
    r = diffhw.serve(small, model, tr, par)
    assert float(r.max_sustainable_rate_per_s) < float(free.max_sustainable_rate_per_s)
    at = diffhw.serve(small, model, _with_rate(tr, 0.999 * float(r.max_sustainable_rate_per_s)), par)
    assert bool(at.stable) and float(at.decode_sequences) <= 8.0 * (1 + 1e-6)
    both = diffhw.serve(small, model, eqx.tree_at(lambda t: t.max_sequences, tr, jnp.asarray(4.0, dtype=float)), par)
    assert float(both.max_sustainable_rate_per_s) < float(r.max_sustainable_rate_per_s)


def test_max_rate_is_the_boundary_of_the_limits(design):
    hw, model, par = design
    tr = diffhw.traffic(1.0, **TR)
    for ttft, tpot in ((0.5, math.inf), (math.inf, 0.012), (0.3, 0.011)):
        best = float(diffhw.max_request_rate(hw, model, tr, par, ttft_limit_s=ttft, tpot_limit_s=tpot))
        assert best > 0
        # brute force: a grid of rates, each checked against the limits
        rates = np.linspace(0.02, 1.5, 40) * best
        ok = [bool(diffhw.serve(hw, model, _with_rate(tr, x), par, ttft_limit_s=ttft,
                                tpot_limit_s=tpot).meets_slo) for x in rates]
        assert all(ok[i] for i in range(len(rates)) if rates[i] < best * 0.999)
        assert not any(ok[i] for i in range(len(rates)) if rates[i] > best * 1.001)
        at = diffhw.serve(hw, model, tr, par, ttft_limit_s=ttft, tpot_limit_s=tpot, at_max_rate=True)
        assert float(at.request_rate_per_s) == pytest.approx(best, rel=1e-9)
        margins = [float(at.ttft_p99_s) / ttft, float(at.tpot_p99_s) / tpot, float(at.utilization)]
        assert max(margins) == pytest.approx(1.0, rel=1e-5)  # one limit (or the capacity) binds


def test_limit_no_lone_request_meets(design):
    hw, model, par = design
    tr = diffhw.traffic(1.0, **TR)
    assert float(diffhw.max_request_rate(hw, model, tr, par, ttft_limit_s=1e-6)) == 0.0


def test_speculative_decoding(design):
    hw, model, par = design
    tr = diffhw.traffic(1.0, **TR)
    draft = diffhw.presets.model("llama-3.1-8b")  # an expensive draft: costs show plainly
    base = diffhw.serve(hw, model, tr, par)
    for frac in (0.05, 0.5):
        x = _with_rate(tr, frac * float(base.max_sustainable_rate_per_s))
        plain = diffhw.serve(hw, model, x, par)
        for spec in (diffhw.speculative(4, 0.0, draft), diffhw.speculative(3, 0.0)):
            r = diffhw.serve(hw, model, x, par, speculation=spec)
            assert float(r.tokens_per_step) == 1.0
            assert float(r.tpot_mean_s) >= float(plain.tpot_mean_s)  # acceptance 0 never pays
    k = 3.0
    r = diffhw.serve(hw, model, tr, par, speculation=diffhw.speculative(k, 1.0))
    assert float(r.tokens_per_step) == k + 1.0  # k drafts accepted plus the verifier's own token
    assert float(r.tpot_mean_s) == pytest.approx(float(r.step_time_s) / (k + 1.0), rel=1e-12)
    assert float(r.tpot_mean_s) < float(base.tpot_mean_s)
    half = diffhw.speculative(k, 0.5)
    assert float(half.tokens_per_step()) == pytest.approx(sum(0.5**i for i in range(4)))


def test_prefix_caching_skips_prefill(design):
    hw, model, par = design
    tr = diffhw.traffic(1.0, **TR)
    hit = diffhw.traffic(1.0, prefix_hit=0.75, **TR)
    a, b = diffhw.serve(hw, model, tr, par), diffhw.serve(hw, model, hit, par)
    assert float(b.ttft_mean_s) < 0.5 * float(a.ttft_mean_s)
    assert float(b.max_sustainable_rate_per_s) > float(a.max_sustainable_rate_per_s)
    assert float(b.kv_capacity_sequences) > float(a.kv_capacity_sequences)  # the prefix is stored once


def test_disaggregation(design):
    hw, model, par = design
    tr = diffhw.traffic(1e-6, **TR)
    fast = diffhw.Disaggregation(hw, par, 1e30, 0.0)  # identical pools, an infinitely fast network
    agg, dis = diffhw.serve(hw, model, tr, par), diffhw.serve(hw, model, tr, par, disaggregation=fast)
    assert float(dis.tpot_mean_s) == pytest.approx(float(agg.tpot_mean_s), rel=1e-6)
    assert float(dis.ttft_mean_s) == pytest.approx(float(agg.ttft_mean_s), rel=1e-4)
    assert float(dis.transfer_s) < 1e-12
    assert float(dis.chips) == 2 * float(agg.chips)
    # under load Decode steps carry no Prefill chunks: never slower per token
    busy = _with_rate(tr, 0.5 * float(agg.max_sustainable_rate_per_s))
    a, d = diffhw.serve(hw, model, busy, par), diffhw.serve(hw, model, busy, par, disaggregation=fast)
    assert float(d.tpot_mean_s) < float(a.tpot_mean_s)
    assert float(d.prefill_tokens_per_step) == 0.0
    # a real network adds the KV transfer to TTFT
    slow = diffhw.disaggregated(hw, par, 1e9, 1e-3)
    s = diffhw.serve(hw, model, busy, par, disaggregation=slow, technology=diffhw.presets.technology_for("h100-sxm"))
    kv = 2 * 32 * 8 * 128 * 2 * (TR["input_tokens"])  # K and V, 32 layers, 8 KV heads, bf16
    assert float(s.transfer_s) == pytest.approx(kv / 1e9 + 1e-3, rel=1e-6)
    assert float(s.ttft_mean_s) == pytest.approx(float(d.ttft_mean_s) + float(s.transfer_s), rel=1e-6)
    assert float(s.balanced_prefill_chips) > 0
    assert float(s.economics.usd_per_million_tokens) > 0 and s.prefill_economics is not None


def test_economics_at_the_operating_point(design):
    hw, model, par = design
    tech = diffhw.presets.technology_for("h100-sxm")
    tr = diffhw.traffic(1.0, **TR)
    cap = float(diffhw.serve(hw, model, tr, par).max_sustainable_rate_per_s)
    costs = []
    for frac in (0.05, 0.3, 0.9):
        r = diffhw.serve(hw, model, _with_rate(tr, frac * cap), par, technology=tech)
        e = r.economics
        _leaves_ok(r)
        assert float(e.static_power_w) < float(e.average_power_w) < float(e.peak_power_w)
        assert float(e.energy_per_token_j) == pytest.approx(
            float(e.average_power_w) * float(r.chips) / float(r.output_tokens_per_s), rel=1e-6)
        costs.append(float(e.usd_per_million_tokens))
    assert costs[0] > costs[1] > costs[2]  # a busier system spreads its cost over more tokens


def test_gradients_match_finite_differences(design):
    hw, model, par = design
    tr = diffhw.traffic(1.0, **TR)
    cap = float(diffhw.serve(hw, model, tr, par).max_sustainable_rate_per_s)

    def f(bw, rate):
        r = diffhw.serve(hw.replace(memory_bandwidth_bytes_per_s=bw), model, _with_rate(tr, rate), par,
                         ttft_limit_s=0.3, tpot_limit_s=0.011)
        return jnp.stack([r.ttft_p99_s, r.tpot_p99_s, r.max_request_rate_per_s])

    x = (jnp.asarray(3.35e12), jnp.asarray(0.5 * cap))
    jac = jax.jit(jax.jacfwd(f, argnums=(0, 1)))(*x)
    for i, (v, h) in enumerate(zip(x, (1e-5, 1e-5))):
        step = float(v) * h
        lo = f(*[v - step if j == i else x[j] for j in range(2)])
        hi = f(*[v + step if j == i else x[j] for j in range(2)])
        fd = (hi - lo) / (2 * step)
        assert np.all(np.isfinite(np.asarray(jac[i])))
        np.testing.assert_allclose(np.asarray(jac[i]), np.asarray(fd), rtol=1e-4, atol=1e-30)
    assert float(jac[0][2]) > 0  # more bandwidth serves more requests within the limits
    assert float(jac[1][0]) > 0  # a higher rate waits longer


def test_traffic_checks():
    with pytest.raises(diffhw.InputError, match="prefix_hit"):
        diffhw.traffic(1.0, prefix_hit=1.0)
    with pytest.raises(diffhw.InputError, match="output_tokens"):
        diffhw.traffic(1.0, output_tokens=1)
    with pytest.raises(diffhw.InputError, match="request_rate_per_s"):
        diffhw.traffic(float("nan"))
    with pytest.raises(diffhw.InputError, match="acceptance"):
        diffhw.speculative(4, 1.5)




def test_cli_serve_json_contract(_cli):
    p = _cli("serve", "--model", "llama-3.1-8b", "--chips", "1", "--input-tokens", "1024", "--output-tokens", "128",
             "--scenario", "interactive", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    for k in ("request_rate_per_s", "ttft_mean_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_mean_s",
              "tpot_p50_s", "tpot_p90_s", "tpot_p99_s", "output_tokens_per_s", "requests_in_flight",
              "kv_cache_occupancy", "utilization", "meets_slo", "max_request_rate_per_s", "usd_per_million_tokens",
              "energy_per_token_j", "tco_usd_per_year"):
        assert k in d, k
    assert d["meets_slo"] and d["request_rate_per_s"] == pytest.approx(d["max_request_rate_per_s"])
    assert max(d["ttft_p99_s"] / 0.45, d["tpot_p99_s"] / 0.04, d["utilization"]) == pytest.approx(1.0, rel=1e-3)
    p = _cli("serve", "--model", "llama-3.1-8b", "--chips", "1", "--request-rate", "1", "--prefill-chips", "1",
             "--transfer-gbps", "25", "--draft-model", "llama-3.1-8b", "--acceptance", "0.8", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["disaggregated"]["chips"] == 1 and d["chips"] == 2 and d["speculative"]["draft_tokens"] == 4
    assert "max_request_rate_per_s" not in d


def test_cli_max_throughput_scenarios(_cli):
    """--scenario server|interactive is serve's largest rate under MLPerf's p99 limits;
    explicit limits replace the scenario's; offline stays the static-batch search."""
    base = ("--model", "llama-3.1-8b", "--chips", "1", "--input-tokens", "1024", "--output-tokens", "128", "--json")
    d = json.loads(_cli("max-throughput", "--scenario", "interactive", *base).stdout)
    ref = json.loads(_cli("serve", "--scenario", "interactive", *base).stdout)
    assert d["scenario"] == "interactive" and d["feasible"] == ref["meets_slo"]
    assert d["request_rate_per_s"] == pytest.approx(ref["max_request_rate_per_s"])
    assert d["output_tokens_per_s"] == pytest.approx(ref["output_tokens_per_s"])
    assert (d["ttft_slo_s"], d["tpot_slo_s"]) == (0.45, 0.04) and d["tpot_s"] == d["tpot_mean_s"]
    loose = json.loads(_cli("max-throughput", "--scenario", "interactive", "--tpot-slo-ms", "200", *base).stdout)
    assert loose["tpot_slo_s"] == 0.2 and loose["request_rate_per_s"] >= d["request_rate_per_s"]
    off = json.loads(_cli("max-throughput", *base).stdout)
    assert off["scenario"] == "offline" and "batch_continuous" in off


@pytest.mark.parametrize("args,field", [
    (["--prefix-hit", "1.5", "--request-rate", "1"], "--prefix-hit"),
    (["--request-rate", "-1"], "--request-rate"),
    ([], "--request-rate"),
    (["--request-rate", "1", "--acceptance", "0.5"], "--acceptance"),
    (["--request-rate", "1", "--output-tokens", "1"], "--output-tokens"),
    (["--request-rate", "1", "--model", "llama-3.1-405b", "--chips", "1"], "--chips"),
])
def test_cli_serve_refuses_bad_input(_cli, args, field):
    p = _cli("serve", *args)
    assert p.returncode == 2, p.stderr
    assert field in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_unmeetable_limits_serve_a_vanishing_rate(design):
    """No rate meets the limits: the max-rate point serves ~nothing (not the capacity),
    its latencies are a lone request's and its economics finite, for sizing's sake."""
    hw, model, par = design
    tech = diffhw.presets.technology_for("h100-sxm")
    r = diffhw.serve(hw, model, diffhw.traffic(1.0, **TR), par, at_max_rate=True, ttft_limit_s=2.0,
                     tpot_limit_s=1e-4, technology=tech)
    assert float(r.max_request_rate_per_s) == 0.0 and not bool(r.meets_slo)
    assert float(r.requests_per_s) < 1e-6 and float(r.output_tokens_per_s) < 1e-3
    assert math.isfinite(float(r.ttft_p99_s)) and float(r.tpot_p99_s) > 1e-4
    assert math.isfinite(float(r.economics.usd_per_million_tokens))


def test_draft_model_takes_memory(design):
    hw, model, par = design
    tr = diffhw.traffic(1.0, **TR)
    plain = diffhw.serve(hw, model, tr, par)
    spec = diffhw.serve(hw, model, tr, par, speculation=diffhw.speculative(4, 0.7, diffhw.presets.model("llama-3.1-8b")))
    assert float(spec.kv_capacity_sequences) < float(plain.kv_capacity_sequences)


def test_serve_at_load_is_serve_explicit_in_n(design):
    """At the sequences `serve` finds for a rate, `serve_at_load` gives back that rate and
    the same percentiles; past saturation it stays finite and reports utilization > 1."""
    hw, model, par = design
    tech = diffhw.presets.technology_for("h100-sxm")
    tr = diffhw.traffic(4.0, **TR)
    s = diffhw.serve(hw, model, tr, par, technology=tech)
    a = diffhw.serve_at_load(hw, model, tr, par, s.decode_sequences, technology=tech)
    assert float(a.request_rate_per_s) == pytest.approx(4.0, rel=1e-4)
    for k in ("ttft_p99_s", "tpot_p99_s", "ttft_mean_s", "tpot_mean_s", "requests_in_flight"):
        assert float(getattr(a, k)) == pytest.approx(float(getattr(s, k)), rel=1e-3), k
    assert float(a.economics.usd_per_million_tokens) == pytest.approx(float(s.economics.usd_per_million_tokens),
                                                                      rel=1e-3)
    # resource-based (the larger of rho and n over the cap), not serve's rate over the sustainable rate
    assert float(s.prefill_utilization) * (1 - 1e-3) <= float(a.utilization) < 1.0
    over = diffhw.serve_at_load(hw, model, tr, par, 50.0 * float(s.kv_capacity_sequences), technology=tech)
    _leaves_ok(over)
    assert float(over.utilization) > 1.0
