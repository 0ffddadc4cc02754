"""The fabric inside the model: topologies, algorithms, in-network reduction, packet
landing and stragglers (paper direction 4, claim 9)."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw import presets
from diffhw._cli import main


def _comm(hw, model="llama-3.1-70b", tp=8, batch=8):
    m = diffhw.evaluate(hw, presets.model(model), diffhw.workload(batch, 2048, 256), diffhw.parallelism(tp=tp))
    return float(m.decode.communication_s), float(m.tpot_s)


def test_low_latency_network_cuts_decode_communication():
    base = _comm(presets.hardware("h100-sxm"))
    low = _comm(presets.hardware("h100-lowlat"))
    assert low[0] < 0.5 * base[0] and low[1] < base[1]


def test_in_network_reduction_only_on_switches():
    hw = presets.hardware("h100-sxm")
    on = hw.replace(network=dataclasses.replace(hw.network, in_network_reduction=True))
    assert _comm(on)[0] < _comm(hw)[0]
    ring = dataclasses.replace(hw, topology="ring")
    ring_on = dataclasses.replace(on, topology="ring")
    assert _comm(ring_on)[0] == pytest.approx(_comm(ring)[0])


@pytest.mark.parametrize("topology", ["ring", "torus2d", "torus3d", "torus_hd", "mesh", "switch", "fat_tree",
                                      "dragonfly"])
def test_every_topology_evaluates_with_finite_gradients(topology):
    hw = dataclasses.replace(presets.hardware("tpu-v5p"), topology=topology)
    m = presets.model("mixtral-8x7b")
    wl = diffhw.workload(16, 1024, 128)
    par = diffhw.parallelism(tp=4, ep=4, pp=2)
    g = eqx.filter_jit(jax.grad(lambda h: diffhw.evaluate(h, m, wl, par).tpot_s))(hw)  # one program: compiles faster
    leaves = jax.tree_util.tree_leaves(eqx.filter(g, eqx.is_inexact_array))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in leaves)


def test_fewer_hops_never_slower_for_decode_messages():
    """Claim 9: decode messages are latency-bound, so high-radix / low-diameter fabrics win."""
    hw = presets.hardware("tpu-v5p")
    m = "llama-3.1-70b"
    t = {topo: _comm(dataclasses.replace(hw, topology=topo), m, tp=64, batch=64)[0]
         for topo in ("ring", "torus2d", "torus3d", "torus_hd", "switch")}
    assert t["torus3d"] < t["torus2d"] < t["ring"]
    assert t["torus_hd"] <= 1.01 * t["torus3d"]  # at 64 chips a 6-D torus is a 3-D one


def test_stragglers_and_timeout(tmp_path):
    f = tmp_path / "chip.toml"
    f.write_text('based_on = "h100-sxm"\nname = "x"\n[network]\nstraggler_scale_us = 5.0\n')
    slow = presets.hardware(str(f))
    assert slow.network.stragglers
    base = presets.hardware("h100-sxm")
    assert _comm(slow)[0] > _comm(base)[0]
    f.write_text('based_on = "h100-sxm"\nname = "x"\n[network]\nstraggler_scale_us = 5.0\nstraggler_timeout_us = 2.0\n')
    capped = presets.hardware(str(f))
    assert _comm(base)[0] < _comm(capped)[0] < _comm(slow)[0]
    # the wait for the slowest grows with the number of participants
    w2 = _comm(slow, tp=2)[0] - _comm(base, tp=2)[0]
    w8 = _comm(slow, tp=8)[0] - _comm(base, tp=8)[0]
    assert w8 > w2


def test_packet_landing_in_sram(tmp_path):
    f = tmp_path / "chip.toml"
    for frac, name in ((0.0, "dram"), (1.0, "sram")):
        f.write_text(f'based_on = "h100-sxm"\nname = "{name}"\n[network]\npacket_sram_fraction = {frac}\n'
                     "sram_landing_latency_us = 0.05\ndram_landing_latency_us = 0.5\n")
        if frac == 0.0:
            dram = _comm(presets.hardware(str(f)))[0]
        else:
            sram = _comm(presets.hardware(str(f)))[0]
    assert sram < dram


@pytest.mark.parametrize("text, expect", [
    ('algorithm = "rng"', "algorithm = 'rng'"),
    ('in_network_reduction = "yes"', "true or false"),
    ('topology = "hypercube"', "topology = 'hypercube'"),
    ("switch_radix = -4", "switch_radix = -4"),
])
def test_bad_network_options(tmp_path, capsys, text, expect):
    f = tmp_path / "chip.toml"
    f.write_text(f'based_on = "h100-sxm"\nname = "x"\n[network]\n{text}\n')
    assert main(["evaluate", "--hardware", str(f)]) == 2
    assert expect in capsys.readouterr().err


def test_default_fabric_matches_recursive_doubling_for_small_messages():
    """The default ('auto') picks close to the best of ring, tree and halving-doubling:
    for a decode-sized message through a switch that is halving-doubling."""
    from diffhw._hardware import _collective_algorithms, _collectives

    hw = presets.hardware("h100-sxm")
    msg = 64 * 8192 * 2.0
    auto = float(_collectives.allreduce_time(hw, msg, 8.0)) - float(hw.profile.collective_latency_s)
    bw = float(hw.link_bandwidth_bytes_per_s * hw.profile.network_efficiency)
    rd = float(_collective_algorithms.allreduce_time(msg, 8.0, bw, float(hw.link_latency_s), float(hw.message_latency_s),
                                        "switch", "recursive_doubling"))
    assert auto <= rd * (1 + 1e-9) and auto > 0.95 * rd
    assert np.isfinite(auto)


def test_per_step_collective_cost_scales_with_peer_steps():
    """`collective_step_latency_s` adds 2 (p-1) steps per all-reduce, p-1 per
    all-to-all and one per send, on top of everything else."""
    from diffhw._hardware import _collectives

    s = 3e-6
    base = presets.hardware("h100-sxm")
    stepped = presets.hardware("h100-sxm", profile=presets.profile("default",
                                                                    overrides={"collective_step_latency_s": s}))
    msg = 1e6
    for p in (1.0, 2.0, 4.0, 8.0):
        d_ar = float(_collectives.allreduce_time(stepped, msg, p) - _collectives.allreduce_time(base, msg, p))
        d_a2a = float(_collectives.alltoall_time(stepped, msg, p) - _collectives.alltoall_time(base, msg, p))
        assert d_ar == pytest.approx(2 * (p - 1) * s, abs=1e-12)
        assert d_a2a == pytest.approx((p - 1) * s, abs=1e-12)
    assert float(_collectives.p2p_time(stepped, msg) - _collectives.p2p_time(base, msg)) == pytest.approx(s)
    # and TPOT grows with TP through it
    model, wl = presets.model("llama-3.1-70b"), diffhw.workload(batch=1, input_tokens=128, output_tokens=64)
    gap = [float(diffhw.evaluate(stepped, model, wl, diffhw.parallelism(tp=t)).tpot_s
                 - diffhw.evaluate(base, model, wl, diffhw.parallelism(tp=t)).tpot_s) for t in (2, 8)]
    assert gap[1] > 5 * gap[0] > 0


def test_per_sequence_overhead_adds_batch_times_cost_per_step():
    """`sequence_overhead_s` is paid once per sequence in each Decode step."""
    s = 2e-4
    base = presets.hardware("h100-sxm")
    seq = presets.hardware("h100-sxm", profile=presets.profile("default", overrides={"sequence_overhead_s": s}))
    model = presets.model("llama-3.1-8b")
    for batch in (1.0, 16.0):
        wl = diffhw.workload(batch=batch, input_tokens=512, output_tokens=64)
        par = diffhw.parallelism(tp=1)
        d = float(diffhw.evaluate(seq, model, wl, par).tpot_s - diffhw.evaluate(base, model, wl, par).tpot_s)
        assert d == pytest.approx(batch * s, rel=1e-5)


# --- diffhw.network: the interconnect model in public (issue 15, claims 12 and 13) ---

def test_network_namespace_reexports_the_model():
    from diffhw._hardware import _collective_algorithms, _endpoints, _topology

    assert diffhw.network.allreduce_time is _collective_algorithms.allreduce_time
    assert diffhw.network.average_hops is _topology.average_hops
    assert diffhw.network.timeout_time is _endpoints.timeout_time
    assert diffhw.NetworkOptions is diffhw.network.NetworkOptions
    assert "network" in diffhw.__all__ and "NetworkOptions" in diffhw.__all__
    assert all(hasattr(diffhw.network, n) for n in diffhw.network.__all__)


def test_collective_time_golden_and_as_evaluate_charges_it():
    """By hand: a fixed recursive-doubling all-reduce through one switch is
    ``2 log2(p) (a + 2 h) + 2 (p-1)/p M/B`` plus the profile's per-call cost; and Decode's
    communication of a dense model is 2 all-reduces per layer of ``batch d_model 2`` bytes."""
    hw = presets.hardware("h100-sxm")
    rd = dataclasses.replace(hw, network=dataclasses.replace(hw.network, algorithm="recursive_doubling"))
    a, h = float(hw.message_latency_s), float(hw.link_latency_s)
    bw = float(hw.link_bandwidth_bytes_per_s * hw.profile.network_efficiency)
    m, p = 131072.0, 8.0
    want = float(hw.profile.collective_latency_s) + 2 * 3 * (a + 2 * h) + 2 * (p - 1) / p * m / bw
    assert float(diffhw.network.collective_time(rd, "allreduce", m, p)) == pytest.approx(want, rel=1e-5)
    assert float(diffhw.network.collective_time(hw, "allreduce", m, 1.0)) == 0.0
    model = presets.model("llama-3.1-70b")
    batch = 8.0
    comm, _ = _comm(hw, tp=8, batch=int(batch))
    per = float(diffhw.network.collective_time(hw, "allreduce", batch * float(model.d_model) * 2.0, 8.0))
    assert comm == pytest.approx(2 * model.n_layers * per, rel=1e-4)
    t = diffhw.network.collective_time(hw, "allreduce", jnp.array([[1e3], [1e6]]), jnp.array([[8.0, 64.0]]))
    assert t.shape == (2, 2) and bool(jnp.all(jnp.diff(t, axis=0) > 0)) and bool(jnp.all(jnp.diff(t, axis=1) > 0))
    assert float(diffhw.network.collective_time(hw, "p2p", m)) > float(hw.profile.collective_latency_s)
    assert float(diffhw.network.collective_time(hw, "alltoall", m, 8.0)) > 0.0
    with pytest.raises(ValueError, match="collective='broadcast'"):
        diffhw.network.collective_time(hw, "broadcast", m, 8.0)


def test_collective_time_latency_floor_is_flat_in_message_size():
    """At (nearly) infinite bandwidth an all-reduce costs the same for 1 KB and 1 MB: the
    alpha term claim 12 plots."""
    hw = presets.hardware("h100-sxm").replace(link_bandwidth_bytes_per_s=1e30)
    t = np.asarray(diffhw.network.collective_time(hw, "allreduce", np.array([1e3, 1e6]), 8.0))
    assert t[1] == pytest.approx(t[0], rel=1e-6)
