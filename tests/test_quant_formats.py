"""Weight-only quantisation formats: bits with their scales, the LM head kept wide, the
dequantising kernel's read efficiency, and that the older precisions are unchanged."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
import diffhw
from diffhw._errors import InputError
from diffhw._workload._operators import shards_for, weight_bytes_per_chip
from diffhw._workload._precision import NAMED_PRECISIONS
from diffhw._workload._workload import precisions

# Bits per weight from the format specifications (see diffhw/_workload/_precision.py).
SPEC_BITS = {
    "q4_0": 18 * 8 / 32,                     # fp16 scale + 32 4-bit codes
    "q4_k": 144 * 8 / 256,                   # block_q4_K: 144 bytes per 256 weights
    "nf4": 4 + 8 / 64 + 32 / (64 * 256),     # QLoRA double quantisation
    "awq": 4 + 16 / 128 + 4 / 128,           # fp16 scale + packed 4-bit zero per 128
    "gptq": 4 + 16 / 128 + 4 / 128,
    "mxfp4": 4 + 8 / 32,                     # OCP MX: E8M0 scale per 32
    "nvfp4": 4 + 8 / 16,                     # E4M3 scale per 16
    "fp8_weight_only": 8.0,
}
OLD = {"fp32": 32, "tf32": 32, "bf16": 16, "fp16": 16, "fp8": 8, "int8": 8, "fp4": 4, "int4": 4}


@pytest.mark.parametrize("name", sorted(SPEC_BITS))
def test_bits_include_scales(name):
    p = diffhw.precision(name)
    assert float(p.bits) == pytest.approx(SPEC_BITS[name])
    assert 0.0 < float(p.read_efficiency) <= 1.0


def test_names_parse_and_bad_name_lists_formats():
    assert diffhw.precision(" Q4_K ").name == "q4_k"
    assert diffhw.precision("fp8-weight-only").name == "fp8_weight_only"
    assert diffhw.precision("AWQ").name == "awq"
    with pytest.raises(InputError) as e:
        diffhw.precision("q5_9")
    assert "q5_9" in str(e.value) and "awq" in str(e.value) and "nf4" in str(e.value)


def test_older_precisions_unchanged():
    for name, bits in OLD.items():
        p = diffhw.precision(name)
        assert float(p.bits) == bits and NAMED_PRECISIONS[name][0] == bits
        assert float(p.head_bytes) == float(p.bytes) and float(p.read_efficiency) == 1.0
    assert diffhw.precision("int4").column == "fp4"  # the int4 tensor path as before


def test_weight_only_sets_weights_with_16bit_activations():
    w, a, kv = precisions("awq")
    assert (w.name, a.name, kv.name) == ("awq", "fp16", "fp16")
    w, a, kv = precisions("q4_0", activation_precision="fp8")
    assert (w.name, a.name, kv.name) == ("q4_0", "fp8", "fp8")
    w, a, kv = precisions("mxfp4")  # block-scaled FP4 is a compute format on Blackwell
    assert (w.name, a.name) == ("mxfp4", "mxfp4")
    w, a, _ = precisions("bf16", weight_precision="gptq")
    assert (w.name, a.name) == ("gptq", "bf16")


def test_head_and_tables_stay_16bit_in_memory(llama70b):
    sh = shards_for(llama70b, 1.0, 1.0)
    p = diffhw.precision("awq")
    got = float(weight_bytes_per_chip(llama70b, sh, 1.0, p.bytes, p.head_bytes))
    tables = float(llama70b.embedding_params())
    layers = float(weight_bytes_per_chip(llama70b, sh, 1.0, 1.0)) - tables  # elements
    assert got == pytest.approx(layers * float(p.bytes) + tables * 2.0, rel=1e-12)
    # same width: bit for bit the old expression
    assert float(weight_bytes_per_chip(llama70b, sh, 1.0, 2.0, jnp.asarray(2.0))) == float(
        weight_bytes_per_chip(llama70b, sh, 1.0, 2.0))


def _as(name, **changes):
    """A named format under one shared label (names are static: one compile for all)."""
    p = diffhw.precision(name)
    fields = {"head_bits": p.head_bits, "read_efficiency": p.read_efficiency, **changes}
    return diffhw.Precision(p.bits, "bf16", "w", **fields)


def _tpot(hw, model, batch, weight):
    wl = diffhw.workload(batch, 1.0, 1.0, weight_precision=weight, activation_precision="bf16")
    return float(diffhw.evaluate(hw, model, wl, diffhw.parallelism()).tpot_s)


def test_read_efficiency_on_paper(h100, llama70b):
    """Batch-1 Decode is weight streaming: the format's layers are read at ``bandwidth *
    bandwidth_efficiency * read_efficiency``, the 16-bit head at the profile's rate."""
    prof = h100.profile
    bw = float(h100.memory_bandwidth_bytes_per_s * prof.bandwidth_efficiency)
    over = float(prof.step_overhead_s + llama70b.n_layers * prof.layer_overhead_s)
    awq = diffhw.precision("awq")
    t1, t_half = (_tpot(h100, llama70b, 1.0, _as("awq", read_efficiency=e)) for e in (1.0, 0.5))
    head = float(llama70b.d_model * llama70b.vocab_size * 2.0)
    layers = float(weight_bytes_per_chip(llama70b, shards_for(llama70b, 1.0, 1.0), 1.0, 1.0)) - float(
        llama70b.embedding_params()) - float(2 * llama70b.d_model * llama70b.n_layers)  # norms are not in step_ops
    assert t1 - over == pytest.approx((layers * float(awq.bytes) + head) / bw, rel=0.02)
    assert t_half - t1 == pytest.approx(layers * float(awq.bytes) / bw, rel=0.02)


