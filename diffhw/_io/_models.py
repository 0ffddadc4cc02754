"""Models: Hugging Face ``config.json`` files (shipped presets or a user's) -> `Transformer`."""

import json
import math
from pathlib import Path

from .._errors import InputError
from .._workload._transformer import Transformer
from ._files import preset_names, resolve

MODEL_ALIASES: dict = {}  # every shipped name has its own file (deepseek-r1 shares deepseek-v3's architecture)
_NON_GATED = {"gptj", "bloom", "gpt2", "gpt_neox", "opt", "falcon", "gpt_bigcode", "phi"}
_TIED_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text", "bloom", "gpt2", "opt"}


def list_models():
    return preset_names("models", ".json")


def load_model(name_or_path) -> Transformer:
    """A `Transformer` from a preset name or a Hugging Face ``config.json`` path.

    Families read: Llama (1-3), Llama 4 (text part), Mistral, Mixtral, Qwen2/2.5,
    Qwen3, Qwen2-MoE, Qwen3-MoE, DeepSeek-V2/V3/R1 (MLA), GPT-OSS, Gemma 1-3, GPT-J,
    BLOOM, and others that use the same key names. No network access.
    """
    path = resolve("models", ".json", name_or_path, MODEL_ALIASES)
    try:
        with open(path) as f:
            cfg = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(str(path), "JSON", f"a valid config.json ({e})") from None
    except OSError as e:
        raise InputError("file", str(path), f"a readable file ({e.strerror})") from None
    if not isinstance(cfg, dict):
        raise InputError(str(path), type(cfg).__name__, "a JSON object")
    return model_from_hf_config(cfg, where=str(path))


def model_description(name):
    path = resolve("models", ".json", name, MODEL_ALIASES)
    with open(path) as f:
        return json.load(f).get("_diffhw", {}).get("description", "")


def model_from_hf_config(cfg: dict, where="config") -> Transformer:
    """Build a `Transformer` from a parsed Hugging Face config dictionary."""
    meta = cfg.get("_diffhw", {})
    if "text_config" in cfg and isinstance(cfg["text_config"], dict):
        cfg = {**cfg["text_config"], "model_type": cfg["text_config"].get("model_type", cfg.get("model_type"))}
    mt = str(cfg.get("model_type", "")).lower()

    def get(*keys, default=..., integer=True, allow_zero=False):
        for k in keys:
            if k in cfg and cfg[k] is not None:
                v = cfg[k]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise InputError(f"{where}: {k}", v, "a number")
                if v < 0 or (v == 0 and not allow_zero):
                    raise InputError(f"{where}: {k}", v, ">= 0" if allow_zero else "> 0")
                if integer and v != int(v):
                    raise InputError(f"{where}: {k}", v, "a whole number")
                return int(v) if integer else float(v)
        if default is ...:
            raise InputError(f"{where}: {keys[0]}", None, "a value (the key is missing)")
        return default

    d = get("hidden_size", "n_embd", "n_embed", "d_model")
    n_layers = get("num_hidden_layers", "n_layer", "num_layers")
    n_heads = get("num_attention_heads", "n_head", "num_heads")
    mla = "kv_lora_rank" in cfg and cfg["kv_lora_rank"] is not None
    n_kv = n_heads if mla else get("num_key_value_heads", "multi_query_group_num", default=n_heads)
    if n_heads % n_kv:
        raise InputError(f"{where}: num_key_value_heads", n_kv, f"a divisor of num_attention_heads={n_heads}")
    head_dim = get("head_dim", default=None)
    if head_dim is None:
        if d % n_heads:
            raise InputError(f"{where}: hidden_size", d, f"a multiple of num_attention_heads={n_heads}")
        head_dim = d // n_heads
    ffn = get("intermediate_size_mlp", "intermediate_size", "n_inner", "ffn_hidden_size", "ffn_dim",
              default=4 * d)
    vocab = get("vocab_size", "padded_vocab_size")
    gated = mt not in _NON_GATED
    tied = cfg.get("tie_word_embeddings")
    tied = (mt in _TIED_DEFAULT) if tied is None else bool(tied)

    # ---- Mixture of Experts
    n_experts = get("num_local_experts", "num_experts", "n_routed_experts", default=0, allow_zero=True)
    k = get("num_experts_per_tok", "experts_per_token", "moe_topk", default=0, allow_zero=True)
    if n_experts and not k:
        raise InputError(f"{where}: num_experts_per_tok", cfg.get("num_experts_per_tok"), "a value >= 1 for a MoE model")
    if n_experts and k > n_experts:
        raise InputError(f"{where}: num_experts_per_tok", k, f"at most the {n_experts} experts")
    expert_ffn = get("moe_intermediate_size", default=None)
    if expert_ffn is None:
        expert_ffn = get("intermediate_size", default=ffn)
    n_shared, shared_ffn = 0, expert_ffn
    if get("n_shared_experts", default=0, allow_zero=True):
        n_shared = get("n_shared_experts")
    elif get("shared_expert_intermediate_size", default=0, allow_zero=True):
        n_shared, shared_ffn = 1, get("shared_expert_intermediate_size")
    elif mt.startswith("llama4") and n_experts:
        n_shared, shared_ffn = 1, get("intermediate_size")
    moe_layers = _moe_layers(cfg, mt, n_layers, n_experts)

    # ---- sliding / chunked attention
    sliding_layers, window = _sliding_layers(cfg, mt, n_layers)

    groups = {}
    for i in range(n_layers):
        key = (i in sliding_layers, i in moe_layers)
        groups[key] = groups.get(key, 0) + 1
    layer_groups = tuple((s, m, c) for (s, m), c in sorted(groups.items()))

    if mla:
        q_lora = get("q_lora_rank", default=0, allow_zero=True)
        kv_lora = get("kv_lora_rank")
        nope, rope, v = get("qk_nope_head_dim"), get("qk_rope_head_dim"), get("v_head_dim")
    else:
        q_lora = kv_lora = nope = rope = v = 0
    name = meta.get("name", cfg.get("_name_or_path", Path(where).stem))
    return Transformer(
        d_model=d, head_dim=head_dim, ffn_dim=ffn, vocab_size=vocab,
        expert_ffn_dim=expert_ffn if n_experts else 0.0,
        shared_expert_ffn_dim=shared_ffn if n_experts else 0.0,
        sliding_window=window, q_lora_rank=q_lora, kv_lora_rank=kv_lora,
        qk_nope_dim=nope, qk_rope_dim=rope, v_head_dim=v,
        n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv,
        n_experts=n_experts, experts_per_token=k if n_experts else 0,
        n_shared_experts=n_shared, gated_ffn=gated, tied_embeddings=tied, mla=mla,
        layer_groups=layer_groups, name=str(name), description=str(meta.get("description", "")),
    )


