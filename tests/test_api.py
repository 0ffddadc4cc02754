import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw import presets


def test_every_hardware_preset_loads_and_evaluates():
    names = presets.list_hardware()
    required = {"a100-sxm-80gb", "h100-sxm", "h100-pcie", "h200-sxm", "b200", "gb200", "b300", "mi300x",
                "mi325x", "mi355x", "tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e", "tpu-v7", "l4", "l40s",
                "rtx-4090", "apple-m1-max", "apple-m2-ultra", "apple-m3-max", "snapdragon-8-gen-3",
                "groq-lpu", "cerebras-wse-3"}
    assert required <= set(names)
    m = presets.model("llama-3.1-8b")
    wl = diffhw.workload(1, 512, 64)
    for n in names:
        hw = presets.hardware(n)
        assert float(hw.flop_per_s_bf16) > 0 and float(hw.memory_bandwidth_bytes_per_s) > 0
        r = diffhw.evaluate(hw, m, wl, diffhw.parallelism(), technology=presets.technology_for(n))
        assert np.isfinite(float(r.tpot_s)) and float(r.tpot_s) > 0, n
        for k in ("energy_per_token_j", "average_power_w", "peak_power_w", "chip_area_mm2", "chip_cost_usd",
                  "usd_per_million_tokens", "kgco2e_per_million_tokens", "tokens_per_s_per_watt"):
            assert np.isfinite(float(getattr(r.economics, k))), (n, k)


def test_precision_fallbacks():
    a100 = presets.hardware("a100-sxm-80gb")  # no FP8: runs at the BF16 rate
    assert float(a100.peak_flop_per_s(diffhw.precision("fp8"))) == float(a100.flop_per_s_bf16)
    h100 = presets.hardware("h100-sxm")
    assert float(h100.peak_flop_per_s(diffhw.precision("fp8"))) == pytest.approx(1978.9e12)
    # a custom width interpolates in log2(bits) between the named columns
    p12 = float(h100.peak_flop_per_s(diffhw.precision(12.0)))
    assert 989.4e12 < p12 < 1978.9e12
    assert float(diffhw.precision("q4_0").bits) == 4.5


def test_one_trace_per_entry_point():
    hw = presets.hardware("h100-sxm")
    m = presets.model("llama-3.1-70b")
    par = diffhw.parallelism(tp=8)
    before = eqx.debug.get_num_traces(diffhw._evaluation._evaluate._evaluate_jit)
    for b, bw in [(1, 3.35e12), (7, 2e12), (64, 4e12)]:
        diffhw.evaluate(hw.replace(memory_bandwidth_bytes_per_s=bw), m, diffhw.workload(b, 1000 + b, 10), par)
    diffhw.evaluate(hw, m, diffhw.workload(3, 100, 10), diffhw.parallelism(tp=4, dp=2))
    assert eqx.debug.get_num_traces(diffhw._evaluation._evaluate._evaluate_jit) - before <= 1
    before = eqx.debug.get_num_traces(diffhw._evaluation._evaluate._max_throughput_jit)
    for slo in (0.02, 0.05):
        diffhw.max_throughput(hw, m, diffhw.workload(1, 2048, 256), par, tpot_limit_s=slo)
    assert eqx.debug.get_num_traces(diffhw._evaluation._evaluate._max_throughput_jit) - before <= 1


def test_vmap_matches_loop():
    hw = presets.hardware("h100-sxm")
    m = presets.model("llama-3.1-8b")
    wl = diffhw.workload(16, 1024, 128)
    par = diffhw.parallelism()
    bws = jnp.linspace(1e12, 8e12, 5)
    flops = jnp.linspace(200e12, 2000e12, 5)

    def one(bw, fl):
        h = hw.replace(memory_bandwidth_bytes_per_s=bw, flop_per_s_bf16=fl)
        return diffhw.evaluate(h, m, wl, par).tpot_s

    batched = jax.vmap(one)(bws, flops)
    looped = jnp.stack([one(b, f) for b, f in zip(bws, flops)])
    np.testing.assert_allclose(batched, looped, rtol=1e-12)


def test_max_throughput_matches_brute_force():
    hw = presets.hardware("h100-sxm")
    m = presets.model("llama-3.1-70b")
    par = diffhw.parallelism(tp=8)
    wl = diffhw.workload(1, 2048, 256)
    limit = 0.03
    r = diffhw.max_throughput(hw, m, wl, par, tpot_limit_s=limit)
    assert bool(r.feasible)
    best, best_b = -1.0, None
    max_b = int(diffhw.evaluate(hw, m, wl, par).max_batch)
    for b in range(1, max_b + 1):
        x = diffhw.evaluate(hw, m, diffhw.workload(b, 2048, 256), par)
        if float(x.tpot_s) <= limit and bool(x.fits) and float(x.output_tokens_per_s) > best:
            best, best_b = float(x.output_tokens_per_s), b
    assert float(r.metrics.output_tokens_per_s) >= best * (1 - 1e-3)
    assert abs(int(r.batch) - best_b) <= 2
    assert float(r.metrics.tpot_s) <= limit


