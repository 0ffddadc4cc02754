"""MoE blocks on a real stack (issue 16): the routed experts' grouped GEMMs at a share of
the dense rates (`Profile.moe_efficiency`) and the all-to-all hidden by two-batch overlap
(`Profile.moe_exposed_fraction`), checked by hand on the eager parts (no compiled evaluate)."""

import jax.numpy as jnp
import pytest
from conftest import ideal_profile

import diffhw
from diffhw._timing._latency import communication, ops_chain
from diffhw._workload._operators import shards_for, step_ops

T = 4096.0  # tokens in the pass (a Prefill chunk: every expert is touched)


@pytest.fixture(scope="module")
def mixtral():
    return diffhw.presets.model("mixtral-8x7b")


def _ops(model, tp=1.0, ep=1.0):
    return step_ops(model, shards_for(model, tp, ep), T, T / 512.0, 256.0, 1.0, 1.0, 1.0, decode=False)


def test_routed_expert_work_is_split_out(mixtral):
    """The MoE op names its routed-expert part: 2 T k P_e FLOPs (one rank, balanced) and
    every touched expert's weights; the router's FLOPs and weights stay outside it."""
    moe = next(op for name, _, op in _ops(mixtral) if name == "moe")
    k, pe = mixtral.experts_per_token, float(mixtral.expert_params())
    assert float(moe.expert_flops) == pytest.approx(2 * T * k * pe, rel=1e-12)
    assert float(moe.flops - moe.expert_flops) == pytest.approx(2 * T * float(mixtral.router_params()), rel=1e-9)
    touched = mixtral.n_experts * (1 - (1 - k / mixtral.n_experts) ** T)
    assert float(moe.expert_weight_bytes) == pytest.approx(touched * pe, rel=1e-9)
    dense = [op for name, _, op in _ops(mixtral) if not name.startswith("moe")]
    assert all(op.expert_flops is None and op.expert_weight_bytes is None for op in dense)


WL = diffhw.workload(8, 512, 1, "fp8")


def _chain(hw, model, par, ops):
    return ops_chain(hw, model, WL, par, ops, T, T / 512.0, False, tau=0.0)


def test_moe_efficiency_slows_only_the_routed_experts(h100, mixtral):
    """At a share e the routed experts' FLOPs take 1/e the time (a compute-bound Prefill
    chunk on one H100, ideal profile, exact maxima): the step grows by exactly
    (1/e - 1) expert FLOPs over the rate; the work done (FLOPs, bytes) is unchanged."""
    par = diffhw.parallelism()
    ops = _ops(mixtral)
    fast = h100.replace(profile=ideal_profile())
    slow = h100.replace(profile=ideal_profile(moe_efficiency=0.25))
    (t1, w1), (t2, w2) = _chain(fast, mixtral, par, ops), _chain(slow, mixtral, par, ops)
    moe = next((op, n) for name, n, op in ops if name == "moe")
    rate = float(fast.matmul_flop_per_s(WL.activation_precision))
    extra = 3.0 * float(moe[0].expert_flops) * moe[1] / rate
    assert float(t2.compute_s - t1.compute_s) == pytest.approx(extra, rel=1e-6)
    assert float(t2.memory_s) == pytest.approx(float(t1.memory_s), rel=1e-9)
    assert float(w2.flops) == float(w1.flops) and float(w2.memory_bytes) == float(w1.memory_bytes)


def test_moe_efficiency_default_is_sourced_and_one_leaves_times_alone(h100, mixtral):
    d = diffhw.presets.profile("default")
    assert 0.0 < float(d.moe_efficiency) < 1.0 and float(d.moe_exposed_fraction) == 1.0
    # a share of exactly 1 (the Profile default) times the MoE block as before
    par = diffhw.parallelism()
    ops = _ops(mixtral)
    a, _ = _chain(h100.replace(profile=ideal_profile()), mixtral, par, ops)
    b, _ = _chain(h100.replace(profile=ideal_profile(moe_efficiency=1.0)), mixtral, par, ops)
    assert float(a.total_s) == float(b.total_s)


def test_two_batch_overlap_hides_the_alltoall_under_compute(h100):
    """Attention DP + wide EP over 8 chips: `communication` reports the dispatch/combine
    all-to-all; overlap 1 removes min(all-to-all, roofline) from the exposed time, 0.5
    half of it, and a model without experts has none to hide."""
    ds = diffhw.presets.model("deepseek-v3")
    par = diffhw.parallelism(tp=1, dp=8, ep=8)
    base = h100.replace(profile=ideal_profile())
    ab = WL.activation_precision.bytes
    t, _, a2a = communication(base, ds, par, T, ab, alltoall=True)
    assert 0.0 < float(a2a) <= float(t)
    assert float(communication(base, ds, par, T, ab)[0]) == float(t)
    ops = _ops(ds, ep=8.0)
    times = [_chain(base.replace(profile=ideal_profile(moe_exposed_fraction=1.0 - f)), ds, par, ops)[0]
             for f in (0.0, 0.5, 1.0)]
    roof = float(times[0].compute_s + times[0].memory_s)
    hidden = min(float(a2a), roof)
    assert float(times[0].communication_s - times[2].communication_s) == pytest.approx(hidden, rel=1e-6)
    assert float(times[0].communication_s - times[1].communication_s) == pytest.approx(hidden / 2, rel=1e-6)
    dense = diffhw.presets.model("llama-3.1-8b")
    assert float(communication(h100, dense, diffhw.parallelism(tp=8), T, 1.0, alltoall=True)[2]) == 0.0


# the loader's refusals of bad MoE terms: tests/test_profile_limits.py (test_loader_refuses_bad_values)


def test_loader_reads_moe_terms():
    p = diffhw.presets.profile("default", {"moe_efficiency": 0.8, "moe_exposed_fraction": 0.0})
    assert float(p.moe_efficiency) == pytest.approx(0.8) and float(p.moe_exposed_fraction) == 0.0
    assert jnp.asarray(p.moe_exposed_fraction).dtype == jnp.asarray(p.compute_efficiency).dtype
