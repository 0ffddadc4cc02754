"""Models: Hugging Face ``config.json`` files (shipped presets or a user's) -> `Transformer`.

Every value read is checked (type, whole number, physical range) and a bad one is refused
with one `InputError` naming the file and the key, before any work is done."""

import json
import math
from pathlib import Path

from .._errors import InputError, did_you_mean
from .._workload._transformer import Transformer
from ._files import preset_names, range_text, resolve

MODEL_ALIASES: dict = {}  # every shipped name has its own file (deepseek-r1 shares deepseek-v3's architecture)

#: The ``model_type`` values read (compared case-insensitively): decoder-only transformer
#: families whose key names and defaults this importer knows. Any other is refused by name.
SUPPORTED_FAMILIES = (
    "llama", "llama4", "llama4_text", "mistral", "mixtral",
    "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
    "deepseek_v2", "deepseek_v3", "gpt_oss",
    "gemma", "gemma2", "gemma3", "gemma3_text",
    "phi", "phi3", "starcoder2", "gpt_bigcode", "chatglm",
    "falcon", "RefinedWeb", "RefinedWebModel",
    "gptj", "gpt_neox", "gpt2", "bloom", "opt",
)
_FAMILIES = {f.lower() for f in SUPPORTED_FAMILIES}
# Well-known families that are not decoder-only transformers, refused with the reason.
_STATE_SPACE = {"mamba", "mamba2", "falcon_mamba", "rwkv", "rwkv5", "rwkv6", "rwkv7", "xlstm",
                "recurrent_gemma", "jamba", "zamba", "zamba2", "bamba", "falcon_h1", "lfm2"}
_ENCODERS = {"bert", "roberta", "xlm-roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2",
             "modernbert", "t5", "mt5", "umt5", "longt5", "bart", "mbart", "pegasus", "marian",
             "whisper", "switch_transformers", "encoder-decoder"}

# Two-matrix (non-gated) MLPs; every other family has a gated (SwiGLU/GeGLU) FFN.
# StarCoder2 (c_fc/c_proj, gelu_pytorch_tanh), GPT-BigCode, Falcon/RW (dense_h_to_4h) and
# Phi-1/2 (fc1/fc2) are two-matrix; Phi-3 fuses gate_up_proj, so it is gated.
_NON_GATED = {"gptj", "bloom", "gpt2", "gpt_neox", "opt", "falcon", "refinedweb", "refinedwebmodel",
              "gpt_bigcode", "phi", "starcoder2"}
# Families whose Transformers config class leaves `tie_word_embeddings` at the library
# default (True): used when the file does not say. Falcon-7B is 6.92e9 parameters tied,
# StarCoder2-3B 3.03e9 tied, StarCoder-15.5B (gpt_bigcode) 15.5e9 tied.
_TIED_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text", "bloom", "gpt2", "opt", "falcon", "refinedweb",
                 "refinedwebmodel", "gpt_bigcode", "starcoder2"}
# Families whose Transformers attention applies `sliding_window` to every layer when set
# (Mistral, Phi-3 and StarCoder2 pass ``config.sliding_window`` to each layer's attention).
_SLIDING_ALL = {"mistral", "phi3", "starcoder2"}

# Physical ranges, checked before any work (a typo such as num_hidden_layers = 1e9 would
# otherwise loop over a billion layers). Each upper bound is more than 10x the largest
# released model, so no real config.json is refused:
_MAX_WIDTH = 262_144  # hidden_size, MLA ranks; largest released 18,432 (Nemotron-4 340B), 16,384 (Llama 3.1 405B)
_MAX_LAYERS = 10_000  # largest released 126 (Llama 3.1 405B)
_MAX_HEADS = 65_536  # largest released 232 (Falcon-180B), 128 (Llama 3.1 405B, DeepSeek-V3)
_MAX_HEAD_DIM = 4_096  # largest released 256 (Gemma)
_MAX_FFN = 4_000_000  # largest released 73,728 (Nemotron-4 340B), 53,248 (Llama 3.1 405B)
_MAX_VOCAB = 100_000_000  # largest released 262,208 (Gemma 3), 250,880 (BLOOM)
_MAX_EXPERTS = 65_536  # largest released 384 routed (Kimi K2), 256 (DeepSeek-V3)
_MAX_CONTEXT = 1_000_000_000  # tokens; the longest released context is 1e7 (Llama 4 Scout)
_MAX_WINDOW = 1e9  # tokens; the longest context released is 1e7 (Llama 4 Scout)
# A config.json is a few kB (the largest shipped, GPT-OSS-120B's, is 2.6 kB); a file
# thousands of times bigger is not one, and reading it whole could exhaust memory.
_MAX_FILE_BYTES = 16 * 2**20


