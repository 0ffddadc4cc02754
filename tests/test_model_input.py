"""The Hugging Face config.json importer refuses bad input with one InputError naming the
key, and reads the families it lists (Falcon, StarCoder2, ...) right. Loading only: no jit."""

import json
import pathlib
import time

import pytest

from diffhw import presets
from diffhw._errors import InputError
from diffhw._io._files import DATA
from diffhw._io._models import SUPPORTED_FAMILIES, load_model, model_from_hf_config

LLAMA = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
         "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256}
MOE = {**LLAMA, "model_type": "qwen3_moe", "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 768}
DEEPSEEK = {"model_type": "deepseek_v2", "hidden_size": 2048, "num_hidden_layers": 27, "num_attention_heads": 16,
            "intermediate_size": 10944, "moe_intermediate_size": 1408, "n_routed_experts": 64,
            "n_shared_experts": 2, "num_experts_per_tok": 6, "first_k_dense_replace": 1, "moe_layer_freq": 1,
            "kv_lora_rank": 512, "q_lora_rank": None, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
            "v_head_dim": 128, "vocab_size": 102400}
LLAMA4 = {**LLAMA, "model_type": "llama4_text", "num_local_experts": 16, "num_experts_per_tok": 1,
          "interleave_moe_layer_step": 2, "attention_chunk_size": 8192}
GEMMA3 = {**LLAMA, "model_type": "gemma3_text", "head_dim": 256, "sliding_window": 1024}
QWEN2 = {**LLAMA, "model_type": "qwen2", "sliding_window": 4096, "use_sliding_window": True, "max_window_layers": 4}

# Falcon-7B (tiiuae/falcon-7b config.json: multi-query, 71 heads x 64, no FFN key -> 4 x hidden)
FALCON_7B = {"model_type": "falcon", "multi_query": True, "n_head": 71, "hidden_size": 4544, "n_layer": 32,
             "vocab_size": 65024, "new_decoder_architecture": False, "parallel_attn": True, "bias": False}
# Falcon-40B (tiiuae/falcon-40b config.json): the new decoder, 8 KV groups
FALCON_40B = {"model_type": "falcon", "new_decoder_architecture": True, "num_kv_heads": 8, "n_head": 128,
              "hidden_size": 8192, "n_layer": 60, "vocab_size": 65024, "parallel_attn": True}
# StarCoder2-15B (bigcode/starcoder2-15b config.json)
STARCODER2_15B = {"model_type": "starcoder2", "hidden_act": "gelu_pytorch_tanh", "intermediate_size": 24576,
                  "hidden_size": 6144, "num_hidden_layers": 40, "num_attention_heads": 48,
                  "num_key_value_heads": 4, "use_bias": True, "vocab_size": 49152, "sliding_window": 4096,
                  "tie_word_embeddings": False}


def _write(tmp_path, cfg):
    f = tmp_path / "config.json"
    f.write_text(json.dumps(cfg))
    return str(f)


def _refused(tmp_path, cfg, key):
    with pytest.raises(InputError, match=key) as e:
        load_model(_write(tmp_path, cfg))
    assert e.value.field.endswith(f": {key}") or e.value.field.endswith("config.json")
    return e.value


@pytest.mark.parametrize(
    "base, key, value",
    [
        (LLAMA, "hidden_size", "4096"),
        (LLAMA, "hidden_size", [4096]),
        (LLAMA, "hidden_size", {"v": 4096}),
        (LLAMA, "hidden_size", True),
        (LLAMA, "num_hidden_layers", 2.5),
        (LLAMA, "num_attention_heads", "32"),
        (LLAMA, "num_key_value_heads", 1.5),
        (LLAMA, "intermediate_size", "big"),
        (LLAMA, "vocab_size", None),
        (LLAMA, "head_dim", "128"),
        (LLAMA, "tie_word_embeddings", "false"),
        (LLAMA, "tie_word_embeddings", 0),
        (LLAMA, "model_type", 7),
        (LLAMA, "model_type", ["llama"]),
        (LLAMA, "_diffhw", "notes"),
        (LLAMA, "_diffhw", [1]),
        (LLAMA, "text_config", "llama"),
        (LLAMA, "text_config", [1, 2]),
        (LLAMA, "sliding_window", "big"),
        (LLAMA, "sliding_window", True),
        (LLAMA, "sliding_window", -1),
        (LLAMA, "use_sliding_window", "yes"),
        (LLAMA, "layer_types", "sliding_attention"),
        (LLAMA, "layer_types", ["full_attention"] * 31 + [3]),
        (LLAMA, "layer_types", ["full_attention"] * 5),
        (LLAMA, "layer_types", ["linear_attention"] * 32),
        (LLAMA, "_name_or_path", 5),
        (MOE, "num_experts", "8"),
        (MOE, "num_experts_per_tok", [2]),
        (MOE, "moe_intermediate_size", -768),
        (MOE, "decoder_sparse_step", "2"),
        (MOE, "decoder_sparse_step", 0),
        (MOE, "mlp_only_layers", "x"),
        (MOE, "mlp_only_layers", [0, "a"]),
        (MOE, "mlp_only_layers", [0, 1.5]),
        (MOE, "mlp_only_layers", [32]),
        (MOE, "moe_layers", ["a"]),
        (MOE, "moe_layers", 5),
        (MOE, "moe_layers", [-1]),
        (MOE, "moe_layers", [32]),
        (MOE, "moe_layers", [True]),
        (MOE, "moe_layers", list(range(40))),
        (MOE, "shared_expert_intermediate_size", "x"),
        (DEEPSEEK, "first_k_dense_replace", "x"),
        (DEEPSEEK, "first_k_dense_replace", 28),
        (DEEPSEEK, "moe_layer_freq", [1]),
        (DEEPSEEK, "moe_layer_freq", 0),
        (DEEPSEEK, "kv_lora_rank", "512"),
        (DEEPSEEK, "q_lora_rank", "1536"),
        (DEEPSEEK, "qk_rope_head_dim", None),
        (DEEPSEEK, "n_shared_experts", 1.5),
        (LLAMA4, "interleave_moe_layer_step", 0),
        (LLAMA4, "interleave_moe_layer_step", "2"),
        (LLAMA4, "attention_chunk_size", "8k"),
        (LLAMA4, "no_rope_layers", "x"),
        (LLAMA4, "no_rope_layers", [1, 0]),
        (LLAMA4, "no_rope_layers", [2] * 32),
        (LLAMA4, "no_rope_layers", [0.5] * 32),
        (LLAMA4, "no_rope_layer_interval", 0),
        (GEMMA3, "sliding_window_pattern", "x"),
        (GEMMA3, "sliding_window_pattern", 0),
        (QWEN2, "max_window_layers", "x"),
        (QWEN2, "max_window_layers", -2),
        (FALCON_7B, "multi_query", "true"),
        (FALCON_7B, "new_decoder_architecture", 1),
        (FALCON_40B, "num_kv_heads", "8"),
        (FALCON_40B, "num_kv_heads", 7),  # not a divisor of 128 heads
    ],
)
def test_wrong_types_name_the_key(tmp_path, base, key, value):
    _refused(tmp_path, {**base, key: value}, key)


@pytest.mark.parametrize(
    "cfg, key",
    [
        ({**LLAMA, "_diffhw": {"name": 5}}, "_diffhw.name"),
        ({**LLAMA, "_diffhw": {"description": ["x"]}}, "_diffhw.description"),
        ({"model_type": "llama4", "text_config": {**LLAMA, "model_type": 4}}, "model_type"),
        ({"model_type": 4, "text_config": LLAMA}, "model_type"),
        ({"model_type": "llama4", "text_config": {**LLAMA, "hidden_size": "x"}}, "hidden_size"),
        ({**LLAMA, "layer_types": ["sliding_attention"] * 32}, "sliding_window"),  # no window given
    ],
)
def test_nested_and_dependent_keys(tmp_path, cfg, key):
    _refused(tmp_path, cfg, key)


@pytest.mark.parametrize(
    "key, value, bound",
    [
        ("hidden_size", 10**7, "262144"),
        ("num_hidden_layers", 1e9, "10000"),
        ("num_hidden_layers", 10**400, "10000"),
        ("num_attention_heads", 10**6, "65536"),
        ("num_key_value_heads", 10**6, "65536"),
        ("head_dim", 8192, "4096"),
        ("intermediate_size", 10**8, "4e+06"),
        ("vocab_size", 10**9, "1e+08"),
        ("sliding_window", 10**12, "1e+09"),
        ("num_experts", 10**6, "65536"),
        ("moe_intermediate_size", 10**8, "4e+06"),
    ],
)
def test_physical_ranges(tmp_path, key, value, bound):
    e = _refused(tmp_path, {**MOE, key: value}, key)
    assert "physical range" in str(e) and bound in str(e).replace(",", "")


def test_a_billion_layers_is_refused_at_once(tmp_path):
    path = _write(tmp_path, {**LLAMA, "num_hidden_layers": 1e9})
    t = time.perf_counter()
    with pytest.raises(InputError, match="num_hidden_layers"):
        load_model(path)
    assert time.perf_counter() - t < 0.5


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"   \n",
        b"\x00\x01\x02\xff\xfe binary",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "{\"hidden_size\": 4096}".encode("utf-16"),
        b"{\"model_type\": \"llama\", \"name\": \"caf\xe9\"}",  # Latin-1, not UTF-8
        b"{not json",
        b"[1, 2, 3]",
        b"\"a string\"",
        b"null",
        b"[" * 100_000 + b"]" * 100_000,
        b"{\"a\": " * 5000 + b"1" + b"}" * 5000,
        b"{\"vocab_size\": " + b"9" * 10_000 + b"}",
    ],
)
def test_unreadable_files(tmp_path, content):
    f = tmp_path / "config.json"
    f.write_bytes(content)
    with pytest.raises(InputError, match="config.json"):
        load_model(str(f))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
