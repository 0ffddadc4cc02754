"""Per-format compute efficiency and engine limits in the calibration `Profile` (issue 16)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
from conftest import ideal_profile, tiny_model

import diffhw
from diffhw._errors import InputError


@pytest.fixture(scope="module")
def b200():
    return diffhw.presets.hardware("b200")


def _ideal(hw, **overrides):
    return hw.replace(link_bandwidth_bytes_per_s=1e30, link_latency_s=0.0, message_latency_s=0.0,
                      profile=ideal_profile(**overrides))


def test_profile_defaults_change_nothing():
    p = ideal_profile()
    assert float(p.fp8_compute_ratio) == float(p.fp4_compute_ratio) == float(p.int8_compute_ratio) == 1.0
    assert float(p.max_batch_size) == 1e9
    assert float(p.precision_ratio("bf16")) == float(p.precision_ratio("fp32")) == 1.0
    # the engine limit is the smaller of the batch cap and the token budget
    assert float(ideal_profile(max_batch_size=64, max_batched_tokens=32).engine_batch_limit()) == 32.0
    assert float(ideal_profile(max_batch_size=64, max_batched_tokens=8192).engine_batch_limit()) == 64.0


def test_matmul_peak_per_format(b200):
    hw = _ideal(b200, fp8_compute_ratio=0.9, fp4_compute_ratio=0.5, int8_compute_ratio=0.8)
    for name, ratio, col in (("bf16", 1.0, "bf16"), ("fp16", 1.0, "bf16"), ("fp8", 0.9, "fp8"),
                             ("fp4", 0.5, "fp4"), ("int8", 0.8, "int8")):
        p = diffhw.precision(name)
        got = float(hw.matmul_flop_per_s(p, tau=0))
        assert got == pytest.approx(ratio * float(getattr(hw, f"flop_per_s_{col}"))), name
        assert float(hw.peak_flop_per_s(p)) == float(getattr(hw, f"flop_per_s_{col}"))  # the peak is unchanged
    # a custom width interpolates peak x ratio in log2(bits): 6 bits lies halfway (in log2) between
    # fp4 and fp8 only at log2(6) - 2 = 0.585 of the way
    six = float(hw.matmul_flop_per_s(diffhw.precision(6.0), tau=0))
    lo, hi = 0.5 * float(hw.flop_per_s_fp4), 0.9 * float(hw.flop_per_s_fp8)
    t = float(jnp.log2(6.0)) - 2.0
    assert six == pytest.approx(float(jnp.exp((1 - t) * jnp.log(lo) + t * jnp.log(hi))), rel=1e-6)
    # with every ratio 1 it is the datasheet peak
    one = _ideal(b200)
    assert float(one.matmul_flop_per_s(diffhw.precision(6.0))) == pytest.approx(
        float(one.peak_flop_per_s(diffhw.precision(6.0))), rel=1e-9)


def test_a_format_never_runs_slower_than_the_wider_one(b200):
    """A format's share applies to its own tensor cores: on a chip without them (its column
    holds the wider format's peak, as the loaders set it) it runs at the wider format's rate,
    and a share so low that the native path loses falls back too (`matmul_flop_per_s`)."""
    shares = dict(fp8_compute_ratio=0.88, fp4_compute_ratio=0.61, int8_compute_ratio=0.88)
    a100 = _ideal(diffhw.presets.hardware("a100-sxm-80gb"), **shares)  # no FP8, no FP4
    h100 = _ideal(diffhw.presets.hardware("h100-sxm"), **shares)  # FP8, no FP4
    rate = lambda hw, name, tau=0: float(hw.matmul_flop_per_s(diffhw.precision(name), tau=tau))
    assert rate(a100, "fp8") == pytest.approx(rate(a100, "bf16"), rel=1e-12)
    assert rate(a100, "fp4") == pytest.approx(rate(a100, "bf16"), rel=1e-12)
    assert rate(h100, "fp8") == pytest.approx(0.88 * float(h100.flop_per_s_fp8))
    assert rate(h100, "fp4") == pytest.approx(rate(h100, "fp8"), rel=1e-12)
    assert rate(h100, "int8") == pytest.approx(0.88 * float(h100.flop_per_s_int8))
    # on B200 FP4 at a share of 0.3 would be slower than FP8 at 0.88: FP8's rate
    slow = _ideal(b200, fp8_compute_ratio=0.88, fp4_compute_ratio=0.3)
    assert rate(slow, "fp4") == pytest.approx(0.88 * float(b200.flop_per_s_fp8))
    # smooth under grad, within 2**tau of the hard chain (tau = 0.02: 1.4% at a tie)
    for hw in (a100, h100, slow):
        for name in ("fp8", "fp4", "int8", 6.0):
            hard, soft = rate(hw, name), rate(hw, name, tau=0.02)
            assert hard <= soft <= hard * 2 ** 0.02 * (1 + 1e-6), (hw.name, name)


def test_fp4_ratio_scales_compute_bound_prefill(b200):
    """Prefill of 4096 tokens is compute bound: halving the fp4 share doubles its compute time,
    and the same ratio leaves a bf16 run alone."""
    m = tiny_model()
    par = diffhw.parallelism()
    out = {}
    for prec in ("fp4", "bf16"):
        wl = diffhw.workload(1, 4096, 1, prec)
        for r in (1.0, 0.5):
            res = diffhw.evaluate(_ideal(b200, fp4_compute_ratio=r), m, wl, par, tau=1e-4)
            out[prec, r] = float(res.prefill.compute_s)
    assert out["fp4", 0.5] == pytest.approx(2.0 * out["fp4", 1.0], rel=1e-3)
    assert out["bf16", 0.5] == pytest.approx(out["bf16", 1.0], rel=1e-9)


def test_ratio_gradient_is_finite(b200):
    hw = _ideal(b200)

    def peak(r):
        h = eqx.tree_at(lambda h: h.profile.fp4_compute_ratio, hw, r)
        return jnp.log(h.matmul_flop_per_s(diffhw.precision(5.0)))

    g = jax.grad(peak)(jnp.asarray(0.6))
    assert bool(jnp.isfinite(g)) and float(g) > 0.0


def test_shipped_profiles_state_the_new_keys():
    for name in diffhw.presets.list_profiles():
        p = diffhw.presets.profile(name)
        for k in ("fp8_compute_ratio", "fp4_compute_ratio", "int8_compute_ratio", "max_batch_size"):
            assert float(getattr(p, k)) > 0, (name, k)
    d = diffhw.presets.profile("default")
    assert float(d.fp4_compute_ratio) < float(d.fp8_compute_ratio) <= 1.0
    assert 256 <= float(d.max_batch_size) <= 2048


@pytest.mark.parametrize("key,value", [
    ("fp4_compute_ratio", 0.0), ("fp8_compute_ratio", -1.0), ("int8_compute_ratio", 5.0),
    ("max_batch_size", 0.5), ("max_batch_size", float("nan")), ("fp4_compute_ratio", "fast"),
    ("moe_efficiency", 0.0), ("moe_efficiency", 1.5), ("moe_exposed_fraction", -0.1),
    ("moe_exposed_fraction", 2.0), ("moe_efficiency", "fast"),
])
def test_loader_refuses_bad_values(key, value):
    with pytest.raises(InputError) as e:
        diffhw.presets.profile("default", {key: value})
    assert key in str(e.value)


def test_loader_reads_overrides():
    p = diffhw.presets.profile("default", {"fp4_compute_ratio": 0.7, "max_batch_size": 256})
    assert float(p.fp4_compute_ratio) == pytest.approx(0.7)
    assert float(p.max_batch_size) == 256.0


def test_max_throughput_stays_within_engine_limit(b200):
    """Without a cap the memory-bound search runs thousands of sequences of a tiny model; the
    engine's limit caps it per data-parallel replica (max_batch_size, or the token budget)."""
    m = tiny_model()
    wl = diffhw.workload(1, 128, 128, "fp8")
    # a chunked Prefill (8192 tokens): the ideal profile's unchunked 1e9-token chunk leaves no memory
    free = diffhw.max_throughput(_ideal(b200, max_batched_tokens=8192), m, wl, diffhw.parallelism())
    assert float(free.batch) > 1000
    capped = diffhw.max_throughput(_ideal(b200, max_batch_size=64, max_batched_tokens=8192), m, wl,
                                   diffhw.parallelism())
    assert 1 <= float(capped.batch) <= 64 and bool(capped.feasible)
    tokens = diffhw.max_throughput(_ideal(b200, max_batched_tokens=48), m, wl, diffhw.parallelism())
    assert float(tokens.batch) <= 48
    two = diffhw.max_throughput(_ideal(b200, max_batch_size=64, max_batched_tokens=8192), m, wl,
                                diffhw.parallelism(dp=2))
    assert 64 < float(two.batch) <= 128
    assert float(capped.metrics.output_tokens_per_s) < float(free.metrics.output_tokens_per_s)


