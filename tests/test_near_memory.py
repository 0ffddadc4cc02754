"""Processing near/in memory and 3D stacking (paper directions 2 and 3)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw import presets
from diffhw._hardware._near_memory import NearMemory, thermal_flop_per_s, thermal_margin_w


def _nm(shard_bytes, multiple=4.0, flops=200e12, offload=1.0):
    return NearMemory(flop_per_s=flops, j_per_flop=0.3e-12, bandwidth_multiple=multiple, j_per_byte=1e-12,
                      shard_bytes=shard_bytes, offload_fraction=offload)


def _tpot(hw, model, batch, tp, prec="bf16"):
    wl = diffhw.workload(batch, 1024, 128, prec)
    return float(diffhw.evaluate(hw, model, wl, diffhw.parallelism(tp=tp)).tpot_s)


def test_offload_zero_changes_nothing():
    hw = presets.hardware("h100-sxm")
    m = presets.model("llama-3.1-8b")
    base = _tpot(hw, m, 8, 1)
    assert _tpot(hw.replace(near_memory=_nm(16e9, offload=0.0)), m, 8, 1) == pytest.approx(base, rel=1e-6)


def test_pim_penalty_datacenter_vs_plausible_on_mobile():
    """Paper claim 7, from the same equations: bank-sized (32 MB) shards multiply the
    inputs and partial results the host exchanges with the units; PNM's 16 GB shards do
    not. The overhead scales with tokens x width / shard: large at datacenter batch,
    negligible at batch 1, where PIM's internal bandwidth wins on a phone."""
    from diffhw._hardware._near_memory import offload
    from diffhw._workload._operators import shards_for, step_ops

    hw = presets.hardware("h100-sxm")
    m = presets.model("llama-3.1-70b")

    def overhead(shard, batch):
        ops = step_ops(m, shards_for(m, 8.0, 1.0), float(batch), float(batch), 2048.0, 2.0, 2.0, 2.0, True)
        ffn = next(op for name, _, op in ops if name == "ffn")
        off = offload(hw.replace(near_memory=_nm(shard)), ffn)
        return float(off.host_extra_bytes / ffn.weight_bytes)

    assert overhead(32e6, 1024) > 0.3 and overhead(16e9, 1024) < 1e-3
    assert overhead(32e6, 1) < 0.01
    pnm = _tpot(hw.replace(near_memory=_nm(16e9, flops=2e15)), m, 1024, 8)
    pim = _tpot(hw.replace(near_memory=_nm(32e6, flops=2e15)), m, 1024, 8)
    assert pim > pnm
    phone = presets.hardware("snapdragon-8-gen-3")
    pim_phone = presets.hardware("snapdragon-8-gen-3-pim")
    small = presets.model("llama-3.1-8b")
    assert _tpot(pim_phone, small, 1, 1, "int4") < 0.6 * _tpot(phone, small, 1, 1, "int4")


def test_hbm4_base_die_pnm_halves_memory_energy():
    m = presets.model("llama-3.1-70b")
    hw = presets.hardware("b200-hbm4-pnm")
    tech = presets.technology_for("b200-hbm4-pnm")
    wl = diffhw.workload(8, 1024, 128)
    par = diffhw.parallelism(tp=8)
    off = diffhw.evaluate(hw, m, wl, par, technology=tech)
    hw0 = hw.replace(near_memory=eqx.tree_at(lambda n: n.offload_fraction, hw.near_memory, jnp.asarray(0.0)))
    on_host = diffhw.evaluate(hw0, m, wl, par, technology=tech)
    # same bandwidth: Decode time about the same; dynamic memory energy lower
    assert float(off.tpot_s) == pytest.approx(float(on_host.tpot_s), rel=0.1)
    static = float(off.economics.static_power_w) * 8 * float(off.tpot_s) / 8
    dyn_off = float(off.economics.decode_energy_per_token_j) - static
    static0 = float(on_host.economics.static_power_w) * 8 * float(on_host.tpot_s) / 8
    dyn_host = float(on_host.economics.decode_energy_per_token_j) - static0
    assert dyn_off < 0.8 * dyn_host


