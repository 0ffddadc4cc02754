"""Memory tiers, placement, granularity, latency buffers, wear-out, shared context."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw import presets
from diffhw._cli import main
from diffhw._hardware import _memory

YEAR = 365.25 * 24 * 3600
DS = "deepseek-v3"


@pytest.fixture(scope="module")
def hbf():
    return presets.hardware("b200-hbf")


@pytest.fixture(scope="module")
def ds():
    return presets.model(DS)


def _run(hw, model, batch=16, shared=0.0, **kw):
    wl = diffhw.workload(batch, 8192, 1024, "fp8", shared_context_tokens=shared)
    return diffhw.evaluate(hw, model, wl, diffhw.parallelism(tp=8, ep=8), **kw)


def test_hbf_preset_structure(hbf):
    assert [t.name for t in hbf.tiers] == ["hbf"]
    t = hbf.tiers[0]
    assert float(t.capacity_bytes) == 8 * 512e9 and float(t.read_bandwidth_bytes_per_s) == 8 * 1638e9
    assert float(t.granularity_bytes) == 4096 and float(t.endurance_cycles) == 1e5
    assert float(hbf.flop_per_s_bf16) == float(presets.hardware("b200").flop_per_s_bf16)  # based_on


def test_kv_cache_in_hbf_wears_out_but_weights_and_context_do_not(hbf, ds):
    """Paper claim 5: the KV cache is written every token and would exhaust HBF."""
    ok = _run(hbf, ds, batch=64, shared=100_000)
    life = dict(zip(ok.tiers.names, np.asarray(ok.tiers.lifetime_s)))
    assert life["hbf"] > 1000 * YEAR  # weights and context are never rewritten
    bad_hw = hbf.replace(placement=_memory.placement(2, weights=[0.0, 1.0], kv_cache=[0.0, 1.0],
                                                     context=[0.0, 1.0]))
    bad = _run(bad_hw, ds, batch=64)
    life = dict(zip(bad.tiers.names, np.asarray(bad.tiers.lifetime_s)))
    assert life["hbf"] < 5 * YEAR  # "HBF must last 5 years" fails
    assert float(bad.tiers.lifetime_margin(5 * YEAR)[1]) < 0 < float(ok.tiers.lifetime_margin(5 * YEAR)[1])
    # at the boundary: a requirement equal to the lifetime has zero margin, and the
    # margin is smooth (finite gradient) in the tier's endurance
    assert float(bad.tiers.lifetime_margin(life["hbf"])[1]) == pytest.approx(0.0, abs=1e-9)
    wl = diffhw.workload(64, 8192, 1024, "fp8")
    par = diffhw.parallelism(tp=8, ep=8)

    def margin(endurance):
        t = eqx.tree_at(lambda x: x.endurance_cycles, bad_hw.tiers[0], endurance)
        return diffhw.evaluate(bad_hw.replace(tiers=(t,)), ds, wl, par).tiers.lifetime_margin(5 * YEAR)[1]

    g = jax.grad(margin)(jnp.asarray(1e5))
    assert np.isfinite(float(g)) and float(g) > 0
    assert float(margin(jnp.asarray(1e5 * 5 * YEAR / life["hbf"]))) == pytest.approx(0.0, abs=1e-6)


def test_hbf_multiplies_capacity_and_max_batch(hbf, ds):
    base = _run(presets.hardware("b200"), ds)
    withf = _run(hbf, ds)
    assert float(withf.max_batch) > 1.5 * float(base.max_batch)
    assert float(withf.memory_margin) > float(base.memory_margin)


def test_access_granularity():
    assert float(_memory.access_efficiency(1e6, 4096.0)) == pytest.approx(1.0, abs=1e-3)
    assert float(_memory.access_efficiency(256.0, 4096.0)) == pytest.approx(256 / 4096, rel=0.02)
    # smaller accesses never move fewer bytes per useful byte
    sizes = jnp.asarray([64.0, 256.0, 1024.0, 4096.0, 16384.0])
    eff = _memory.access_efficiency(sizes, 4096.0)
    assert bool(jnp.all(jnp.diff(eff) > 0))


def test_latency_buffer_littles_law(hbf):
    """Paper claim 6: HBF's microsecond latency needs ~2 x bandwidth x latency of buffer."""
    t = hbf.tiers[0]
    need = float(_memory.needed_buffer_bytes(t))
    assert need == pytest.approx(2 * 8 * 1638e9 * 2e-6)  # 52 MB; SK hynix H3 uses 40 MB
    big = eqx.tree_at(lambda x: x.prefetch_buffer_bytes, t, jnp.asarray(1e9))
    small = eqx.tree_at(lambda x: x.prefetch_buffer_bytes, t, jnp.asarray(1e6))
    assert float(_memory.sustained_bandwidth(big)) == pytest.approx(8 * 1638e9, rel=1e-3)
    assert float(_memory.sustained_bandwidth(small)) == pytest.approx(1e6 / 2e-6, rel=1e-3)