def list_models():
    return preset_names("models", ".json")


def load_model(name_or_path) -> Transformer:
    """A `Transformer` from a preset name or a Hugging Face ``config.json`` path.

    Families read (``model_type``, see `SUPPORTED_FAMILIES`): llama (Llama 1-3),
    llama4 / llama4_text (text part), mistral, mixtral, qwen2 (Qwen2/2.5), qwen2_moe,
    qwen3, qwen3_moe, deepseek_v2 / deepseek_v3 (V2/V3/R1, MLA), gpt_oss, gemma,
    gemma2, gemma3 / gemma3_text, phi (Phi-1/2), phi3 (Phi-3/4), starcoder2,
    gpt_bigcode (StarCoder), chatglm (ChatGLM2/3, GLM-4), falcon / RefinedWeb /
    RefinedWebModel, gptj, gpt_neox, gpt2, bloom and opt. A file without
    ``model_type`` is read as a Llama-style decoder (gated FFN, untied embeddings); a
    multimodal file (Llama 4, Gemma 3, LLaVA-style) through its ``text_config``.
    Any other family (state-space models such as Mamba or RWKV, encoders such as BERT,
    encoder-decoders such as T5 or Whisper) is refused. No network access.
    """
    path = resolve("models", ".json", name_or_path, MODEL_ALIASES)
    return model_from_hf_config(_read_json(path), where=str(path))


def _read_json(path):
    """The JSON object in `path`, or one `InputError` whatever the file holds."""
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_FILE_BYTES + 1)
    except OSError as e:
        raise InputError("file", str(path), f"a readable file ({e.strerror})") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise InputError(str(path), f"over {_MAX_FILE_BYTES // 2**20} MiB", "a config.json (a few kB)")

    def finite(text):
        v = float(text)
        if not math.isfinite(v):
            raise InputError(str(path), text, "a valid config.json (finite numbers only)")
        return v

    def constant(name):  # Python's json reads NaN, Infinity and -Infinity, which JSON lacks
        raise InputError(str(path), name, "a valid config.json (finite numbers only)")

    try:
        cfg = json.loads(raw.decode("utf-8-sig"), parse_float=finite, parse_constant=constant)
    except InputError:
        raise
    except UnicodeDecodeError:
        raise InputError(str(path), "not UTF-8 text", "a valid config.json (UTF-8 JSON text)") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, too-long integer literals, deep nesting
        raise InputError(str(path), "JSON", f"a valid config.json ({_shown(str(e))})") from None
    if not isinstance(cfg, dict):
        raise InputError(str(path), type(cfg).__name__, "a JSON object")
    return cfg


def model_description(name):
    path = resolve("models", ".json", name, MODEL_ALIASES)
    return _meta(_read_json(path), str(path))[1]


def _shown(v):
    """`v`, or a short stand-in when it is long or nested (for error messages)."""
    if isinstance(v, (list, dict)):
        items = v.values() if isinstance(v, dict) else v
        if len(v) > 8 or any(isinstance(x, (list, dict)) for x in items):
            return f"<a JSON {'object' if isinstance(v, dict) else 'array'} of {len(v)} entries>"
    if isinstance(v, str) and len(v) > 80:
        return v[:77] + "..."
    return v


def _text(where, key, v, default=""):
    if v is None:
        return default
    if not isinstance(v, str):
        raise InputError(f"{where}: {key}", _shown(v), "a text string (in quotes)")
    return v


def _meta(cfg, where):
    """(name, description) from the ``_diffhw`` table diffhw's presets carry."""
    meta = cfg.get("_diffhw")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise InputError(f"{where}: _diffhw", _shown(meta), "a JSON object (diffhw's notes on the file)")
    return (_text(where, "_diffhw.name", meta.get("name"), None),
            _text(where, "_diffhw.description", meta.get("description")))


def _whole(where, key, v, lo, hi, allow_zero=False):
    """`v` checked to be a whole number in [lo, hi] (or 0 with `allow_zero`)."""
    field = f"{where}: {key}"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(field, _shown(v), "a number")
    if isinstance(v, float) and not math.isfinite(v):
        raise InputError(field, v, "a finite number")
    if v < 0 or (v == 0 and not allow_zero):
        raise InputError(field, v, ">= 0" if allow_zero else "> 0")
    if v != int(v):
        raise InputError(field, v, "a whole number")
    if v > hi or (v < lo and not (allow_zero and v == 0)):
        raise InputError(field, v, range_text(lo, hi, "", allow_zero and lo > 0))
    return int(v)


