"""Hand-computed rooflines: numbers you can check on paper."""

import itertools

import jax.numpy as jnp
import pytest
from conftest import ideal_profile, tiny_model

import diffhw


def _no_network(hw):
    return hw.replace(
        link_bandwidth_bytes_per_s=1e30, link_latency_s=0.0, message_latency_s=0.0, profile=ideal_profile()
    )


def test_tiny_model_decode_roofline(h100):
    hw = _no_network(h100)
    m = tiny_model()
    wl = diffhw.workload(1, 100, 1, "bf16")  # one decode step at context 100
    r = diffhw.evaluate(hw, m, wl, diffhw.parallelism(), tau=1e-4)
    d, f, v, L = 1024, 4096, 1000, 2
    attn = 4 * d * d  # q, k, v, o
    ffn = 2 * d * f
    weight_bytes = 2 * (L * (attn + ffn) + v * d)
    kv_read = 100 * L * 2 * d * 2
    kv_write = L * 2 * d * 2
    # activation traffic (inputs and outputs of each group), batch 1
    act = 2 * (L * ((2 * d + 2 * d) + 2 * d + (2 * d + 3 * f)) + (d + d + v))
    expected = (weight_bytes + kv_read + kv_write + act) / 3.35e12
    assert float(r.tpot_s) == pytest.approx(expected, rel=1e-3)
    assert diffhw.bound_name(r) == "memory"


def test_tiny_model_prefill_is_compute_bound(h100):
    hw = _no_network(h100)
    m = tiny_model()
    n = 4096
    wl = diffhw.workload(1, n, 1, "bf16")
    r = diffhw.evaluate(hw, m, wl, diffhw.parallelism(), tau=1e-4)
    d, f, v, L, H, hd = 1024, 4096, 1000, 2, 8, 128
    flops = 2 * L * (4 * d * d + 2 * d * f) * n + L * 4 * H * hd * ((n + 1) / 2) * n + 2 * d * v
    assert float(r.ttft_s) == pytest.approx(flops / 989.4e12, rel=0.02)
    assert float(r.prefill.compute_s) > 10 * float(r.prefill.memory_s)


def test_llama70b_batch1_decode_is_weight_streaming(h100, llama70b):
    hw = _no_network(h100)
    wl = diffhw.workload(1, 1024, 2, "bf16")
    r = diffhw.evaluate(hw, llama70b, wl, diffhw.parallelism(tp=8), tau=1e-4)
    P = float(llama70b.total_params())
    embed = float(llama70b.vocab_size * llama70b.d_model)
    weights_per_chip = 2 * (P - embed) / 8  # the input embedding is a lookup, not a read
    kv_per_chip = (1024 + 1) * 2 * 1 * 128 * 80 * 2  # 8 KV heads over 8 chips: 1 each
    expected = (weights_per_chip + kv_per_chip) / 3.35e12
    assert float(r.tpot_s) == pytest.approx(expected, rel=2e-3)
    assert 5.0e-3 < expected < 5.3e-3  # 17.3 GB per chip at 3.35 TB/s


def test_llama70b_long_prefill_is_compute_bound(h100, llama70b):
    hw = _no_network(h100)
    n = 8192
    wl = diffhw.workload(1, n, 1, "bf16")
    r = diffhw.evaluate(hw, llama70b, wl, diffhw.parallelism(tp=8), tau=1e-4)
    P = float(llama70b.total_params())
    embed = float(llama70b.vocab_size * llama70b.d_model)
    d, V = 8192, 128256
    body = P - 2 * embed  # everything but the two vocabulary tables
    flops = 2 * body * n + 80 * 4 * 64 * 128 * ((n + 1) / 2) * n + 2 * d * V
    assert float(r.ttft_s) == pytest.approx(flops / (8 * 989.4e12), rel=0.01)
    assert diffhw.bound_name(r) == "memory"  # ...while its decode is memory-bound


def test_batching_amortises_weights_not_kv(h100, llama70b):
    """Paper claim 1: batching raises the arithmetic intensity of weight reads only."""
    hw = _no_network(h100)
    par = diffhw.parallelism(tp=8)
    t = {b: float(diffhw.evaluate(hw, llama70b, diffhw.workload(b, 8192, 2), par).tpot_s) for b in (1, 8)}
    kv = 8 * 8192 * 2 * 128 * 80 * 2 / 3.35e12  # KV of 8 sequences per chip
    # 8x the batch costs little more than the extra KV reads.
    assert t[8] - t[1] == pytest.approx(kv * 7 / 8, rel=0.05)


def test_tp_beyond_kv_heads_replicates_kv(h100):
    m = diffhw.presets.model("llama-3.1-8b")  # 8 KV heads
    wl = diffhw.workload(1, 4096, 1)
    kv = {}
    for tp in (8, 16, 32):
        r = diffhw.evaluate(_no_network(h100), m, wl, diffhw.parallelism(tp=tp))
        kv[tp] = float(r.kv_cache_bytes)
    assert kv[8] == pytest.approx(kv[16]) == pytest.approx(kv[32])


def test_more_bandwidth_never_slower(h100, llama70b):
    wl = diffhw.workload(32, 2048, 128)
    par = diffhw.parallelism(tp=8)
    bws = jnp.array([1e12, 2e12, 4e12, 8e12, 16e12])
    ts = [float(diffhw.evaluate(h100.replace(memory_bandwidth_bytes_per_s=b), llama70b, wl, par).tpot_s) for b in bws]
    assert all(b <= a for a, b in itertools.pairwise(ts))