def test_3d_thermal_cap_hurts_compute_bound_work_not_decode():
    """Paper claim 8: capping the stacked logic's FLOP/s (low clock and voltage) barely
    moves Decode, whose arithmetic intensity is low; the same cut on compute-bound Prefill
    hurts."""
    hw = presets.hardware("b200-3d")
    m = presets.model("llama-3.1-70b")
    par = diffhw.parallelism(tp=8)
    wl = diffhw.workload(4, 4096, 256)
    nm = hw.near_memory
    cool = eqx.tree_at(lambda n: n.power_density_w_per_mm2, nm, jnp.asarray(1e6))
    # 0.2 W/mm2 x 968 mm2 leaves ~20 W for logic once the 3D memory accesses are paid
    hot = eqx.tree_at(lambda n: n.power_density_w_per_mm2, nm, jnp.asarray(0.2))
    bw = nm.bandwidth_multiple * hw.memory_bandwidth_bytes_per_s * hw.profile.bandwidth_efficiency
    capped = float(thermal_flop_per_s(hot, bw)) / float(thermal_flop_per_s(cool, bw))
    assert capped < 0.5
    t_cool = float(diffhw.evaluate(hw.replace(near_memory=cool), m, wl, par).tpot_s)
    t_hot = float(diffhw.evaluate(hw.replace(near_memory=hot), m, wl, par).tpot_s)
    assert t_hot == pytest.approx(t_cool, rel=0.1)
    # the same FLOP/s cut on the host's compute-bound Prefill
    slow = hw.replace(flop_per_s_bf16=hw.flop_per_s_bf16 * capped)
    ttft = [float(diffhw.evaluate(h, m, wl, par).ttft_s) for h in (hw, slow)]
    assert ttft[1] > 1.6 * ttft[0]


def test_thermal_cap_is_smooth_and_dvfs_cubic():
    nm = _nm(16e9)
    nm = eqx.tree_at(lambda n: (n.power_density_w_per_mm2, n.footprint_mm2), nm,
                     (jnp.asarray(0.01), jnp.asarray(100.0)))
    # budget 1 W, need 200e12 * 0.3e-12 = 60 W: (1/60)^(1/3) of peak
    f = float(thermal_flop_per_s(nm, 0.0))
    assert f == pytest.approx(200e12 * (1 / 60) ** (1 / 3), rel=0.02)
    g = jax.grad(lambda d: thermal_flop_per_s(eqx.tree_at(lambda n: n.power_density_w_per_mm2, nm, d), 0.0))(
        jnp.asarray(0.01))
    assert np.isfinite(float(g)) and float(g) > 0


def test_a_thermal_budget_below_the_memorys_own_power_is_refused_not_answered():
    """0.1 W/mm2 x 968 mm2 = 97 W, below the ~174 W the 3D memory draws at full internal
    bandwidth: the logic would get ~0 FLOP/s (a TPOT of ~1e28 ms). evaluate refuses it;
    a sweep marks those designs infeasible, with the reason."""
    hw = presets.hardware("b200-3d")
    m = presets.model("llama-3.1-70b")
    par, wl = diffhw.parallelism(tp=8), diffhw.workload(4, 4096, 256)
    assert float(thermal_margin_w(hw)) > 0
    cold = hw.replace(near_memory=eqx.tree_at(lambda n: n.power_density_w_per_mm2, hw.near_memory,
                                              jnp.asarray(0.1)))
    assert float(thermal_margin_w(cold)) < 0
    with pytest.raises(diffhw.InputError, match="thermal margin"):
        diffhw.evaluate(cold, m, wl, par)
    d = diffhw.Design(hw, m, wl, par, None)
    r = diffhw.sweep(d, {"hardware.near_memory.power_density_w_per_mm2": [0.5, 0.1]}, metrics=["tpot_s"],
                     progress=False)
    assert list(r.feasible) == [True, False] and "thermal" in r.reasons[1]