def _flag(cfg, where, key, default):
    v = cfg.get(key)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise InputError(f"{where}: {key}", _shown(v), "true or false")
    return v


def _index_list(cfg, where, key, n_layers):
    """A list of layer indices in [0, n_layers), or None when the key is absent."""
    v = cfg.get(key)
    if v is None:
        return None
    if not isinstance(v, list):
        raise InputError(f"{where}: {key}", _shown(v), "a list of layer indices")
    if len(v) > n_layers:
        raise InputError(f"{where}: {key}", _shown(v), f"at most num_hidden_layers={n_layers} layer indices")
    return {_whole(where, key, i, 0, n_layers - 1, allow_zero=True) for i in v}


def _family(cfg, where):
    """The lower-case ``model_type`` ("" when the file has none), refused unless supported."""
    mt = cfg.get("model_type")
    if mt is None:
        return ""
    if not isinstance(mt, str):
        raise InputError(f"{where}: model_type", _shown(mt), "a text string (in quotes)")
    if mt.lower() in _FAMILIES:
        return mt.lower()
    allowed = "a supported family: " + ", ".join(SUPPORTED_FAMILIES)
    if mt.lower() in _STATE_SPACE:
        hint = f"{mt} is a state-space / recurrent model, which diffhw does not model"
    elif mt.lower() in _ENCODERS:
        hint = f"{mt} is an encoder or encoder-decoder model; diffhw models decoder-only transformers"
    else:
        hint = did_you_mean(mt.lower(), sorted(_FAMILIES))
    raise InputError(f"{where}: model_type", _shown(mt), allowed, hint)


