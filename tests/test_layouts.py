"""Attention data parallel with wide expert parallel, and multi-node systems (a scale-up
domain inside a slower scale-out network): the layout's invariants and the collectives'
hierarchical times, checked by hand on the cheap parts (no compiled evaluate)."""

import jax
import jax.numpy as jnp
import pytest
from conftest import ideal_profile

import diffhw
from diffhw._hardware import _collectives
from diffhw._hardware._collectives import ScaleOut
from diffhw._timing._latency import communication, memory_per_chip


@pytest.fixture(scope="module")
def dsv3():
    return diffhw.presets.model("deepseek-v3")


def _hw(h100, domain=8.0, nic=50e9, latency=0.0, ideal=True):
    hw = h100.replace(profile=ideal_profile()) if ideal else h100
    return hw.replace(scale_out=ScaleOut(domain, nic, latency))


def test_presets_carry_their_scale_out(h100):
    so = diffhw.presets.hardware("gb200").scale_out
    assert float(so.domain_chips) == 72.0 and float(so.bandwidth_bytes_per_s) == pytest.approx(50e9)
    assert float(h100.scale_out.domain_chips) == 8.0


def test_inside_one_domain_nothing_changes(h100, dsv3):
    """A group inside one domain is timed exactly as on a single switch domain."""
    flat = h100.replace(scale_out=None)
    for par in (diffhw.parallelism(tp=1, dp=8, ep=8), diffhw.parallelism(tp=4, pp=2)):
        a = communication(h100, dsv3, par, 4096.0, 1.0)
        b = communication(flat, dsv3, par, 4096.0, 1.0)
        assert float(a[0]) == float(b[0]) and float(a[1]) == float(b[1])


def test_alltoall_across_domains_by_hand(h100):
    """Of M bytes each chip sends among p = 16 chips in domains of 8, half leaves the
    domain over the NIC: at large M the time is that half over the NIC's bandwidth."""
    hw = _hw(h100)
    M = 1e9
    t = float(_collectives.alltoall_time(hw, M, 16.0))
    assert t == pytest.approx(M / 2 / 50e9, rel=0.02)
    # linear in the bytes (sized by tokens x hidden x top-k) and slower than one domain
    assert float(_collectives.alltoall_time(hw, 2 * M, 16.0)) == pytest.approx(2 * t, rel=1e-6)
    assert float(_collectives.alltoall_time(_hw(h100, domain=16.0), M, 16.0)) < t / 4


def test_alltoall_forwards_each_item_once_per_domain(h100):
    """An item sent to k = 8 chips of p = 32 over four 8-chip domains crosses to each other
    domain one of its copies is bound for once (DeepEP's forwarding): 3 (1 - 0.75^8)
    sends per item, against 8 x 3/4 without forwarding; k = 1 is the plain all-to-all."""
    hw = _hw(h100)
    M = 8e9  # eight copies of 1e9 bytes of items
    plain = float(_collectives.alltoall_time(hw, M, 32.0))
    fwd = float(_collectives.alltoall_time(hw, M, 32.0, 8.0))
    assert plain == pytest.approx(M * 0.75 / 50e9, rel=0.02)
    assert fwd == pytest.approx(M / 8 * 3 * (1 - 0.75**8) / 50e9, rel=0.02)
    assert float(_collectives.alltoall_time(hw, M, 32.0, 1.0)) == plain
    # inside one domain forwarding changes nothing
    one = _hw(h100, domain=32.0)
    assert float(_collectives.alltoall_time(one, M, 32.0, 8.0)) == float(_collectives.alltoall_time(one, M, 32.0))


def test_hidden_states_travel_at_16_bits_or_more(h100, dsv3):
    """Collectives carry the residual stream's bf16 hidden states whatever the GEMMs'
    activation format: TP all-reduces and pipeline sends cost the same for FP8 or FP4
    activations as for bf16; an MoE dispatch is quantised, its combine is not."""
    for par in (diffhw.parallelism(tp=8), diffhw.parallelism(tp=4, pp=2)):
        bf16 = communication(h100, dsv3, par, 4096.0, 2.0)
        for abytes in (1.0, 0.5):
            low = communication(h100, dsv3, par, 4096.0, abytes)
            assert float(low[0]) == pytest.approx(float(bf16[0]), rel=1e-6), (par, abytes)
            assert float(low[1]) == pytest.approx(float(bf16[1]), rel=1e-6), (par, abytes)
    # fp32 activations: 4 bytes
    assert float(communication(h100, dsv3, diffhw.parallelism(tp=8), 4096.0, 4.0)[1]) == pytest.approx(
        2 * float(communication(h100, dsv3, diffhw.parallelism(tp=8), 4096.0, 2.0)[1]), rel=1e-6)
    ep = diffhw.parallelism(tp=1, dp=8, ep=8)
    bf16, fp8 = communication(h100, dsv3, ep, 4096.0, 2.0), communication(h100, dsv3, ep, 4096.0, 1.0)
    sent_dense = float(communication(h100, diffhw.presets.model("llama-3.1-8b"), ep, 4096.0, 2.0)[1])
    # dispatch 1 + combine 2 bytes against 2 + 2 per routed element (dense layers: none at tp 1)
    assert sent_dense == 0.0
    assert float(fp8[1]) == pytest.approx(0.75 * float(bf16[1]), rel=1e-6)
    assert 0.5 * float(bf16[0]) < float(fp8[0]) < float(bf16[0])


