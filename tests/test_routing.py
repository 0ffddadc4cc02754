"""MoE routing imbalance: the most loaded expert-parallel rank, checked against a Monte
Carlo of top-k routing, and its effect on step times, serving and the CLI."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw._workload._operators import expected_experts_touched, rank_load_factor


def _monte_carlo(E, k, T, ranks, skew, trials=400, seed=0):
    """Mean over trials of (max rank load / mean rank load) and of distinct experts
    touched, with expert popularity lognormal (coefficient of variation `skew`) drawn
    per trial and experts placed contiguously on ranks."""
    rng = np.random.default_rng(seed)
    s = math.sqrt(math.log1p(skew**2))
    ratios, touched = [], []
    for _ in range(trials):
        w = rng.lognormal(0.0, s, E) if skew > 0 else np.ones(E)
        w = w / w.sum()
        # k distinct experts per token, drawn in proportion to popularity (Gumbel top-k)
        keys = np.log(w)[None, :] + rng.gumbel(size=(T, E))
        chosen = np.argpartition(-keys, k - 1, axis=1)[:, :k]
        per_expert = np.bincount(chosen.ravel(), minlength=E)
        per_rank = per_expert.reshape(ranks, E // ranks).sum(axis=1)
        ratios.append(per_rank.max() / (T * k / ranks))
        touched.append(np.count_nonzero(per_expert))
    return float(np.mean(ratios)), float(np.mean(touched))


@pytest.mark.parametrize("E,k,T,ranks,skew", [
    (8, 2, 64, 8, 0.0), (8, 2, 1024, 8, 0.0), (64, 8, 32, 8, 0.0), (256, 8, 128, 32, 0.0),
    (8, 2, 4096, 8, 0.5), (64, 8, 256, 8, 1.0), (256, 8, 1024, 32, 0.5),
])
def test_rank_load_matches_monte_carlo(E, k, T, ranks, skew):
    mc, _ = _monte_carlo(E, k, T, ranks, skew)
    model = float(rank_load_factor(float(E), float(k), float(T), float(ranks), skew))
    assert model == pytest.approx(mc, rel=0.12)


@pytest.mark.parametrize("E,k,T,skew", [(8, 2, 4, 0.0), (256, 8, 16, 0.0), (128, 8, 64, 1.0), (256, 8, 32, 0.5)])
def test_touched_experts_match_monte_carlo(E, k, T, skew):
    _, mc = _monte_carlo(E, k, T, 1, skew)
    model = float(expected_experts_touched(float(E), float(k), float(T), jnp.asarray(skew)))
    # the model places popularity at its quantiles (one typical draw), the Monte Carlo
    # averages draws: a few percent apart at strong skew
    assert model == pytest.approx(mc, rel=0.06)


def test_rank_load_limits():
    # one rank: no imbalance; uniform routing: fades with tokens; skew: a floor above 1
    assert float(rank_load_factor(8.0, 2.0, 10.0, 1.0, 0.7)) == pytest.approx(1.0)
    f = [float(rank_load_factor(8.0, 2.0, t, 8.0, 0.0)) for t in (1.0, 16.0, 256.0, 65536.0)]
    assert f[0] > f[1] > f[2] > f[3] > 1.0 and f[3] < 1.02
    g = [float(rank_load_factor(8.0, 2.0, 65536.0, 8.0, s)) for s in (0.0, 0.3, 0.6)]
    assert g[0] < g[1] < g[2]
    # uniform routing with skew 0 traced equals the closed form
    assert float(expected_experts_touched(256.0, 8.0, 50.0, jnp.zeros(()))) == pytest.approx(
        float(expected_experts_touched(256.0, 8.0, 50.0)), rel=1e-5)


@pytest.fixture(scope="module")
def moe():
    return diffhw.presets.hardware("h100-sxm"), diffhw.presets.model("mixtral-8x7b")


def test_imbalance_in_step_times(moe):
    hw, model = moe
    tp_only, ep8 = diffhw.parallelism(tp=8), diffhw.parallelism(tp=8, ep=8)

    def run(par, batch, skew):
        return diffhw.evaluate(hw, model, diffhw.workload(batch, 2048, 256, routing_skew=skew), par)

    # tensor parallel only: every chip holds a slice of every expert, no rank imbalance
    assert float(run(tp_only, 64, 0.8).ttft_s) == pytest.approx(float(run(tp_only, 64, 0.0).ttft_s), rel=1e-3)
    # expert parallel at batch 1: the busiest rank reads a whole expert, slower than TP
    assert float(run(ep8, 1, 0.0).tpot_s) > float(run(tp_only, 1, 0.0).tpot_s)
    # skew slows the compute-heavy Prefill of the expert-parallel design
    t = [float(run(ep8, 16, s).ttft_s) for s in (0.0, 0.4, 0.8)]
    assert t[0] < t[1] < t[2]
    # a dense model does not see the skew
    dense = diffhw.presets.model("llama-3.1-8b")
    a = diffhw.evaluate(hw, dense, diffhw.workload(8, 1024, 128, routing_skew=0.9), diffhw.parallelism(tp=8))
    b = diffhw.evaluate(hw, dense, diffhw.workload(8, 1024, 128), diffhw.parallelism(tp=8))
    assert float(a.tpot_s) == float(b.tpot_s) and float(a.ttft_s) == float(b.ttft_s)


def test_skew_gradient_finite_and_positive(moe):
    hw, model = moe
    par = diffhw.parallelism(tp=8, ep=8)

    def ttft(skew):
        wl = diffhw.workload(16, 2048, 256)
        wl = wl.__class__(wl.batch, wl.input_tokens, wl.output_tokens, wl.weight_precision,
                          wl.activation_precision, wl.kv_precision, wl.shared_context_tokens, skew)
        return diffhw.evaluate(hw, model, wl, par).ttft_s

    g = jax.jit(jax.grad(ttft))(jnp.asarray(0.5))
    assert np.isfinite(float(g)) and float(g) > 0.0
    h = 1e-2
    fd = (float(ttft(jnp.asarray(0.5 + h))) - float(ttft(jnp.asarray(0.5 - h)))) / (2 * h)
    assert float(g) == pytest.approx(fd, rel=0.05)


def test_serving_sees_the_skew(moe):
    hw, model = moe
    par = diffhw.parallelism(tp=8, ep=8)
    rates = [float(diffhw.max_request_rate(hw, model, diffhw.traffic(1.0, 2048, 256, routing_skew=s), par,
                                           ttft_limit_s=2.0, tpot_limit_s=0.2)) for s in (0.0, 0.8)]
    assert 0.0 < rates[1] < rates[0]


def test_bad_skew_is_refused(capsys):
    with pytest.raises(diffhw.InputError, match="routing_skew"):
        diffhw.workload(1, 128, 16, routing_skew=-0.1)
    with pytest.raises(diffhw.InputError, match="routing_skew"):
        diffhw.traffic(1.0, 128, 16, routing_skew=float("nan"))
    from diffhw._cli._main import main
    assert main(["evaluate", "--model", "mixtral-8x7b", "--routing-skew", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--routing-skew" in err and "Traceback" not in err