def test_more_tier_bandwidth_or_buffer_never_slower(hbf, ds):
    ts = []
    for scale in (0.5, 1.0, 2.0, 4.0):
        t = hbf.tiers[0]
        t = eqx.tree_at(lambda x: (x.read_bandwidth_bytes_per_s, x.prefetch_buffer_bytes), t,
                        (t.read_bandwidth_bytes_per_s * scale, t.prefetch_buffer_bytes * scale))
        ts.append(float(_run(hbf.replace(tiers=(t,)), ds).tpot_s))
    assert all(b <= a for a, b in itertools.pairwise(ts))


def test_serial_access_is_never_faster(hbf, ds):
    import dataclasses

    serial = dataclasses.replace(hbf, tier_access="serial")
    assert float(_run(serial, ds).tpot_s) >= float(_run(hbf, ds).tpot_s)


def test_placement_gradient_by_logits(hbf, ds):
    wl = diffhw.workload(16, 8192, 1024, "fp8", shared_context_tokens=50_000)
    par = diffhw.parallelism(tp=8, ep=8)

    def tpot(logits):
        h = hbf.replace(placement=_memory.placement_from_logits(logits))
        return diffhw.evaluate(h, ds, wl, par).tpot_s

    logits = jnp.asarray([[0.5, -0.5], [2.0, -2.0], [-1.0, 1.0], [3.0, -3.0]])
    g = jax.grad(tpot)(logits)
    assert bool(jnp.all(jnp.isfinite(g)))
    for idx in [(0, 0), (2, 1)]:
        h = 1e-5
        fd = (tpot(logits.at[idx].add(h)) - tpot(logits.at[idx].add(-h))) / (2 * h)
        assert float(g[idx]) == pytest.approx(float(fd), rel=1e-3, abs=1e-12)


def test_gradients_wrt_every_tier_leaf(hbf, ds):
    wl = diffhw.workload(16, 8192, 1024, "fp8", shared_context_tokens=50_000)
    par = diffhw.parallelism(tp=8, ep=8)
    tier = hbf.tiers[0]
    params, static = eqx.partition(tier, eqx.is_inexact_array)
    flat, treedef = jax.tree_util.tree_flatten(params)

    def f(xs):
        t = eqx.combine(jax.tree_util.tree_unflatten(treedef, list(xs)), static)
        r = diffhw.evaluate(hbf.replace(tiers=(t,)), ds, wl, par)
        return jnp.stack([r.tpot_s, r.ttft_s, r.tiers.lifetime_s[1], r.memory_margin])

    x0 = [jnp.asarray(x, dtype=jnp.float64) for x in flat]
    jac = jax.jacrev(f)(x0)
    y0 = np.asarray(f(x0))
    for j, x in enumerate(x0):
        g = np.asarray(jac[j])
        assert np.all(np.isfinite(g))
        v = float(x)
        h = 1e-6 * abs(v) if v else 1e-9
        up = [xx if k != j else xx + h for k, xx in enumerate(x0)]
        dn = [xx if k != j else xx - h for k, xx in enumerate(x0)]
        fd = (np.asarray(f(up)) - np.asarray(f(dn))) / (2 * h)
        for k in range(4):
            atol = 1e-7 * abs(y0[k]) / (abs(v) if v else 1.0)
            assert g[k] == pytest.approx(fd[k], rel=1e-3, abs=atol), (j, k)