@pytest.mark.parametrize("name", ["b200-hbm4-pnm", "b200-3d", "snapdragon-8-gen-3-pim"])
def test_gradients_wrt_near_memory_leaves(name):
    hw = presets.hardware(name)
    m = presets.model("llama-3.1-8b")
    wl = diffhw.workload(4, 1024, 64, "int4" if "snap" in name else "bf16")
    par = diffhw.parallelism()
    nm = eqx.tree_at(lambda n: n.offload_fraction, hw.near_memory, jnp.asarray(0.7))
    params, static = eqx.partition(nm, eqx.is_inexact_array)
    flat, treedef = jax.tree_util.tree_flatten(params)

    def f(xs):
        n = eqx.combine(jax.tree_util.tree_unflatten(treedef, list(xs)), static)
        return diffhw.evaluate(hw.replace(near_memory=n), m, wl, par).tpot_s

    x0 = [jnp.asarray(x, dtype=jnp.float64) for x in flat]
    grads = jax.jit(jax.grad(f))(x0)
    y0 = float(f(x0))
    for j, x in enumerate(x0):
        g = float(grads[j])
        assert np.isfinite(g)
        v = float(x)
        h = 1e-6 * abs(v) if v else 1e-3  # zero leaves (e.g. a bandwidth density of 0): absolute step
        up = [xx if k != j else xx + h for k, xx in enumerate(x0)]
        dn = [xx if k != j else xx - h for k, xx in enumerate(x0)] if v else x0
        fd = (float(f(up)) - float(f(dn))) / ((2 * h) if v else h)
        scale = abs(v) if v else 1.0
        assert g == pytest.approx(fd, rel=1e-3, abs=1e-7 * y0 / scale), j


def test_bad_near_memory_tables(tmp_path, capsys):
    from diffhw._cli import main

    f = tmp_path / "chip.toml"
    f.write_text('based_on = "h100-sxm"\nname = "x"\n[near_memory]\ntier = "hbf"\nflop_tflops = 1\n'
                 'pj_per_flop = 1\nbandwidth_multiple = 2\npj_per_bit = 1\nshard_mb = 32\n')
    assert main(["evaluate", "--hardware", str(f)]) == 2
    assert "tier = 'hbf'" in capsys.readouterr().err
    f.write_text('based_on = "h100-sxm"\nname = "x"\n[near_memory]\nflop_tflops = 1\n'
                 'pj_per_flop = 1\nbandwidth_multiple = 2\npj_per_bit = 1\nshard_mb = 32\noffload_fraction = 1.5\n')
    assert main(["evaluate", "--hardware", str(f)]) == 2
    assert "offload_fraction = 1.5" in capsys.readouterr().err


def test_custom_3d_bandwidth_density_raises_internal_bandwidth():
    hw = presets.hardware("b200-3d")
    m = presets.model("llama-3.1-70b")
    wl = diffhw.workload(4, 4096, 256)
    par = diffhw.parallelism(tp=8)
    dense = eqx.tree_at(lambda n: (n.bandwidth_multiple, n.bandwidth_density_bytes_per_s_per_mm2), hw.near_memory,
                        (jnp.asarray(0.0), jnp.asarray(40e9)))  # 40 GB/s per mm2 x 968 mm2 = 38.7 TB/s
    sparse = eqx.tree_at(lambda n: n.bandwidth_density_bytes_per_s_per_mm2, dense, jnp.asarray(10e9))
    fast = float(diffhw.evaluate(hw.replace(near_memory=dense), m, wl, par).tpot_s)
    slow = float(diffhw.evaluate(hw.replace(near_memory=sparse), m, wl, par).tpot_s)
    assert fast < slow


def test_pim_costs_density_and_commodity_pricing():
    phone = presets.hardware("snapdragon-8-gen-3")
    pim = presets.hardware("snapdragon-8-gen-3-pim")
    m = presets.model("llama-3.1-8b")
    wl = diffhw.workload(1, 1024, 64, "int4")
    par = diffhw.parallelism()
    a = diffhw.evaluate(phone, m, wl, par, technology=presets.technology_for("snapdragon-8-gen-3"))
    b = diffhw.evaluate(pim, m, wl, par, technology=presets.technology_for("snapdragon-8-gen-3-pim"))
    assert float(b.tiers.capacity_bytes[0]) == pytest.approx(0.75 * float(a.tiers.capacity_bytes[0]))
    assert float(b.economics.memory_cost_usd) == pytest.approx(1.5 * float(a.economics.memory_cost_usd))