@pytest.mark.parametrize("key", ["hidden_size", "rope_theta"])  # read or not, the file is refused
def test_non_finite_json_numbers(tmp_path, literal, key):
    f = tmp_path / "config.json"
    f.write_text(json.dumps(LLAMA)[:-1] + f', "{key}": {literal}}}')
    with pytest.raises(InputError, match="finite"):
        load_model(str(f))


def test_oversized_file_and_bom(tmp_path):
    f = tmp_path / "config.json"
    f.write_bytes(b"{\"pad\": \"" + b"x" * (17 * 2**20) + b"\"}")
    with pytest.raises(InputError, match="MiB"):
        load_model(str(f))
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps(LLAMA).encode())  # a UTF-8 byte-order mark is fine
    assert load_model(str(f)).n_layers == 32


def test_direct_call_refuses_non_dict():
    for bad in (None, [LLAMA], "config.json", 3):
        with pytest.raises(InputError):
            model_from_hf_config(bad)


@pytest.mark.parametrize("mt", ["mamba", "rwkv", "t5", "bert", "whisper", "xyz", "Mamba2", "jamba", ""])
def test_unknown_families_are_refused_listing_the_supported(tmp_path, mt):
    e = _refused(tmp_path, {**LLAMA, "model_type": mt}, "model_type")
    msg = str(e)
    assert repr(mt) in msg and "llama" in msg and "starcoder2" in msg and "RefinedWeb" in msg
    if mt.lower() in ("mamba", "rwkv", "mamba2", "jamba"):
        assert "state-space" in msg
    if mt in ("t5", "bert", "whisper"):
        assert "encoder" in msg


