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
    """Paper claim 7: the KV cache is written every token and would exhaust HBF made of
    TLC-class NAND (3e3 P/E cycles); at SanDisk's ~1e5 with appends buffered into pages it
    lasts (the experiment claim_07 sweeps the range)."""
    ok = _run(hbf, ds, batch=64, shared=100_000)
    life = dict(zip(ok.tiers.names, np.asarray(ok.tiers.lifetime_s)))
    assert life["hbf"] > 1000 * YEAR  # weights and context are never rewritten
    kv_in_hbf = hbf.replace(placement=_memory.placement(2, weights=[0.0, 1.0], kv_cache=[0.0, 1.0],
                                                        context=[0.0, 1.0]))
    sandisk = float(_run(kv_in_hbf, ds, batch=64).tiers.lifetime_s[1])
    assert 10 * YEAR < sandisk < 100 * YEAR  # 26.7 years at 1e5 P/E, buffered appends
    tlc = eqx.tree_at(lambda x: x.endurance_cycles, kv_in_hbf.tiers[0], jnp.asarray(3e3))
    bad_hw = kv_in_hbf.replace(tiers=(tlc,))
    bad = _run(bad_hw, ds, batch=64)
    life = dict(zip(bad.tiers.names, np.asarray(bad.tiers.lifetime_s)))
    assert life["hbf"] == pytest.approx(sandisk * 3e3 / 1e5, rel=1e-6)  # linear in endurance
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

    g = jax.jit(jax.grad(margin))(jnp.asarray(3e3))
    assert np.isfinite(float(g)) and float(g) > 0
    assert float(margin(jnp.asarray(3e3 * 5 * YEAR / life["hbf"]))) == pytest.approx(0.0, abs=1e-6)


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
    """Paper claim 8: HBF's microsecond latency needs bandwidth x latency of buffer."""
    t = hbf.tiers[0]
    need = float(_memory.needed_buffer_bytes(t))
    assert need == pytest.approx(8 * 1638e9 * 2e-6)  # 26 MB; SK hynix H3 uses 40 MB
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
    g = jax.jit(jax.grad(tpot))(logits)
    assert bool(jnp.all(jnp.isfinite(g)))
    for idx in [(0, 0), (2, 1)]:
        h = 1e-5
        fd = (tpot(logits.at[idx].add(h)) - tpot(logits.at[idx].add(-h))) / (2 * h)
        assert float(g[idx]) == pytest.approx(float(fd), rel=1e-3, abs=1e-12)


def test_gradients_wrt_every_tier_leaf(hbf, ds):
    wl = diffhw.workload(16, 8192, 1024, "fp8", shared_context_tokens=50_000)
    par = diffhw.parallelism(tp=8, ep=8)
    # a write path inside (0, 1), so central differences stay in the allowed range
    tier = eqx.tree_at(lambda x: x.buffered_append_fraction, hbf.tiers[0], jnp.asarray(0.5))
    params, static = eqx.partition(tier, eqx.is_inexact_array)
    flat, treedef = jax.tree_util.tree_flatten(params)

    def f(xs):
        t = eqx.combine(jax.tree_util.tree_unflatten(treedef, list(xs)), static)
        r = diffhw.evaluate(hbf.replace(tiers=(t,)), ds, wl, par)
        return jnp.stack([r.tpot_s, r.ttft_s, r.tiers.lifetime_s[1], r.memory_margin])

    x0 = [jnp.asarray(x, dtype=jnp.float64) for x in flat]
    jac = jax.jit(jax.jacrev(f))(x0)
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


# ---------------------------------------------------------------- HBF write path and buffer
def _kv_in_hbf(hbf, buffered=1.0, granularity=None):
    t = eqx.tree_at(lambda x: x.buffered_append_fraction, hbf.tiers[0], jnp.asarray(buffered))
    if granularity is not None:
        t = eqx.tree_at(lambda x: x.granularity_bytes, t, jnp.asarray(granularity))
    return hbf.replace(tiers=(t,), placement=_memory.placement(2, weights=[0.0, 1.0], kv_cache=[0.0, 1.0],
                                                                context=[0.0, 1.0]))


def test_write_amplification_of_the_write_path(hbf):
    """Unbuffered appends program a whole page each (4096 / 576 = 7.1x); buffered ones
    are programmed once; the policy is linear in between; big writes see ~1 either way."""
    t0 = eqx.tree_at(lambda x: x.buffered_append_fraction, hbf.tiers[0], jnp.asarray(0.0))
    t1 = hbf.tiers[0]
    assert float(t1.buffered_append_fraction) == 1.0  # the preset's write path: buffered
    assert float(diffhw.write_amplification(t0, 576.0)) == pytest.approx(4096 / 576, rel=1e-3)
    assert float(diffhw.write_amplification(t1, 576.0)) == 1.0
    half = eqx.tree_at(lambda x: x.buffered_append_fraction, t1, jnp.asarray(0.5))
    assert float(diffhw.write_amplification(half, 576.0)) == pytest.approx((1 + 4096 / 576) / 2, rel=1e-3)
    assert float(diffhw.write_amplification(t0, 8192 * 576.0)) == pytest.approx(1.0, abs=1e-6)
    g = jax.grad(lambda f: diffhw.write_amplification(
        eqx.tree_at(lambda x: x.buffered_append_fraction, t1, f), 576.0))(jnp.asarray(0.5))
    assert float(g) == pytest.approx(1 - 4096 / 576, rel=1e-3)