def test_batch1_speedup_and_crossover(h100, llama70b):
    """Default profile: NF4's kernel streams no faster than 16-bit weights at batch 1,
    Marlin-class AWQ is ~3x faster; at a compute-bound batch every W4A16 format runs at
    the 16-bit tensor rate, so the speed-up fades (Marlin paper: to ~1x beyond 128)."""
    b16, nf4, awq = (_tpot(h100, llama70b, 1.0, _as(w)) for w in ("bf16", "nf4", "awq"))
    assert nf4 / b16 == pytest.approx(1.0, abs=0.1)
    assert 0.25 < awq / b16 < 0.45
    big16, bigawq = (_tpot(h100, llama70b, 1024.0, _as(w)) for w in ("bf16", "awq"))
    assert 0.8 < bigawq / big16 <= 1.0


def test_gradient_in_read_efficiency_finite(h100, llama70b):
    wl = diffhw.workload(1.0, 1.0, 1.0, weight_precision=_as("nf4"), activation_precision="bf16")

    def f(eff):
        w = eqx.tree_at(lambda x: x.weight_precision.read_efficiency, wl, eff)
        return diffhw.evaluate(h100, llama70b, w, diffhw.parallelism()).tpot_s

    g = jax.jit(jax.grad(f))(jnp.asarray(0.25))
    assert jnp.isfinite(g) and g < 0.0


def test_bad_read_efficiency_rejected(h100, llama70b):
    wl = diffhw.workload(1.0, 1.0, 1.0, weight_precision=diffhw.Precision(4.0, "bf16", "x", 0.0, 0.0))
    with pytest.raises(Exception, match="read_efficiency"):
        diffhw.evaluate(h100, llama70b, wl, diffhw.parallelism())


def test_cli_accepts_formats(_cli):
    import json

    r = _cli("evaluate", "--model", "llama-3.1-70b", "--precision", "awq", "--batch", "1", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["weight_precision"], d["activation_precision"], d["kv_precision"]) == ("awq", "fp16", "fp16")
    r = _cli("evaluate", "--model", "llama-3.1-70b", "--weight-precision", "q4_9", "--json")
    assert r.returncode == 2 and "q4_9" in r.stderr
