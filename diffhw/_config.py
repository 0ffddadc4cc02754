"""Loading hardware (TOML), calibration profiles (TOML) and models (HF config.json).

Human units live in the files (TFLOP/s, GB, TB/s, GB/s, us); they are converted to SI
here, once. Every loader checks what it reads and raises `InputError` naming the file,
the field, the value and what is allowed.
"""

import dataclasses
import difflib
import json
import math
import tomllib
from importlib import resources
from pathlib import Path

from . import units
from ._errors import InputError
from ._hardware._hardware import TOPOLOGIES, Hardware
from ._hardware._profile import Profile
from ._workload._transformer import Transformer

_DATA = resources.files("diffhw") / "data"


# ----------------------------------------------------------------------------- helpers
def _num(where, field, value, *, positive=True, allow_zero=False, fraction=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: {field}", value, "a number")
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise InputError(f"{where}: {field}", value, "a finite number")
    if positive and (v < 0 or (v == 0 and not allow_zero)):
        raise InputError(f"{where}: {field}", value, ">= 0" if allow_zero else "> 0")
    if fraction and v > 1:
        raise InputError(f"{where}: {field}", value, "a fraction in (0, 1]")
    return v


def _unknown_keys(where, table, allowed):
    extra = sorted(set(table) - set(allowed))
    if extra:
        raise InputError(
            f"{where}: key", extra[0], "one of " + ", ".join(sorted(allowed)),
            _close(extra[0], allowed),
        )


def _close(name, choices):
    near = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.5)
    return ("did you mean " + " or ".join(near) + "?") if near else ""


def _read_toml(path: Path):
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise InputError(str(path), "TOML", f"a valid TOML file ({e})") from None
    except OSError as e:
        raise InputError("file", str(path), f"a readable file ({e.strerror})") from None


def _names(kind, suffix):
    return sorted(p.name[: -len(suffix)] for p in (_DATA / kind).iterdir() if p.name.endswith(suffix))