def model_from_hf_config(cfg: dict, where="config") -> Transformer:
    """Build a `Transformer` from a parsed Hugging Face config dictionary.

    Runs outside jit (plain Python); refuses bad input with one `InputError`."""
    if not isinstance(cfg, dict):
        raise InputError(where, _shown(cfg), "a JSON object (a parsed config.json)")
    meta_name, description = _meta(cfg, where)
    text = cfg.get("text_config")
    if text is not None:  # a multimodal wrapper (Llama 4, Gemma 3): the text model is read
        if not isinstance(text, dict):
            raise InputError(f"{where}: text_config", _shown(text), "a JSON object (the text model's config)")
        _text(where, "model_type", cfg.get("model_type"))
        cfg = {**text, "model_type": text.get("model_type", cfg.get("model_type"))}
    mt = _family(cfg, where)

    def get(*keys, hi, lo=1, default=..., allow_zero=False):
        for k in keys:
            if k in cfg and cfg[k] is not None:
                return _whole(where, k, cfg[k], lo, hi, allow_zero)
        if default is ...:
            raise InputError(f"{where}: {keys[0]}", None, "a value (the key is missing)")
        return default

    d = get("hidden_size", "n_embd", "n_embed", "d_model", hi=_MAX_WIDTH)
    n_layers = get("num_hidden_layers", "n_layer", "num_layers", hi=_MAX_LAYERS)
    n_heads = get("num_attention_heads", "n_head", "num_heads", hi=_MAX_HEADS)
    mla = cfg.get("kv_lora_rank") is not None
    kv_lora = get("kv_lora_rank", hi=_MAX_WIDTH) if mla else 0
    n_kv, kv_key = (n_heads, "") if mla else _kv_heads(cfg, mt, n_heads, get, where)
    if n_heads % n_kv:
        raise InputError(f"{where}: {kv_key}", n_kv, f"a divisor of num_attention_heads={n_heads}")
    head_dim = get("head_dim", "kv_channels", default=None, hi=_MAX_HEAD_DIM)
    if head_dim is None:
        if d % n_heads:
            raise InputError(f"{where}: hidden_size", d, f"a multiple of num_attention_heads={n_heads}")
        head_dim = d // n_heads
    ffn = get("intermediate_size_mlp", "intermediate_size", "n_inner", "ffn_hidden_size", "ffn_dim",
              default=4 * d, hi=_MAX_FFN)
    vocab = get("vocab_size", "padded_vocab_size", hi=_MAX_VOCAB)
    gated = mt not in _NON_GATED
    tied = _flag(cfg, where, "tie_word_embeddings", mt in _TIED_DEFAULT)

    # ---- Mixture of Experts
    n_experts = get("num_local_experts", "num_experts", "n_routed_experts", default=0, allow_zero=True,
                    hi=_MAX_EXPERTS)
    k = get("num_experts_per_tok", "experts_per_token", "moe_topk", default=0, allow_zero=True, hi=_MAX_EXPERTS)
    if n_experts and not k:
        raise InputError(f"{where}: num_experts_per_tok", cfg.get("num_experts_per_tok"), "a value >= 1 for a MoE model")
    if n_experts and k > n_experts:
        raise InputError(f"{where}: num_experts_per_tok", k, f"at most the {n_experts} experts")
    expert_ffn = get("moe_intermediate_size", default=None, hi=_MAX_FFN)
    if expert_ffn is None:
        expert_ffn = get("intermediate_size", default=ffn, hi=_MAX_FFN)
    n_shared, shared_ffn = 0, expert_ffn
    if get("n_shared_experts", default=0, allow_zero=True, hi=_MAX_EXPERTS):
        n_shared = get("n_shared_experts", hi=_MAX_EXPERTS)
    elif get("shared_expert_intermediate_size", default=0, allow_zero=True, hi=_MAX_FFN):
        n_shared, shared_ffn = 1, get("shared_expert_intermediate_size", hi=_MAX_FFN)
    elif mt.startswith("llama4") and n_experts:
        n_shared, shared_ffn = 1, get("intermediate_size", hi=_MAX_FFN)
    moe_layers = _moe_layers(cfg, mt, n_layers, n_experts, where)

    # ---- sliding / chunked attention
    sliding_layers, window = _sliding_layers(cfg, mt, n_layers, where)

    groups = {}
    for i in range(n_layers):  # n_layers <= _MAX_LAYERS
        key = (i in sliding_layers, i in moe_layers)
        groups[key] = groups.get(key, 0) + 1
    layer_groups = tuple((s, m, c) for (s, m), c in sorted(groups.items()))

    if mla:
        q_lora = get("q_lora_rank", default=0, allow_zero=True, hi=_MAX_WIDTH)
        nope = get("qk_nope_head_dim", hi=_MAX_HEAD_DIM)
        rope = get("qk_rope_head_dim", hi=_MAX_HEAD_DIM)
        v = get("v_head_dim", hi=_MAX_HEAD_DIM)
    else:
        q_lora = nope = rope = v = 0
    name = meta_name
    if name is None:
        name = _text(where, "_name_or_path", cfg.get("_name_or_path"), None)
    if name is None:
        name = Path(str(where)).stem
    return Transformer(
        d_model=d, head_dim=head_dim, ffn_dim=ffn, vocab_size=vocab,
        expert_ffn_dim=expert_ffn if n_experts else 0.0,
        shared_expert_ffn_dim=shared_ffn if n_experts else 0.0,
        sliding_window=window, q_lora_rank=q_lora, kv_lora_rank=kv_lora,
        qk_nope_dim=nope, qk_rope_dim=rope, v_head_dim=v,
        n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv,
        n_experts=n_experts, experts_per_token=k if n_experts else 0,
        n_shared_experts=n_shared, gated_ffn=gated, tied_embeddings=tied, mla=mla,
        layer_groups=layer_groups, name=name, description=description,
        max_context=get("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length",
                        default=0, hi=_MAX_CONTEXT),
    )


def _kv_heads(cfg, mt, n_heads, get, where):
    """KV heads of a non-MLA model, by each family's own keys and defaults, and the key read."""
    if mt in ("falcon", "refinedweb", "refinedwebmodel"):
        # Transformers' FalconAttention: the new decoder (Falcon-40B/180B; the old
        # "RefinedWeb" type) has num_kv_heads (n_head_kv in RW files) groups; the old one
        # (Falcon-7B, "RefinedWebModel") one KV head when multi_query (default true), else MHA.
        if _flag(cfg, where, "new_decoder_architecture", mt == "refinedweb"):
            key = "n_head_kv" if cfg.get("num_kv_heads") is None and "n_head_kv" in cfg else "num_kv_heads"
            return get("num_kv_heads", "n_head_kv", default=n_heads, hi=_MAX_HEADS), key
        return (1 if _flag(cfg, where, "multi_query", True) else n_heads), "multi_query"
    if mt == "gpt_bigcode":  # GPTBigCodeConfig: multi_query defaults to true (StarCoder)
        return (1 if _flag(cfg, where, "multi_query", True) else n_heads), "multi_query"
    if mt == "chatglm":  # ChatGLMConfig: groups only when multi_query_attention
        if _flag(cfg, where, "multi_query_attention", False):
            return get("multi_query_group_num", default=1, hi=_MAX_HEADS), "multi_query_group_num"
        return n_heads, "multi_query_attention"
    key = "multi_query_group_num" if cfg.get("num_key_value_heads") is None else "num_key_value_heads"
    return get("num_key_value_heads", "multi_query_group_num", default=n_heads, hi=_MAX_HEADS), key