def test_decode_dispatch_goes_straight_to_each_expert(h100, dsv3):
    """Across domains a Decode-only pass sends each copy straight to its expert's chip
    (DeepEP's low-latency kernels), a pass with Prefill forwards once per domain."""
    par = diffhw.parallelism(tp=1, dp=32, ep=32)
    hw = _hw(h100, ideal=False)
    fwd = float(communication(hw, dsv3, par, 8192.0, 1.0)[0])
    direct = float(communication(hw, dsv3, par, 8192.0, 1.0, forwarded=False)[0])
    assert direct > 1.5 * fwd
    one = _hw(h100, domain=32.0, ideal=False)  # inside one domain both are the same
    assert float(communication(one, dsv3, par, 8192.0, 1.0)[0]) == pytest.approx(
        float(communication(one, dsv3, par, 8192.0, 1.0, forwarded=False)[0]), rel=1e-6)


def test_allreduce_across_domains_by_hand(h100):
    """tp 16 over two 8-chip domains: the domain's all-reduce, then a ring between the two
    domains on M / 8 per chip: 2 (n-1)/n * M/8 over the NIC."""
    hw = _hw(h100)
    M = 1e9
    inside = float(_collectives.allreduce_time(hw, M, 8.0))
    both = float(_collectives.allreduce_time(hw, M, 16.0))
    assert both - inside == pytest.approx(2 * 0.5 * M / 8 / 50e9, rel=1e-6)


def test_two_nodes_pay_the_scale_out_network(h100, dsv3):
    """Wide EP, TP and PP over 16 chips: two 8-chip nodes are slower than one 16-chip
    domain, and the difference grows as the NIC slows."""
    for par in (diffhw.parallelism(tp=1, dp=16, ep=16), diffhw.parallelism(tp=16),
                diffhw.parallelism(tp=8, pp=2)):
        one = float(communication(_hw(h100, domain=16.0, ideal=False), dsv3, par, 8192.0, 1.0)[0])
        two = float(communication(_hw(h100, ideal=False), dsv3, par, 8192.0, 1.0)[0])
        slow = float(communication(_hw(h100, nic=25e9, ideal=False), dsv3, par, 8192.0, 1.0)[0])
        assert one < two < slow, par


def test_gradient_through_the_scale_out_is_finite(h100, dsv3):
    def t(nic, chips):
        hw = h100.replace(scale_out=ScaleOut(8.0, nic, 2e-6))
        return communication(hw, dsv3, diffhw.parallelism(tp=1, dp=chips, ep=chips), 8192.0, 1.0)[0]

    g = jax.grad(t, argnums=(0, 1))(jnp.asarray(50e9), jnp.asarray(16.0))
    assert all(bool(jnp.isfinite(x)) for x in g) and float(g[0]) < 0.0


def test_attention_dp_memory(h100, dsv3):
    """Attention DP over 8 ranks: each holds all attention weights and 1/8 of the experts,
    and the KV cache of its own batch / 8 sequences (MLA's latent, not replicated by TP)."""
    wl = diffhw.workload(64, 2000, 1, "fp8")
    w_dp, kv_dp, _, _ = memory_per_chip(h100, dsv3, wl, diffhw.parallelism(tp=1, dp=8, ep=8))
    w_tp, kv_tp, _, _ = memory_per_chip(h100, dsv3, wl, diffhw.parallelism(tp=8, ep=8))
    w_one, kv_one, _, _ = memory_per_chip(h100, dsv3, wl, diffhw.parallelism())
    assert float(kv_dp) == pytest.approx(float(kv_one) / 8)  # own sequences only
    assert float(kv_tp) == pytest.approx(float(kv_one))  # TP: MLA's latent on every rank
    experts = dsv3.n_moe_layers * dsv3.n_experts * dsv3.expert_params()
    assert float(w_one - w_dp) == pytest.approx(experts * 7 / 8)  # fp8: one byte per weight
    assert float(w_tp) < float(w_dp)  # TP also splits attention and dense layers


def test_wide_ep_validation(dsv3):
    diffhw.validate_parallelism(dsv3, diffhw.parallelism(tp=1, dp=72, ep=72))  # 256 experts, redundant copies
    with pytest.raises(diffhw.InputError, match="ep"):
        diffhw.validate_parallelism(dsv3, diffhw.parallelism(tp=8, ep=3))
    with pytest.raises(diffhw.InputError, match="ep"):
        diffhw.validate_parallelism(dsv3, diffhw.parallelism(tp=1, dp=512, ep=512))


def test_cli_scale_out_flags_refused_in_one_line(_cli):
    r = _cli("evaluate", "--hardware", "l40s", "--scale-up-chips", "4")
    assert r.returncode == 2 and "--nic-gb-s" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _cli("evaluate", "--scale-up-chips", "0")
    assert r.returncode == 2 and "--scale-up-chips" in r.stderr