def _moe_layers(cfg, mt, n_layers, n_experts):
    if not n_experts:
        return set()
    if isinstance(cfg.get("moe_layers"), list):
        return {int(i) for i in cfg["moe_layers"]}
    if "first_k_dense_replace" in cfg:  # DeepSeek
        first = int(cfg["first_k_dense_replace"])
        freq = int(cfg.get("moe_layer_freq", 1) or 1)
        return {i for i in range(first, n_layers) if i % freq == 0}
    if "interleave_moe_layer_step" in cfg:  # Llama 4
        step = int(cfg["interleave_moe_layer_step"] or 1)
        return {i for i in range(n_layers) if (i + 1) % step == 0}
    if "decoder_sparse_step" in cfg:  # Qwen MoE
        step = int(cfg["decoder_sparse_step"] or 1)
        dense = set(cfg.get("mlp_only_layers") or [])
        return {i for i in range(n_layers) if i not in dense and (i + 1) % step == 0}
    return set(range(n_layers))


def _sliding_layers(cfg, mt, n_layers):
    """Layers that attend to a bounded window, and the window (tokens)."""
    window = cfg.get("sliding_window") or cfg.get("attention_chunk_size")
    types = cfg.get("layer_types")
    if isinstance(types, list) and len(types) == n_layers:
        layers = {i for i, t in enumerate(types) if "sliding" in str(t) or "chunked" in str(t)}
    elif mt.startswith("llama4") and cfg.get("attention_chunk_size"):
        # Chunked local attention on RoPE layers; every 4th layer is global (NoPE).
        nope = cfg.get("no_rope_layers")
        if isinstance(nope, list) and len(nope) == n_layers:
            layers = {i for i, use_rope in enumerate(nope) if use_rope}
        else:
            layers = {i for i in range(n_layers) if (i + 1) % 4}
        window = cfg["attention_chunk_size"]
    elif mt == "gemma2" and window:
        layers = set(range(0, n_layers, 2))  # alternating local/global, local first
    elif mt.startswith("gemma3") and window:
        pattern = int(cfg.get("sliding_window_pattern", 6) or 6)
        layers = {i for i in range(n_layers) if (i + 1) % pattern}
    elif mt == "mistral" and window:
        layers = set(range(n_layers))
    elif cfg.get("use_sliding_window") and window:
        start = int(cfg.get("max_window_layers", 0) or 0)
        layers = set(range(start, n_layers))
    else:
        layers = set()
    if layers and not (isinstance(window, (int, float)) and window > 0):
        raise InputError("sliding_window", window, "a positive number of tokens")
    return layers, float(window) if layers else 1e12