def _moe_layers(cfg, mt, n_layers, n_experts, where="config"):
    """The MoE layers' indices. Every layer-pattern key is checked, used or not."""

    def step(key):  # a period in layers; 0 would divide by zero in Transformers too
        return 1 if cfg.get(key) is None else _whole(where, key, cfg[key], 1, _MAX_LAYERS)

    listed = _index_list(cfg, where, "moe_layers", n_layers)
    first = cfg.get("first_k_dense_replace")  # DeepSeek
    first = 0 if first is None else _whole(where, "first_k_dense_replace", first, 0, n_layers, allow_zero=True)
    freq = step("moe_layer_freq")
    interleave = step("interleave_moe_layer_step")  # Llama 4
    sparse_step = step("decoder_sparse_step")  # Qwen MoE
    dense = _index_list(cfg, where, "mlp_only_layers", n_layers) or set()
    if not n_experts:
        return set()
    if listed is not None:
        return listed
    if "first_k_dense_replace" in cfg:
        return {i for i in range(first, n_layers) if i % freq == 0}
    if "interleave_moe_layer_step" in cfg:
        return {i for i in range(n_layers) if (i + 1) % interleave == 0}
    if "decoder_sparse_step" in cfg:
        return {i for i in range(n_layers) if i not in dense and (i + 1) % sparse_step == 0}
    return set(range(n_layers))


def _sliding_layers(cfg, mt, n_layers, where="config"):
    """Layers that attend to a bounded window, and the window (tokens). Every
    window key is checked, used or not."""

    def whole(key, default, lo=1, hi=_MAX_LAYERS, allow_zero=False):
        return default if cfg.get(key) is None else _whole(where, key, cfg[key], lo, hi, allow_zero)

    # 0 or null means no window (as in vLLM and Transformers' `or`).
    sliding = whole("sliding_window", 0, hi=_MAX_WINDOW, allow_zero=True)
    chunk = whole("attention_chunk_size", 0, hi=_MAX_WINDOW, allow_zero=True)
    pattern = whole("sliding_window_pattern", 6)
    start = whole("max_window_layers", 0, lo=0, allow_zero=True)
    interval = whole("no_rope_layer_interval", 4)
    use_sliding = _flag(cfg, where, "use_sliding_window", False)
    types = _per_layer(cfg, where, "layer_types", n_layers, str)
    nope = _per_layer(cfg, where, "no_rope_layers", n_layers, int)
    window = sliding or chunk
    if types is not None:
        layers = set()
        for i, t in enumerate(types):
            if "sliding" in t or "chunked" in t:
                layers.add(i)
            elif "full" not in t and "global" not in t:
                raise InputError(f"{where}: layer_types", t,
                                 "full_attention, sliding_attention or chunked_attention for every layer")
    elif mt.startswith("llama4") and chunk:
        # Chunked local attention on RoPE layers; every 4th layer is global (NoPE).
        if nope:
            layers = {i for i, use_rope in enumerate(nope) if use_rope}
        else:
            layers = {i for i in range(n_layers) if (i + 1) % interval}
        window = chunk
    elif mt == "gemma2" and window:
        layers = set(range(0, n_layers, 2))  # alternating local/global, local first
    elif mt.startswith("gemma3") and window:
        layers = {i for i in range(n_layers) if (i + 1) % pattern}
    elif mt in _SLIDING_ALL and window:
        layers = set(range(n_layers))
    elif use_sliding and window:
        layers = set(range(start, n_layers))
    else:
        layers = set()
    if layers and not window:
        raise InputError(f"{where}: sliding_window", cfg.get("sliding_window"),
                         "a positive number of tokens (layer_types has sliding layers)")
    return layers, float(window) if layers else 1e12


def _per_layer(cfg, where, key, n_layers, kind):
    """A list with one entry per layer (text or 0/1), or None when absent or empty."""
    v = cfg.get(key)
    if v is None or v == []:
        return None
    want = "text" if kind is str else "0 or 1"
    if not isinstance(v, list) or len(v) != n_layers:
        raise InputError(f"{where}: {key}", _shown(v), f"a list of num_hidden_layers={n_layers} entries ({want})")
    for x in v:
        if (kind is str and not isinstance(x, str)) or (kind is int and x not in (0, 1)):
            raise InputError(f"{where}: {key}", _shown(x), f"{want} for every layer")
        if kind is int and isinstance(x, float):
            raise InputError(f"{where}: {key}", x, f"{want} for every layer")
    return v