def _resolve(kind, suffix, name_or_path, aliases=None):
    """A preset name or a file path -> the file to read."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.suffix in (".toml", ".json") or "/" in s or p.is_file():
        if not p.is_file():
            raise InputError(kind.rstrip("s"), s, "a preset name or an existing file")
        return p
    key = s.strip().lower()
    key = (aliases or {}).get(key, key)
    names = _names(kind, suffix)
    if key not in names:
        raise InputError(
            kind.rstrip("s"), s, f"a preset name ({len(names)} known; `diffhw presets {kind}`) or a file path",
            _close(key, names),
        )
    return _DATA / kind / (key + suffix)


# ---------------------------------------------------------------------------- profiles
_PROFILE_KEYS = {
    # key: (positive, allow_zero, fraction)
    "bandwidth_efficiency": (True, False, True),
    "compute_efficiency": (True, False, True),
    "compute_half_rows": (True, True, False),
    "network_efficiency": (True, False, True),
    "collective_latency_s": (True, True, False),
    "step_overhead_s": (True, True, False),
    "layer_overhead_s": (True, True, False),
    "memory_utilization": (True, False, True),
    "max_batched_tokens": (True, False, False),
    "collective_step_latency_s": (True, True, False),
    "sequence_overhead_s": (True, True, False),
}
#: Profile keys a TOML file may leave out: those with a default in `Profile`.
_PROFILE_OPTIONAL = {f.name: f.default for f in dataclasses.fields(Profile)
                     if f.name in _PROFILE_KEYS and f.default is not dataclasses.MISSING}


def list_profiles():
    return _names("profiles", ".toml")


def load_profile(name_or_path="default", overrides=None) -> Profile:
    """A calibration `Profile` from a preset name or a TOML file, with overrides."""
    path = _resolve("profiles", ".toml", name_or_path)
    data = _read_toml(path)
    values = dict(data.get("values", {}))
    _unknown_keys(str(path), data, {"name", "description", "fitted_on", "values", "sources"})
    values.update(overrides or {})
    return _profile_from(str(path), values, data.get("name", path.stem))


def _profile_from(where, values, name):
    _unknown_keys(where, values, _PROFILE_KEYS)
    values = {**_PROFILE_OPTIONAL, **values}
    missing = sorted(set(_PROFILE_KEYS) - set(values))
    if missing:
        raise InputError(f"{where}: {missing[0]}", None, "a value (the key is missing)")
    parsed = {
        k: _num(where, k, values[k], positive=p, allow_zero=z, fraction=fr)
        for k, (p, z, fr) in _PROFILE_KEYS.items()
    }
    return Profile(**parsed, name=name)


def profile_description(name):
    return _read_toml(_resolve("profiles", ".toml", name)).get("description", "")


# ---------------------------------------------------------------------------- hardware
_HW_TOP = {"name", "description", "vendor", "default_chips", "profile", "compute", "memory",
           "network", "power", "physical", "tiers", "placement", "tier_access", "based_on", "near_memory"}
_NEAR_KEYS = {"tier", "flop_tflops", "pj_per_flop", "bandwidth_multiple", "pj_per_bit", "shard_mb",
              "offload_fraction", "power_density_w_per_mm2", "footprint_mm2", "name",
              "bandwidth_density_gb_s_per_mm2", "capacity_penalty", "price_multiplier", "logic_die"}
_TIER_KEYS = {"name", "technology", "devices", "prefetch_buffer_mb"}
_HW_COMPUTE = {"fp32_tflops", "bf16_tflops", "fp8_tflops", "int8_tops", "fp4_tflops"}
_HW_MEMORY = {"capacity_gb", "bandwidth_tb_s", "type", "sram_mb"}
_HW_NETWORK = {"link_bandwidth_gb_s", "topology", "link_latency_us", "message_latency_us", "algorithm",
               "in_network_reduction", "switch_radix", "torus_dims", "packet_sram_fraction",
               "sram_landing_latency_us", "dram_landing_latency_us", "straggler_scale_us",
               "straggler_timeout_us"}
_HW_POWER = {"tdp_w"}
_HW_PHYSICAL = {"process", "die_area_mm2", "transistors_billion", "launch_price_usd"}

# Defaults for fields a user's file may leave out, with their source.
#: Per-hop latency: a cut-through switch hop is 0.1-0.6 us (PAPER.md, latency anchors).
DEFAULT_LINK_LATENCY_US = 0.5
#: Per-message latency: NVLink small messages ~1-2 us end to end; a calibrated
#: HGX-H100 collective model uses ~0.94 us (PAPER.md, latency anchors).
DEFAULT_MESSAGE_LATENCY_US = 1.0


def list_hardware():
    return _names("hardware", ".toml")


def load_hardware(name_or_path, profile=None) -> Hardware:
    """A `Hardware` from a preset name (``"h100-sxm"``) or a TOML file a user wrote.

    The TOML schema is that of the shipped presets (see ``diffhw/data/hardware/``):
    ``[compute]`` dense peaks in TFLOP/s (``fp32_tflops``, ``bf16_tflops`` required,
    ``fp8_tflops``, ``int8_tops``, ``fp4_tflops``), ``[memory]`` ``capacity_gb``,
    ``bandwidth_tb_s``, ``sram_mb``; ``[network]`` ``link_bandwidth_gb_s`` (one
    direction), ``topology``, ``link_latency_us``, ``message_latency_us``; ``[power]``
    ``tdp_w``. A chip without a format runs it on the next wider one: fp4 -> fp8 ->
    bf16, int8 -> fp8 -> bf16; a missing fp32 peak is taken as bf16 / 4 (FP32 matrix
    work emulated in several BF16 passes) and marked so.

    `profile` (a name, a file or a `Profile`) overrides the file's ``profile = "..."``,
    whose default is ``"default"``.
    """
    path = _resolve("hardware", ".toml", name_or_path)
    where = str(path)
    d = _merged_hardware(path)
    _unknown_keys(where, d, _HW_TOP)
    tables = {}
    for key, allowed, required in (
        ("compute", _HW_COMPUTE, {"bf16_tflops"}),
        ("memory", _HW_MEMORY, {"capacity_gb", "bandwidth_tb_s"}),
        ("network", _HW_NETWORK, {"link_bandwidth_gb_s"}),
        ("power", _HW_POWER, set()),
        ("physical", _HW_PHYSICAL, set()),
    ):
        t = d.get(key, {})
        if not isinstance(t, dict):
            raise InputError(f"{where}: {key}", t, "a TOML table")
        _unknown_keys(f"{where} [{key}]", t, allowed)
        for r in sorted(required):
            if r not in t:
                raise InputError(f"{where} [{key}]: {r}", None, "a value (the key is missing)")
        tables[key] = t
    c, m, n, pw = tables["compute"], tables["memory"], tables["network"], tables["power"]

    def tf(k):
        return _num(f"{where} [compute]", k, c[k]) * units.TFLOP_PER_S if k in c else None

    bf16 = tf("bf16_tflops")
    fp8 = tf("fp8_tflops") or bf16
    int8 = tf("int8_tops") or fp8
    fp4 = tf("fp4_tflops") or fp8
    fp32 = tf("fp32_tflops") or bf16 / 4.0
    topology = n.get("topology", "switch")
    if topology not in TOPOLOGIES:
        raise InputError(f"{where} [network]: topology", topology, "one of " + ", ".join(TOPOLOGIES))
    chips = d.get("default_chips", 1)
    if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
        raise InputError(f"{where}: default_chips", chips, "a whole number >= 1")
    if isinstance(profile, Profile):
        prof = profile
    else:
        prof = load_profile(profile or d.get("profile", "default"))
    tiers, placement_, access = _tiers(where, d)
    near = _near_memory(where, d, ["main"] + [t.name for t in tiers])
    network = _network_options(f"{where} [network]", n)
    return Hardware(
        flop_per_s_fp32=fp32,
        flop_per_s_bf16=bf16,
        flop_per_s_fp8=fp8,
        flop_per_s_int8=int8,
        flop_per_s_fp4=fp4,
        memory_capacity_bytes=_num(f"{where} [memory]", "capacity_gb", m["capacity_gb"]) * units.GB,
        memory_bandwidth_bytes_per_s=_num(f"{where} [memory]", "bandwidth_tb_s", m["bandwidth_tb_s"])
        * units.TB_PER_S,
        sram_bytes=_num(f"{where} [memory]", "sram_mb", m.get("sram_mb", 0.0), allow_zero=True) * units.MB,
        link_bandwidth_bytes_per_s=_num(
            f"{where} [network]", "link_bandwidth_gb_s", n["link_bandwidth_gb_s"]
        ) * units.GB_PER_S,
        link_latency_s=_num(
            f"{where} [network]", "link_latency_us", n.get("link_latency_us", DEFAULT_LINK_LATENCY_US),
            allow_zero=True,
        ) * units.US,
        message_latency_s=_num(
            f"{where} [network]", "message_latency_us",
            n.get("message_latency_us", DEFAULT_MESSAGE_LATENCY_US), allow_zero=True,
        ) * units.US,
        tdp_w=_num(f"{where} [power]", "tdp_w", pw.get("tdp_w", 0.0), allow_zero=True),
        profile=prof,
        tiers=tiers,
        placement=placement_,
        near_memory=near,
        network=network,
        tier_access=access,
        topology=topology,
        default_chips=chips,
        name=str(d.get("name", path.stem)),
        description=str(d.get("description", "")),
    )


def _merged_hardware(path, depth=0):
    """A hardware file, with ``based_on = "preset"`` resolved: the base's tables, each
    updated key by key with this file's (so a variant states only what it changes)."""
    d = _read_toml(path)
    base_name = d.get("based_on")
    if base_name is None:
        return d
    if depth > 4:
        raise InputError(f"{path}: based_on", base_name, "a chain of at most 5 files")
    base = _merged_hardware(_resolve("hardware", ".toml", base_name), depth + 1)
    merged = dict(base)
    for k, v in d.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merged[k] = {**base[k], **v}
        else:
            merged[k] = v
    merged.pop("based_on", None)
    return merged