def test_near_memory_logic_counts_in_area_cost_and_carbon(capsys):
    """3D logic under the stacks: FLOP/s x the node's mm2 per FLOP/s of silicon, one die
    per HBM stack, bought at the wafer price per good mm2, hybrid-bonded (cost per mm2 and
    a bond yield), and charged embodied carbon per area over its yield. `logic_die = 0`
    (PIM inside the DRAM arrays) charges none of it."""
    import json

    from diffhw._cli import main

    hw = presets.hardware("b200-3d")
    tech = presets.technology_for("b200-3d")
    m = presets.model("llama-3.1-8b")
    wl = diffhw.workload(1, 512, 16)
    par = diffhw.parallelism()
    e = diffhw.evaluate(hw, m, wl, par, technology=tech).economics
    none = eqx.tree_at(lambda n: n.logic_die, hw.near_memory, jnp.asarray(0.0))
    e0 = diffhw.evaluate(hw.replace(near_memory=none), m, wl, par, technology=tech).economics
    area = 1000e12 * float(tech.compute_mm2_per_flop_per_s)  # 1000 TFLOP/s at N4's 0.70 mm2/TF
    assert float(e.near_memory_mm2) == pytest.approx(area, rel=1e-9) and area == pytest.approx(700.0)
    assert float(e.area.near_memory_mm2) == float(e.near_memory_mm2)
    assert float(e.chip_area_mm2) == pytest.approx(float(e0.chip_area_mm2))  # host dies unchanged
    stacks = 8e12 / 1254e9
    die = area / stacks
    r = 145.0
    usable = np.pi * r**2 - np.pi * 2 * r * np.sqrt(die / 2)
    y = (1 + die * 0.10 / 100 / 10) ** -10 * 0.99
    cost = area * 17000.0 / (usable * y) + area * 0.017
    assert float(e.near_memory_cost_usd) == pytest.approx(cost, rel=1e-4)
    assert float(e0.near_memory_cost_usd) == 0.0 and float(e0.near_memory_mm2) == 0.0
    assert float(e.chip_cost_usd - e0.chip_cost_usd) == pytest.approx(cost, rel=1e-4)
    assert float(e.embodied_kgco2e_per_chip - e0.embodied_kgco2e_per_chip) == pytest.approx(area * 0.025 / y, rel=1e-4)
    assert float(e.usd_per_million_tokens) > float(e0.usd_per_million_tokens)
    assert main(["evaluate", "--json", "--hardware", "b200-3d", "--model", "llama-3.1-8b", "--chips", "1",
                 "--batch", "1", "--input-tokens", "512", "--output-tokens", "16"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["area_breakdown_mm2"]["near_memory"] == pytest.approx(700.0, rel=1e-6)
    assert d["near_memory_cost_usd"] > 0 and "compute" in d["area_breakdown_mm2"]


@pytest.mark.parametrize("name", ["b200-hbm4-pnm", "snapdragon-8-gen-3-pim"])
def test_near_memory_cost_gradients_match_finite_differences(name):
    """Near-memory area, die cost and yield w.r.t. every near-memory, hardware and
    technology leaf (float64), including an area of 0 (no logic: cost 0, finite slopes)."""
    from diffhw._economics._cost import near_memory_dies

    hw = presets.hardware(name)
    tech = presets.technology_for(name)
    params, static = eqx.partition((hw, tech), eqx.is_inexact_array)
    flat, treedef = jax.tree_util.tree_flatten(params)

    def f(xs):
        h, t = eqx.combine(jax.tree_util.tree_unflatten(treedef, list(xs)), static)
        a = diffhw.chip_area(h, t)
        cost, y = near_memory_dies(h, t, a.near_memory_mm2)
        return jnp.stack([a.near_memory_mm2, cost, y])

    x0 = [jnp.asarray(x, dtype=jnp.float64) for x in flat]
    jac = jax.jit(jax.jacrev(f))(x0)
    f = jax.jit(f)
    y0 = np.asarray(f(x0))
    for j, x in enumerate(x0):
        g = np.asarray(jac[j])
        assert np.all(np.isfinite(g)), j
        v = float(x)
        h = 1e-6 * abs(v) if v else 1e-6  # absolute step at 0 (1e-9 loses digits to round-off)
        up = [xx if k != j else xx + h for k, xx in enumerate(x0)]
        dn = [xx if k != j else xx - h for k, xx in enumerate(x0)]
        fd = (np.asarray(f(up)) - np.asarray(f(dn))) / (2 * h)
        for k in range(3):
            assert g[k] == pytest.approx(fd[k], rel=1e-4, abs=1e-8 * abs(y0[k]) / (abs(v) or 1.0)), (j, k)

    def cost_at(flops):
        nm = eqx.tree_at(lambda n: n.flop_per_s, hw.near_memory, flops)
        return near_memory_dies(hw.replace(near_memory=nm), tech, flops * tech.compute_mm2_per_flop_per_s)[0]

    g0 = jax.grad(cost_at)(jnp.asarray(0.0))
    assert float(cost_at(jnp.asarray(0.0))) == 0.0 and np.isfinite(float(g0)) and float(g0) > 0


def test_pim_preset_charges_no_logic_die():
    """PIM inside DRAM arrays (logic_die = 0) is paid through capacity and price, not as
    a logic die; a PNM base die (default logic_die = 1) is."""
    from diffhw import presets

    pim = presets.hardware("snapdragon-8-gen-3-pim")
    assert float(pim.near_memory.logic_die) == 0.0
    assert float(presets.hardware("b200-hbm4-pnm").near_memory.logic_die) == 1.0


def test_thermal_floor_keeps_tpot_bounded_and_the_margin_flags_it(tmp_path, capsys):
    """Below ~0.18 W/mm2 the 3D memory's own power exceeds b200-3d's thermal budget. The
    capped logic keeps a floor of 0.1% of its peak FLOP/s (TPOT stays finite and within
    1000x the uncapped compute), the `thermal_margin_w` metric goes negative, a sweep
    marks the design infeasible, and the CLI refuses it in plain words."""
    import json

    from diffhw._cli import main
    from diffhw._hardware._near_memory import THERMAL_FLOOR

    hw = presets.hardware("b200-3d")
    m = presets.model("llama-3.1-70b")
    d = diffhw.Design(hw, m, diffhw.workload(4, 4096, 256), diffhw.parallelism(tp=8), None)
    assert {"thermal_margin_w", "near_memory_flop_per_s"} <= set(diffhw.metric_names(d))
    r = diffhw.sweep(d, {"hardware.near_memory.power_density_w_per_mm2": [1e3, 0.5, 0.1, 0.01]},
                     metrics=["tpot_s", "thermal_margin_w", "near_memory_flop_per_s"], progress=False)
    tpot, margin, flops = (np.asarray(r.metrics[k]) for k in ("tpot_s", "thermal_margin_w", "near_memory_flop_per_s"))
    assert np.all(np.isfinite(tpot)) and list(r.feasible) == [True, True, False, False]
    assert margin[1] > 0 > margin[2] > margin[3]
    assert flops[3] == pytest.approx(THERMAL_FLOOR * float(hw.near_memory.flop_per_s), rel=0.05)
    assert 5.0 * tpot[0] < tpot[3] < 1000.0 * tpot[0]  # slow (1 TFLOP/s logic), finite, bounded
    # the floor: finite slopes where the memory eats the whole budget
    nm = eqx.tree_at(lambda n: n.power_density_w_per_mm2, hw.near_memory, jnp.asarray(0.01))
    bw = float(nm.bandwidth_multiple * hw.memory_bandwidth_bytes_per_s)
    g = jax.grad(lambda x: thermal_flop_per_s(eqx.tree_at(lambda n: n.power_density_w_per_mm2, nm, x), bw))(
        jnp.asarray(0.01))
    assert np.isfinite(float(g)) and float(g) >= 0
    f = tmp_path / "cold.toml"
    f.write_text('based_on = "b200-3d"\nname = "cold"\n[near_memory]\npower_density_w_per_mm2 = 0.1\n')
    assert main(["evaluate", "--hardware", str(f), "--model", "llama-3.1-8b", "--chips", "1"]) == 2
    assert "thermally infeasible" in capsys.readouterr().err
    assert main(["evaluate", "--json", "--hardware", "b200-3d", "--model", "llama-3.1-8b", "--chips", "1",
                 "--batch", "1", "--input-tokens", "512", "--output-tokens", "16"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["thermal_margin_w"] == pytest.approx(float(thermal_margin_w(hw)), rel=1e-5) and out["thermal_margin_w"] > 0
    assert 0 < out["near_memory_flop_per_s"] <= float(hw.near_memory.flop_per_s)
    c = diffhw.constraint("thermal_margin_w>=0")
    assert c.metric == "thermal_margin_w"


def test_pim_shard_exchange_scales_with_shards_and_batch_and_costs_energy():
    """Every shard returns a partial result per token: the host's extra traffic is
    ``(shards - 1) x activation bytes``, linear in the batch and in ``1 / shard_bytes``.
    That traffic crosses the memory interface, so it costs time and energy; with bank-sized
    (32 MB) shards at datacenter batch PIM's Decode energy per token exceeds the same
    design's with PNM-sized (32 GB) shards."""
    from diffhw._hardware._near_memory import offload
    from diffhw._workload._operators import shards_for, step_ops

    pim = presets.hardware("b200-hbm4-pim")
    m = presets.model("llama-3.1-70b")

    def extra(shard, batch):
        ops = step_ops(m, shards_for(m, 1.0, 1.0), float(batch), float(batch), 2048.0, 2.0, 2.0, 2.0, True)
        ffn = next(op for name, _, op in ops if name == "ffn")
        nm = eqx.tree_at(lambda n: n.shard_bytes, pim.near_memory, jnp.asarray(shard))
        off = offload(pim.replace(near_memory=nm), ffn)
        return float(off.host_extra_bytes), float(off.shards), float(ffn.weight_bytes)

    e1, s1, w = extra(32e6, 64)
    e2, s2, _ = extra(64e6, 64)
    e3, _, _ = extra(32e6, 128)
    assert s1 == pytest.approx(w / 32e6, rel=1e-3) and s2 == pytest.approx(w / 64e6, rel=1e-3)
    assert e3 == pytest.approx(2.0 * e1, rel=1e-4)
    assert e1 / e2 == pytest.approx((s1 - 1.0) / (s2 - 1.0), rel=1e-3)
    assert extra(32e9, 64)[0] == pytest.approx(0.0, abs=1e-3 * e1)  # one shard holds the matrix
    tech = presets.technology_for("b200-hbm4-pim")
    wl, par = diffhw.workload(64, 1024, 64), diffhw.parallelism()
    big = pim.replace(near_memory=eqx.tree_at(lambda n: n.shard_bytes, pim.near_memory, jnp.asarray(32e9)))
    small_e, big_e = (float(diffhw.evaluate(h, m, wl, par, technology=tech).economics.decode_energy_per_token_j)
                      for h in (pim, big))
    assert small_e - big_e > 0.01 * big_e  # 0 before the exchange was charged (same TPOT: the logic binds)


def test_datacenter_pim_loses_to_pnm_at_batch_but_not_at_batch_one():
    """Table 4 from the presets: HBM4-PIM (bank-level FP16 units at ~1 FLOP per byte, 4x
    internal bandwidth, 32 MB shards, -25% capacity, +50% $/GB) against HBM4 base-die PNM
    (same bandwidth, 48 GB shards): at batch 1 PIM's internal bandwidth makes Decode
    faster; at batch 256 its slow DRAM-process logic and shard traffic lose on perf/W and
    perf/TCO."""
    m = presets.model("llama-3.1-70b")
    par = diffhw.parallelism()
    out = {}
    for name in ("b200-hbm4-pnm", "b200-hbm4-pim"):
        hw, tech = presets.hardware(name), presets.technology_for(name)
        for b in (1, 256):
            e = diffhw.evaluate(hw, m, diffhw.workload(b, 1024, 128), par, technology=tech)
            out[name, b] = (float(e.tpot_s), float(e.economics.tokens_per_s_per_watt),
                            float(e.economics.tokens_per_s_per_usd))
    assert out["b200-hbm4-pim", 1][0] < out["b200-hbm4-pnm", 1][0]
    for k in (1, 2):
        assert out["b200-hbm4-pim", 256][k] < 0.7 * out["b200-hbm4-pnm", 256][k]
