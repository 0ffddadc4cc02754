import jax.numpy as jnp
import pytest

import diffhw
from diffhw import presets

# Published parameter counts (billions): model cards and papers.
KNOWN_TOTAL = {
    "gpt-j-6b": 6.05,
    "llama-2-7b": 6.74,
    "llama-2-13b": 13.0,
    "llama-2-70b": 69.0,
    "llama-3-8b": 8.03,
    "llama-3.1-70b": 70.6,
    "llama-3.1-405b": 405.9,
    "mixtral-8x7b": 46.7,
    "mixtral-8x22b": 140.6,
    "qwen2.5-7b": 7.62,
    "qwen3-30b-a3b": 30.5,
    "qwen3-235b-a22b": 235.1,
    "deepseek-v3": 671.0,
    "llama-4-maverick": 400.7,
    "gpt-oss-120b": 116.8,
    "bloom-176b": 176.2,
}
KNOWN_ACTIVE = {"mixtral-8x7b": 12.9, "qwen3-30b-a3b": 3.3, "qwen3-235b-a22b": 22.2, "mixtral-8x22b": 39.1}


@pytest.mark.parametrize("name", sorted(KNOWN_TOTAL))
def test_total_params(name):
    m = presets.model(name)
    assert float(m.total_params()) / 1e9 == pytest.approx(KNOWN_TOTAL[name], rel=0.01)


@pytest.mark.parametrize("name", sorted(KNOWN_ACTIVE))
def test_active_params(name):
    m = presets.model(name)
    assert float(m.active_params()) / 1e9 == pytest.approx(KNOWN_ACTIVE[name], rel=0.02)


def test_every_model_preset_loads():
    names = presets.list_models()
    assert len(names) >= 20
    for n in names:
        m = presets.model(n)
        assert float(m.total_params()) > 0


def test_kv_bytes_gqa_llama70b():
    m = presets.model("llama-3.1-70b")
    # 2 (K, V) x 8 KV heads x 128 dims x 80 layers x 2 bytes
    assert float(m.kv_bytes_per_token(2.0)) == 2 * 8 * 128 * 80 * 2


def test_kv_bytes_mla_deepseek_v3():
    m = presets.model("deepseek-v3")
    # MLA caches the 512-wide latent plus the 64-wide RoPE key, per layer, 61 layers.
    assert m.mla
    assert float(m.kv_bytes_per_token(2.0)) == (512 + 64) * 61 * 2
    # The naive MHA cache would be 2 x 128 heads x 128 dims: 56x more.
    assert 2 * 128 * 128 / (512 + 64) > 50


def test_kv_sliding_window_caps_context():
    m = presets.model("gpt-oss-120b")
    short = float(m.kv_bytes_per_token(1.0, context=100.0))
    long_ = float(m.kv_bytes_per_token(1.0, context=100_000.0))
    # Half of gpt-oss's layers use a 128-token window: at long context their share vanishes.
    assert long_ == pytest.approx(short / 2, rel=0.02)


def test_expected_experts_touched_limits():
    E, k = 256.0, 8.0
    assert float(diffhw.expected_experts_touched(E, k, 1.0)) == pytest.approx(k)
    assert float(diffhw.expected_experts_touched(E, k, 1e5)) == pytest.approx(E)
    # Exact expectation for 2 tokens: E * (1 - (1 - k/E)^2)
    assert float(diffhw.expected_experts_touched(E, k, 2.0)) == pytest.approx(E * (1 - (1 - k / E) ** 2))
    # Smooth and increasing in the (continuous) token count.
    ts = jnp.linspace(1.0, 64.0, 50)
    v = diffhw.expected_experts_touched(E, k, ts)
    assert bool(jnp.all(jnp.diff(v) > 0))


def test_moe_weight_reads_follow_touched_experts(h100):
    """Decode weight bytes of a MoE layer grow with batch as experts get touched."""
    m = presets.model("mixtral-8x7b")
    costs = {b: diffhw.workload_costs(m, diffhw.workload(b, 512, 64)) for b in (1, 64)}
    w1 = costs[1]["decode_step"]["model"]["total"]["weight_bytes"]
    w64 = costs[64]["decode_step"]["model"]["total"]["weight_bytes"]
    expert = float(m.expert_params()) * 2 * 32
    # batch 1 touches 2 of 8 experts per layer; batch 64 touches nearly all 8.
    assert w64 - w1 == pytest.approx(expert * (8 * (1 - (6 / 8) ** 64) - 2), rel=1e-6)


def test_workload_costs_per_layer_and_total(llama70b):
    wl = diffhw.workload(1, 1024, 2)
    c = diffhw.workload_costs(llama70b, wl)
    dec = c["decode_step"]["model"]
    # Batch-1 decode reads every weight once, except the input embedding table (a lookup).
    weights = float(llama70b.total_params()) - float(llama70b.vocab_size * llama70b.d_model)
    assert dec["total"]["weight_bytes"] == pytest.approx(2 * weights, rel=1e-3)
    # ~2 FLOPs per weight per token plus attention.
    assert dec["total"]["flops"] == pytest.approx(2 * weights, rel=0.02)
    names = [r["name"] for r in dec["ops"]]
    assert {"attention_proj", "attention_core", "ffn", "lm_head"} <= set(names)
    pre = c["prefill_pass"]["model"]["total"]
    assert pre["flops"] > 900 * dec["total"]["flops"]  # ~1024 tokens vs 1


def test_hf_import_families():
    base = "tests/data/hf_configs/"
    import pathlib

    root = pathlib.Path(__file__).parent / "data" / "hf_configs"
    g = presets.model(str(root / "gemma-2-9b.json"))
    assert g.tied_embeddings and g.gated_ffn
    assert float(g.total_params()) / 1e9 == pytest.approx(9.24, rel=0.01)
    assert sum(c for s, _, c in g.layer_groups if s) == 21  # alternating local / global
    mi = presets.model(str(root / "mistral-7b-v0.1.json"))
    assert float(mi.total_params()) / 1e9 == pytest.approx(7.24, rel=0.01)
    q = presets.model(str(root / "qwen2-0.5b.json"))
    assert float(q.total_params()) / 1e9 == pytest.approx(0.494, rel=0.01)
    assert base  # paths are relative to this file, not the working directory