def _network_options(w, n):
    """`NetworkOptions` from the optional keys of a ``[network]`` table."""
    from ._hardware._collective_algorithms import ALLREDUCE_ALGORITHMS
    from ._hardware._collectives import NetworkOptions

    algo = n.get("algorithm", "auto")
    if algo not in ALLREDUCE_ALGORITHMS:
        raise InputError(f"{w}: algorithm", algo, "one of " + ", ".join(ALLREDUCE_ALGORITHMS))
    innet = n.get("in_network_reduction", False)
    if not isinstance(innet, bool):
        raise InputError(f"{w}: in_network_reduction", innet, "true or false")
    us = units.US
    stragglers = "straggler_scale_us" in n
    return NetworkOptions(
        switch_radix=_num(w, "switch_radix", n.get("switch_radix", 64.0)),
        torus_dims=_num(w, "torus_dims", n.get("torus_dims", 6.0)),
        packet_sram_fraction=_num(w, "packet_sram_fraction", n.get("packet_sram_fraction", 0.0),
                                  allow_zero=True, fraction=True) if n.get("packet_sram_fraction", 0.0) else 0.0,
        sram_landing_latency_s=_num(w, "sram_landing_latency_us", n.get("sram_landing_latency_us", 0.0),
                                    allow_zero=True) * us,
        dram_landing_latency_s=_num(w, "dram_landing_latency_us", n.get("dram_landing_latency_us", 0.0),
                                    allow_zero=True) * us,
        straggler_scale_s=_num(w, "straggler_scale_us", n.get("straggler_scale_us", 0.0), allow_zero=True) * us,
        straggler_timeout_s=_num(w, "straggler_timeout_us", n.get("straggler_timeout_us", 1e6)) * us,
        algorithm=algo,
        in_network_reduction=innet,
        stragglers=stragglers,
    )


