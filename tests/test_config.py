"""Loading hardware, profiles and Hugging Face configs, and their error messages."""

import json

import pytest

import diffhw
from diffhw import presets
from diffhw._io._files import DATA


def test_llama4_layer_pattern():
    m = presets.model("llama-4-maverick")
    groups = {(s, moe): c for s, moe, c in m.layer_groups}
    # MoE every other layer; chunked (8192-token) attention on 3 of every 4 layers.
    assert m.n_moe_layers == 24 and m.n_shared_experts == 1
    assert sum(c for (s, _), c in groups.items() if s) == 36
    assert float(m.sliding_window) == 8192


def test_gpt_oss_and_deepseek_structure():
    g = presets.model("gpt-oss-120b")
    assert g.n_experts == 128 and g.experts_per_token == 4 and float(g.sliding_window) == 128
    d = presets.model("deepseek-v3")
    assert d.n_dense_layers == 3 and d.n_moe_layers == 58 and d.n_shared_experts == 1
    assert float(d.q_lora_rank) == 1536 and float(d.kv_lora_rank) == 512


def _write(tmp_path, cfg):
    f = tmp_path / "config.json"
    f.write_text(json.dumps(cfg))
    return str(f)


def test_deepseek_v2_lite_without_q_lora(tmp_path):
    cfg = {"model_type": "deepseek_v2", "hidden_size": 2048, "num_hidden_layers": 27,
           "num_attention_heads": 16, "num_key_value_heads": 16, "intermediate_size": 10944,
           "moe_intermediate_size": 1408, "n_routed_experts": 64, "n_shared_experts": 2,
           "num_experts_per_tok": 6, "first_k_dense_replace": 1, "moe_layer_freq": 1,
           "kv_lora_rank": 512, "q_lora_rank": None, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
           "v_head_dim": 128, "vocab_size": 102400, "tie_word_embeddings": False}
    m = presets.model(_write(tmp_path, cfg))
    assert m.mla and float(m.q_lora_rank) == 0
    assert float(m.total_params()) / 1e9 == pytest.approx(15.7, rel=0.02)  # DeepSeek-V2-Lite: 15.7B


def test_gemma3_pattern_and_qwen_moe_shared_expert(tmp_path):
    g3 = {"model_type": "gemma3_text", "hidden_size": 2560, "num_hidden_layers": 34,
          "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
          "intermediate_size": 10240, "vocab_size": 262208, "sliding_window": 1024,
          "sliding_window_pattern": 6}
    m = presets.model(_write(tmp_path, g3))
    assert sum(c for s, _, c in m.layer_groups if s) == 34 - 5  # 5 local : 1 global
    assert m.tied_embeddings
    q = {"model_type": "qwen2_moe", "hidden_size": 2048, "num_hidden_layers": 24,
         "num_attention_heads": 16, "num_key_value_heads": 16, "intermediate_size": 5632,
         "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632, "num_experts": 60,
         "num_experts_per_tok": 4, "decoder_sparse_step": 1, "vocab_size": 151936,
         "tie_word_embeddings": False}
    m = presets.model(_write(tmp_path, q))
    assert m.n_shared_experts == 1 and float(m.shared_expert_ffn_dim) == 5632
    assert float(m.total_params()) / 1e9 == pytest.approx(14.3, rel=0.02)  # Qwen1.5-MoE-A2.7B
    assert float(m.active_params()) / 1e9 == pytest.approx(2.7, rel=0.1)


@pytest.mark.parametrize(
    "cfg, field",
    [
        ({"hidden_size": 4096, "num_attention_heads": 32, "vocab_size": 10}, "num_hidden_layers"),
        ({"hidden_size": -1, "num_hidden_layers": 2, "num_attention_heads": 32, "vocab_size": 10}, "hidden_size"),
        ({"hidden_size": 4096, "num_hidden_layers": 2.5, "num_attention_heads": 32, "vocab_size": 10},
         "num_hidden_layers"),
        ({"hidden_size": 4096, "num_hidden_layers": 2, "num_attention_heads": 32, "vocab_size": "x"}, "vocab_size"),
        ({"hidden_size": 4096, "num_hidden_layers": 2, "num_attention_heads": 32, "vocab_size": 10,
          "num_local_experts": 8, "num_experts_per_tok": 9}, "num_experts_per_tok"),
    ],
)
def test_bad_hf_configs_name_the_key(tmp_path, cfg, field):
    with pytest.raises(diffhw.InputError, match=field):
        presets.model(_write(tmp_path, cfg))


def test_profiles_load_and_swap():
    assert set(presets.list_profiles()) >= {"default", "splitwise-2023"}
    hw = presets.hardware("h100-sxm", profile="splitwise-2023")
    assert hw.profile.name == "splitwise-2023"
    base = presets.hardware("h100-sxm")
    m = presets.model("llama-2-70b")
    wl = diffhw.workload(1, 512, 128)
    par = diffhw.parallelism(tp=8)
    slow = float(diffhw.evaluate(hw, m, wl, par).tpot_s)
    fast = float(diffhw.evaluate(base, m, wl, par).tpot_s)
    assert slow > 1.5 * fast  # the 2023 stack's overheads dominate at batch 1


def test_hardware_file_can_name_a_profile_and_user_profile_file(tmp_path):
    prof = tmp_path / "mystack.toml"
    text = (DATA / "profiles" / "default.toml").read_text()
    prof.write_text(text.replace('name = "default"', 'name = "mystack"').replace(
        "step_overhead_s = 0.003", "step_overhead_s = 0.010"))
    hw = presets.hardware("h100-sxm", profile=str(prof))
    assert hw.profile.name == "mystack" and float(hw.profile.step_overhead_s) == 0.010
    chip = tmp_path / "chip.toml"
    chip.write_text(f'name = "chip"\nprofile = "{prof}"\n[compute]\nbf16_tflops = 100\n'
                    "[memory]\ncapacity_gb = 16\nbandwidth_tb_s = 1\n[network]\nlink_bandwidth_gb_s = 50\n")
    assert presets.hardware(str(chip)).profile.name == "mystack"
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("bandwidth_efficiency = 0.85", "bandwidth_efficiency = 1.5"))
    with pytest.raises(diffhw.InputError, match="bandwidth_efficiency = 1.5"):
        presets.profile(str(bad))
    # collective_step_latency_s and sequence_overhead_s are optional (profiles written
    # before they existed load with 0) and must be >= 0 when given
    old = tmp_path / "old.toml"
    old.write_text("\n".join(l for l in text.splitlines()
                             if not l.startswith(("collective_step_latency_s", "sequence_overhead_s"))))
    assert float(presets.profile(str(old)).collective_step_latency_s) == 0.0
    assert float(presets.profile(str(old)).sequence_overhead_s) == 0.0
    neg = tmp_path / "neg.toml"
    neg.write_text(text.replace("collective_step_latency_s = 0.0", "collective_step_latency_s = -1e-6"))
    with pytest.raises(diffhw.InputError, match="collective_step_latency_s"):
        presets.profile(str(neg))


def test_every_hardware_number_has_a_source():
    """Every numeric line of a shipped hardware or profile file carries a comment."""
    import re

    root = DATA
    for f in list((root / "hardware").iterdir()) + list((root / "profiles").iterdir()):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if re.match(r"^\s*[a-z0-9_]+\s*=\s*[-0-9.e]+\s*(#.*)?$", line) and "default_chips" not in line:
                assert "#" in line, f"{f.name}:{i} has no source: {line}"