def test_buffered_appends_multiply_the_kv_lifetime(hbf, ds):
    """Decode's appends carry the page amplification only when unbuffered; Prefill's
    whole-prompt writes never do. Buffered = as if the tier had no page at all."""
    buf = _run(_kv_in_hbf(hbf, 1.0), ds, batch=64, shared=100_000).tiers
    unbuf = _run(_kv_in_hbf(hbf, 0.0), ds, batch=64, shared=100_000).tiers
    nopage = _run(_kv_in_hbf(hbf, 0.0, granularity=1.0), ds, batch=64, shared=100_000).tiers
    assert float(buf.write_bytes_per_s[1]) == pytest.approx(float(nopage.write_bytes_per_s[1]), rel=2e-3)
    # Prefill-only traffic (one output token: no Decode appends) is the same under both policies
    wl1 = diffhw.workload(64, 8192, 1, "fp8")
    par = diffhw.parallelism(tp=8, ep=8)
    p0 = diffhw.evaluate(_kv_in_hbf(hbf, 0.0), ds, wl1, par).tiers
    p1 = diffhw.evaluate(_kv_in_hbf(hbf, 1.0), ds, wl1, par).tiers
    assert float(p0.write_bytes_per_s[1]) == pytest.approx(float(p1.write_bytes_per_s[1]), rel=1e-6)
    assert float(p1.write_bytes_per_s[1]) > 0
    # unbuffered: appends x 7.1, bulk x 1 -> lifetime ratio between 1 and 7.1 (31.6 vs 18.8 years)
    ratio = float(buf.lifetime_s[1] / unbuf.lifetime_s[1])
    assert 1.2 < ratio < 4096 / 576
    assert float(buf.lifetime_s[1]) / YEAR == pytest.approx(31.6, rel=0.05)
    assert float(unbuf.lifetime_s[1]) / YEAR == pytest.approx(18.8, rel=0.05)
    # the appends' share: with A appends and B bulk bytes/s, unbuffered programs A x amp + B
    amp = 4096 / 576
    appends = (float(unbuf.write_bytes_per_s[1]) - float(buf.write_bytes_per_s[1])) / (amp - 1)
    bulk = float(buf.write_bytes_per_s[1]) - appends
    assert 0 < appends < bulk  # 8K prompts, 1K outputs: most KV bytes come from Prefill


def test_lifetime_gradient_in_the_write_path(hbf, ds):
    wl = diffhw.workload(64, 8192, 1024, "fp8")
    par = diffhw.parallelism(tp=8, ep=8)

    def life(f):
        return diffhw.evaluate(_kv_in_hbf(hbf, f), ds, wl, par).tiers.lifetime_s[1] / YEAR

    dlife = jax.jit(jax.grad(life))
    for f in (0.0, 0.5, 1.0):
        g = float(dlife(jnp.asarray(f)))
        assert np.isfinite(g) and g > 0  # more buffering, longer life


def test_tpot_saturates_at_bandwidth_times_latency(hbf, ds):
    """The rule the timing uses is the one `needed_buffer_bytes` states (Little's law):
    TPOT is flat from buffer = BW x latency on, and clearly slower below it."""
    t = hbf.tiers[0]
    need = float(_memory.needed_buffer_bytes(t))
    assert need == pytest.approx(float(t.read_bandwidth_bytes_per_s * t.read_latency_s))

    def tpot(buffer):
        tt = eqx.tree_at(lambda x: x.prefetch_buffer_bytes, t, buffer)
        return _run(hbf.replace(tiers=(tt,)), ds, batch=64, shared=100_000).tpot_s

    flat = float(tpot(jnp.asarray(100 * need)))
    assert float(tpot(jnp.asarray(need))) == pytest.approx(flat, rel=0.01)
    assert float(tpot(jnp.asarray(1.5 * need))) == pytest.approx(flat, rel=1e-4)
    assert float(tpot(jnp.asarray(0.5 * need))) > 1.2 * flat
    assert float(tpot(jnp.asarray(40e6))) == pytest.approx(flat, rel=1e-4)  # H3's 40 MB suffices
    dtpot = jax.jit(jax.grad(tpot))
    g_below, g_above = (float(dtpot(jnp.asarray(k * need))) for k in (0.5, 2.0))
    assert np.isfinite(g_below) and np.isfinite(g_above)
    assert g_below < 0 and abs(g_above) < 1e-3 * abs(g_below)


def test_memory_device_reports_access_figures():
    hbf, hbm = presets.memory_device("HBF"), presets.memory_device("HBM4")
    assert (hbf["granularity_bytes"], hbm["granularity_bytes"]) == (4096.0, 32.0)  # Table 3
    assert hbf["read_latency_ns"] > 10 * hbm["read_latency_ns"] and hbf["endurance_cycles"] == 1e5
    # 64-byte reads: HBF moves a 4096-byte page for each, HBM does not waste
    assert float(diffhw.access_efficiency(64.0, hbf["granularity_bytes"])) == pytest.approx(64 / 4096, rel=1e-3)
    assert float(diffhw.access_efficiency(64.0, hbm["granularity_bytes"])) == pytest.approx(1.0, abs=1e-6)