def _near_memory(where, d, tier_names):
    """The ``[near_memory]`` table: PNM/PIM/3D logic on one tier."""
    from ._hardware._near_memory import NearMemory

    t = d.get("near_memory")
    if t is None:
        return None
    w = f"{where} [near_memory]"
    if not isinstance(t, dict):
        raise InputError(w, t, "a table")
    _unknown_keys(w, t, _NEAR_KEYS)
    for k in ("flop_tflops", "pj_per_flop", "bandwidth_multiple", "pj_per_bit", "shard_mb"):
        if k not in t:
            raise InputError(f"{w}: {k}", None, "a value (the key is missing)")
    if float(t.get("capacity_penalty", 0.0)) >= 1.0:
        raise InputError(f"{w}: capacity_penalty", t["capacity_penalty"], "a fraction in [0, 1)")
    tier = t.get("tier", "main")
    if tier not in tier_names:
        raise InputError(f"{w}: tier", tier, "one of " + ", ".join(tier_names))
    return NearMemory(
        flop_per_s=_num(w, "flop_tflops", t["flop_tflops"]) * units.TFLOP_PER_S,
        j_per_flop=_num(w, "pj_per_flop", t["pj_per_flop"]) * units.PJ,
        bandwidth_multiple=_num(w, "bandwidth_multiple", t["bandwidth_multiple"]),
        j_per_byte=_num(w, "pj_per_bit", t["pj_per_bit"]) * units.PJ * units.BITS_PER_BYTE,
        shard_bytes=_num(w, "shard_mb", t["shard_mb"]) * units.MB,
        offload_fraction=_num(w, "offload_fraction", t.get("offload_fraction", 1.0), allow_zero=True, fraction=True),
        power_density_w_per_mm2=_num(w, "power_density_w_per_mm2", t.get("power_density_w_per_mm2", 1e9)),
        footprint_mm2=_num(w, "footprint_mm2", t.get("footprint_mm2", 1.0)),
        bandwidth_density_bytes_per_s_per_mm2=_num(
            w, "bandwidth_density_gb_s_per_mm2", t.get("bandwidth_density_gb_s_per_mm2", 0.0), allow_zero=True
        ) * units.GB_PER_S,
        capacity_penalty=_num(w, "capacity_penalty", t.get("capacity_penalty", 0.0), allow_zero=True),
        price_multiplier=_num(w, "price_multiplier", t.get("price_multiplier", 1.0)),
        logic_die=_num(w, "logic_die", t.get("logic_die", 1.0), allow_zero=True, fraction=True),
        tier=tier_names.index(tier),
        name=str(t.get("name", "near-memory")),
    )