def test_max_batch_is_the_boundary_in_every_tier(hbf, ds):
    mb = int(_run(hbf, ds).max_batch)
    assert bool(_run(hbf, ds, batch=mb).fits)
    assert not bool(_run(hbf, ds, batch=mb + 1).fits)


def test_shared_context_is_stored_once_and_read_once(ds):
    hw = presets.hardware("b200")
    a, b = _run(hw, ds, batch=4, shared=20_000), _run(hw, ds, batch=16, shared=20_000)
    assert float(a.context_bytes) == pytest.approx(float(b.context_bytes))
    assert float(a.context_bytes) == pytest.approx(20_000 * (512 + 64) * 61 * 1.0, rel=1e-3)  # MLA, fp8
    none = _run(hw, ds, batch=16, shared=0.0)
    assert float(b.tpot_s) > float(none.tpot_s)
    costs = diffhw.workload_costs(ds, diffhw.workload(4, 100, 2, "fp8", shared_context_tokens=1000))
    costs16 = diffhw.workload_costs(ds, diffhw.workload(16, 100, 2, "fp8", shared_context_tokens=1000))
    assert costs["decode_step"]["model"]["total"]["flops"] < costs16["decode_step"]["model"]["total"]["flops"]


@pytest.mark.parametrize(
    "tiers, placement, expect",
    [
        ('name = "x"\ntechnology = "HBX"\ndevices = 2', None, "did you mean HBF"),
        ('name = "x"\ntechnology = "HBF"\ndevices = -2', None, "devices = -2"),
        ('name = "main"\ntechnology = "HBF"\ndevices = 2', None, "not used by another tier"),
        ('name = "x"\ntechnology = "HBF"', None, "devices"),
        ('name = "x"\ntechnology = "HBF"\ndevices = 2', "weights = [0.5, 0.6]", "add up to 1"),
        ('name = "x"\ntechnology = "HBF"\ndevices = 2', "weights = [1.0]", "one per tier"),
        ('name = "x"\ntechnology = "HBF"\ndevices = 2', "kv = [1.0, 0.0]", "one of activations, context, kv_cache, weights"),
    ],
)
def test_bad_tier_tables(tmp_path, capsys, tiers, placement, expect):
    f = tmp_path / "chip.toml"
    text = f'based_on = "b200"\nname = "chip"\n[[tiers]]\n{tiers}\n'
    if placement:
        text += f"[placement]\n{placement}\n"
    f.write_text(text)
    assert main(["evaluate", "--hardware", str(f)]) == 2
    err = capsys.readouterr().err
    assert expect in err and "Traceback" not in err


def test_cli_reports_tiers(capsys):
    import json

    assert main(["evaluate", "--hardware", "b200-hbf", "--model", DS, "--tp", "8", "--ep", "8",
                 "--precision", "fp8", "--shared-context-tokens", "100000", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    names = [t["name"] for t in d["tiers"]]
    assert names == ["main", "hbf"]
    hbf_row = d["tiers"][1]
    assert hbf_row["occupancy_bytes"] > 0 and hbf_row["write_bytes_per_s"] == 0.0
    assert np.isfinite(hbf_row["lifetime_s"]) and hbf_row["needed_buffer_bytes"] > 0
    assert d["shared_context_tokens"] == 100000


def test_cxl_ddr5_tier_adds_capacity_at_low_bandwidth(tmp_path):
    f = tmp_path / "chip.toml"
    f.write_text('based_on = "h100-sxm"\nname = "cxl"\n[[tiers]]\nname = "cxl"\ntechnology = "CXL_DDR5"\n'
                 "devices = 4\n[placement]\nkv_cache = [0.5, 0.5]\n")
    hw = presets.hardware(str(f))
    t = hw.tiers[0]
    assert float(t.capacity_bytes) == 4 * 128e9 and float(t.read_latency_s) == pytest.approx(250e-9)
    m = presets.model("llama-3.1-70b")
    wl = diffhw.workload(64, 8192, 512)
    par = diffhw.parallelism(tp=8)
    base = diffhw.evaluate(presets.hardware("h100-sxm"), m, wl, par)
    cxl = diffhw.evaluate(hw, m, wl, par)
    assert float(cxl.max_batch) > float(base.max_batch)  # half the KV cache moved out
    assert float(cxl.tpot_s) > float(base.tpot_s)        # ... to a 64 GB/s link