def test_matmul_efficiency_scales_the_chip_matrix_rate(b200):
    """A chip's measured matmul share (Hardware.matmul_efficiency) scales its matrix rate by
    its ratio to the reference part's; the reference value (and a chip without a
    measurement) changes nothing; memory-bound decode is untouched."""
    from diffhw._hardware._hardware import REFERENCE_MATMUL_EFFICIENCY

    h100, a100 = diffhw.presets.hardware("h100-sxm"), diffhw.presets.hardware("a100-sxm-80gb")
    assert float(b200.matmul_efficiency) == pytest.approx(REFERENCE_MATMUL_EFFICIENCY)  # not measured
    assert float(h100.matmul_efficiency) == pytest.approx(REFERENCE_MATMUL_EFFICIENCY)  # the reference
    bf16 = diffhw.precision("bf16")
    assert float(a100.matmul_flop_per_s(bf16)) == pytest.approx(
        float(a100.flop_per_s_bf16) * 0.869 / REFERENCE_MATMUL_EFFICIENCY, rel=1e-6)
    m, par = tiny_model(), diffhw.parallelism()
    hw = _ideal(b200)
    slow = hw.replace(matmul_efficiency=REFERENCE_MATMUL_EFFICIENCY / 2)
    prefill, decode = diffhw.workload(1, 4096, 1, "bf16"), diffhw.workload(1, 128, 64, "bf16")
    t = lambda h, wl, part: float(getattr(diffhw.evaluate(h, m, wl, par, tau=1e-4), part).compute_s)
    assert t(slow, prefill, "prefill") == pytest.approx(2.0 * t(hw, prefill, "prefill"), rel=1e-3)
    mem = lambda h: float(diffhw.evaluate(h, m, decode, par, tau=1e-4).decode.memory_s)
    assert mem(slow) == mem(hw)
    g = jax.grad(lambda e: diffhw.evaluate(hw.replace(matmul_efficiency=e), m, prefill, par).ttft_s)(0.6)
    assert bool(jnp.isfinite(g)) and float(g) < 0.0
    with pytest.raises(InputError, match="matmul_efficiency"):
        diffhw.evaluate(hw.replace(matmul_efficiency=1.5), m, prefill, par)