def _tiers(where, d):
    """Extra memory tiers (``[[tiers]]``) and the ``[placement]`` of data classes."""
    from ._hardware._memory import DATA_CLASSES, Placement, tier_from_technology

    raw = d.get("tiers", [])
    if not isinstance(raw, list):
        raise InputError(f"{where}: tiers", raw, "an array of tables ([[tiers]])")
    tiers, names = [], ["main"]
    for i, t in enumerate(raw):
        w = f"{where} [[tiers]] #{i + 1}"
        if not isinstance(t, dict):
            raise InputError(w, t, "a table")
        _unknown_keys(w, t, _TIER_KEYS)
        for k in ("name", "technology", "devices"):
            if k not in t:
                raise InputError(f"{w}: {k}", None, "a value (the key is missing)")
        if t["name"] in names:
            raise InputError(f"{w}: name", t["name"], "a name not used by another tier (or 'main')")
        buf = t.get("prefetch_buffer_mb")
        buf = None if buf is None else _num(w, "prefetch_buffer_mb", buf, allow_zero=True) * units.MB
        tiers.append(tier_from_technology(str(t["name"]), str(t["technology"]), t["devices"], buf, w))
        names.append(str(t["name"]))
    access = d.get("tier_access", "parallel")
    if access not in ("parallel", "serial"):
        raise InputError(f"{where}: tier_access", access, "parallel or serial")
    pl = d.get("placement")
    if pl is None:
        return tuple(tiers), None, access
    w = f"{where} [placement]"
    if not isinstance(pl, dict):
        raise InputError(w, pl, "a table of fraction lists")
    _unknown_keys(w, pl, DATA_CLASSES)
    rows = []
    for c in DATA_CLASSES:
        row = pl.get(c, [1.0] + [0.0] * len(tiers))
        if not isinstance(row, list) or len(row) != len(names):
            raise InputError(f"{w}: {c}", row, f"a list of {len(names)} fractions, one per tier ({', '.join(names)})")
        vals = [_num(w, f"{c}[{j}]", x, allow_zero=True) for j, x in enumerate(row)]
        if abs(sum(vals) - 1.0) > 1e-6:
            raise InputError(f"{w}: {c}", row, "fractions that add up to 1")
        rows.append(vals)
    return tuple(tiers), Placement(rows), access


def hardware_description(name):
    return _merged_hardware(_resolve("hardware", ".toml", name)).get("description", "")


# ------------------------------------------------------------------------------ models
MODEL_ALIASES: dict = {}  # every shipped name has its own file (deepseek-r1 shares deepseek-v3's architecture)
_NON_GATED = {"gptj", "bloom", "gpt2", "gpt_neox", "opt", "falcon", "gpt_bigcode", "phi"}
_TIED_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text", "bloom", "gpt2", "opt"}


def list_models():
    return _names("models", ".json")


def load_model(name_or_path) -> Transformer:
    """A `Transformer` from a preset name or a Hugging Face ``config.json`` path.

    Families read: Llama (1-3), Llama 4 (text part), Mistral, Mixtral, Qwen2/2.5,
    Qwen3, Qwen2-MoE, Qwen3-MoE, DeepSeek-V2/V3/R1 (MLA), GPT-OSS, Gemma 1-3, GPT-J,
    BLOOM, and others that use the same key names. No network access.
    """
    path = _resolve("models", ".json", name_or_path, MODEL_ALIASES)
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
    path = _resolve("models", ".json", name, MODEL_ALIASES)
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