def test_supported_family_list():
    need = {"llama", "llama4", "llama4_text", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
            "deepseek_v2", "deepseek_v3", "gpt_oss", "gemma", "gemma2", "gemma3", "gemma3_text", "gptj", "bloom",
            "gpt2", "gpt_neox", "opt", "falcon", "RefinedWeb", "RefinedWebModel", "gpt_bigcode", "starcoder2",
            "phi", "phi3"}
    assert need <= set(SUPPORTED_FAMILIES)
    for f in SUPPORTED_FAMILIES:  # every one loads (case-insensitive)
        assert model_from_hf_config({**LLAMA, "model_type": f.upper()}).n_layers == 32


def test_missing_model_type_reads_as_llama():
    m = model_from_hf_config({k: v for k, v in LLAMA.items() if k != "model_type"})
    assert m.gated_ffn and not m.tied_embeddings and m.n_kv_heads == 8


def test_falcon_7b_multi_query(tmp_path):
    m = load_model(_write(tmp_path, FALCON_7B))
    assert m.n_kv_heads == 1 and not m.gated_ffn and m.tied_embeddings and float(m.head_dim) == 64
    assert float(m.ffn_dim) == 4 * 4544
    assert float(m.total_params()) / 1e9 == pytest.approx(6.92, rel=0.01)  # Falcon-7B: 6.92e9
    # the RW-era file (tiiuae/falcon-7b before Transformers 4.33) reads the same
    old = {**FALCON_7B, "model_type": "RefinedWebModel"}
    old.pop("new_decoder_architecture")
    assert load_model(_write(tmp_path, old)).n_kv_heads == 1
    # multi_query defaults to true (FalconConfig); false is full multi-head attention
    assert load_model(_write(tmp_path, {k: v for k, v in FALCON_7B.items() if k != "multi_query"})).n_kv_heads == 1
    assert load_model(_write(tmp_path, {**FALCON_7B, "multi_query": False})).n_kv_heads == 71