def test_max_throughput_infeasible_reports_it():
    hw = presets.hardware("h100-sxm")
    m = presets.model("llama-3.1-70b")
    r = diffhw.max_throughput(hw, m, diffhw.workload(1, 2048, 256), diffhw.parallelism(tp=8), tpot_limit_s=1e-4)
    assert not bool(r.feasible) and float(r.batch) == 0.0


def test_max_batch_is_the_fit_boundary():
    hw = presets.hardware("h100-sxm")
    m = presets.model("llama-3.1-70b")
    par = diffhw.parallelism(tp=8)
    mb = int(diffhw.evaluate(hw, m, diffhw.workload(1, 4096, 512), par).max_batch)
    assert bool(diffhw.evaluate(hw, m, diffhw.workload(mb, 4096, 512), par).fits)
    assert not bool(diffhw.evaluate(hw, m, diffhw.workload(mb + 1, 4096, 512), par).fits)


def test_traced_bad_values_raise():
    hw = presets.hardware("h100-sxm")
    m = presets.model("llama-3.1-8b")
    with pytest.raises(Exception, match="memory_bandwidth_bytes_per_s"):
        diffhw.evaluate(hw.replace(memory_bandwidth_bytes_per_s=-1.0), m, diffhw.workload(1, 10, 10),
                        diffhw.parallelism())
    with pytest.raises(Exception, match="bandwidth_efficiency"):
        prof = eqx.tree_at(lambda p: p.bandwidth_efficiency, hw.profile, jnp.asarray(1.5))
        diffhw.evaluate(hw.replace(profile=prof), m, diffhw.workload(1, 10, 10), diffhw.parallelism())


def test_validate_parallelism_errors():
    m = presets.model("deepseek-v3")
    diffhw.validate_parallelism(m, diffhw.parallelism(tp=8, ep=8))
    diffhw.validate_parallelism(m, diffhw.parallelism(tp=8, dp=4, ep=32))
    with pytest.raises(diffhw.InputError, match="ep"):
        diffhw.validate_parallelism(m, diffhw.parallelism(tp=8, ep=16))  # spans no replicas
    with pytest.raises(diffhw.InputError, match="pp"):
        diffhw.validate_parallelism(m, diffhw.parallelism(pp=100))
    with pytest.raises(diffhw.InputError, match="whole number"):
        diffhw.validate_parallelism(m, diffhw.parallelism(tp=2.5))


def test_concrete_bad_values_are_input_errors_naming_the_field():
    """Concrete values are checked by the compiled program's returned flags (no host
    callback inside it), and raise `InputError` with the field, value and range."""
    hw = presets.hardware("h100-sxm")
    m = presets.model("llama-3.1-8b")
    with pytest.raises(diffhw.InputError, match=r"hardware.memory_bandwidth_bytes_per_s = -1.0 .*> 0"):
        diffhw.evaluate(hw.replace(memory_bandwidth_bytes_per_s=-1.0), m, diffhw.workload(1, 10, 10),
                        diffhw.parallelism())
    nan_batch = eqx.tree_at(lambda w: w.batch, diffhw.workload(1, 10, 10), jnp.asarray(float("nan")))
    with pytest.raises(diffhw.InputError, match="workload.batch = nan"):
        diffhw.evaluate(hw, m, nan_batch, diffhw.parallelism())
    bad_eff = eqx.tree_at(lambda p: p.bandwidth_efficiency, hw.profile, jnp.asarray(1.5))
    with pytest.raises(diffhw.InputError, match="hardware.profile.bandwidth_efficiency = 1.5 .*in \\(0, 1\\]"):
        diffhw.max_throughput(hw.replace(profile=bad_eff), m, diffhw.workload(1, 10, 10), diffhw.parallelism())


def test_size_checks_every_variable_bound_before_it_searches():
    d = diffhw.from_presets("h100-sxm", "llama-3.1-8b", chips=1, batch=8)
    with pytest.raises(diffhw.InputError, match=r"hardware.profile.bandwidth_efficiency = 1.5"):
        diffhw.size(d, [diffhw.variable("hardware.profile.bandwidth_efficiency", 0.5, 1.5)])