def test_falcon_40b_and_180b_grouped(tmp_path):
    m = load_model(_write(tmp_path, FALCON_40B))
    assert m.n_kv_heads == 8 and m.n_heads == 128 and not m.gated_ffn
    assert float(m.total_params()) / 1e9 == pytest.approx(41.3, rel=0.02)
    # RW-era Falcon-40B: model_type RefinedWeb implies the new decoder; n_head_kv names the groups
    old = {"model_type": "RefinedWeb", "n_head": 128, "n_head_kv": 8, "n_layer": 60, "hidden_size": 8192,
           "vocab_size": 65024, "parallel_attn": True}
    assert load_model(_write(tmp_path, old)).n_kv_heads == 8
    f180 = {"model_type": "falcon", "new_decoder_architecture": True, "num_kv_heads": 8,
            "num_attention_heads": 232, "hidden_size": 14848, "num_hidden_layers": 80, "vocab_size": 65024}
    m = load_model(_write(tmp_path, f180))
    assert m.n_kv_heads == 8 and float(m.total_params()) / 1e9 == pytest.approx(180, rel=0.02)


def test_starcoder2_15b_two_matrix_mlp(tmp_path):
    m = load_model(_write(tmp_path, STARCODER2_15B))
    assert not m.gated_ffn and m.n_kv_heads == 4 and not m.tied_embeddings
    assert float(m.total_params()) / 1e9 == pytest.approx(16.0, rel=0.01)  # StarCoder2-15B: 15.96e9
    assert float(m.sliding_window) == 4096 and all(s for s, _, _ in m.layer_groups)


def test_starcoder_gpt_bigcode_and_phi(tmp_path):
    sc = {"model_type": "gpt_bigcode", "n_embd": 6144, "n_layer": 40, "n_head": 48, "n_inner": 24576,
          "multi_query": True, "vocab_size": 49152}
    m = load_model(_write(tmp_path, sc))
    assert m.n_kv_heads == 1 and not m.gated_ffn and m.tied_embeddings
    assert float(m.total_params()) / 1e9 == pytest.approx(15.5, rel=0.01)  # StarCoder: 15.5e9
    phi2 = {"model_type": "phi", "hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": None, "vocab_size": 51200,
            "tie_word_embeddings": False}
    m = load_model(_write(tmp_path, phi2))
    assert not m.gated_ffn and float(m.total_params()) / 1e9 == pytest.approx(2.78, rel=0.01)  # phi-2
    phi3 = {"model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064,
            "tie_word_embeddings": False}
    m = load_model(_write(tmp_path, phi3))
    assert m.gated_ffn and float(m.total_params()) / 1e9 == pytest.approx(3.82, rel=0.01)  # Phi-3-mini


def test_every_shipped_preset_and_fixture_loads():
    files = sorted(pathlib.Path(str(DATA / "models")).glob("*.json"))
    files += sorted((pathlib.Path(__file__).parent / "data" / "hf_configs").glob("*.json"))
    assert len(files) >= 20
    for f in files:
        assert load_model(str(f)).n_layers >= 1
    for name in presets.list_models():
        assert isinstance(presets.model_description(name), str)


def test_the_context_window_is_read_and_left_out_of_the_trace():
    from diffhw import presets
    from diffhw._evaluation._evaluate import _anonymous

    assert presets.model("llama-2-7b").max_context == 4096
    assert presets.model("llama-3.1-70b").max_context == 131072
    assert presets.model("gpt-j-6b").max_context == 2048  # n_positions
    hw = presets.hardware("h100-sxm")
    assert _anonymous(hw, presets.model("llama-3.1-70b"))[1].max_context == 0  # names and context share a trace
