"""Chip, model and precision names as published tables write them -> diffhw presets and
precisions, by rule (`match_preset`, `match_precision`)."""

import itertools
import re

from .._errors import InputError
from .._workload._precision import NAMED_PRECISIONS
from ._files import preset_names

# ------------------------------------------------------------ names as published
# Published tables name chips and models in prose ("NVIDIA H100 SXM 80GB (DGX H100)",
# "Llama-3.3-70B-Instruct"). `match_preset` maps such a name to a preset by rule, not by a
# table of exact strings: a preset matches when every token of its name is in the text.

_TOKEN_SPLIT = re.compile(r"[^a-z0-9.]+")
_RUNS = re.compile(r"[a-z]+|[0-9.]+")
_CAPACITY = re.compile(r"^\d+(\.\d+)?gb$")
#: Tokens that do not identify a part on their own (vendors, boards, generic words).
_GENERIC = {"nvidia", "amd", "apple", "google", "qualcomm", "intel", "sxm", "pcie", "gpu", "instinct"}


def _tokens(text):
    """Lower-case tokens of `text` split at anything but letters, digits and dots (so
    versions like 3.3 stay whole); ``sxm2``/``sxm5`` count as ``sxm``."""
    out = [t.strip(".") for t in _TOKEN_SPLIT.split(str(text).lower())]
    return [re.sub(r"^sxm\d$", "sxm", t) for t in out if t]


def _text_tokens(text):
    """Every way a preset token may appear in `text`: its tokens, each two neighbours
    joined (``qwen 2.5`` -> ``qwen2.5``) and each token's letter and digit runs
    (``llama2`` -> ``llama``, ``2``)."""
    toks = _tokens(text)
    found = set(toks)
    found.update(a + b for a, b in itertools.pairwise(toks))
    for t in toks:
        found.update(r.strip(".") for r in _RUNS.findall(t))
    return toks, found


def _fill(token, toks):
    """Whether a preset token the text leaves unstated may be assumed: the SXM board
    (the data-centre part every MLPerf and TensorRT-LLM table uses) unless the text
    names PCIe, and a capacity (the A100's 80 GB) unless the text names one."""
    if token == "sxm":
        return "pcie" not in toks
    if _CAPACITY.match(token):
        return not any(_CAPACITY.match(t) for t in toks)
    return False


def match_preset(kind, text):
    """The preset a published name means, or None.

    A preset matches `text` when each token of its name is in the text (as a token, two
    joined neighbouring tokens, or a letter/digit run of one) or is a part the text
    leaves unstated (`_fill`: the SXM board, an unstated capacity), and at least one
    matched token identifies the part (not a vendor or board word). Of the matches, the
    one with the most tokens found in the text wins, then the one with fewer tokens (the
    base part over a variant such as ``b200-hbf``), then the one whose tokens come first
    in the text (``DeepSeek-V3/R1`` -> ``deepseek-v3``).

    **Arguments:**

    - `kind`: ``"hardware"`` or ``"models"``.
    - `text`: the name as published, e.g. ``"NVIDIA H200 SXM 141GB (DGX H200)"``.

    **Returns:** a preset name (``"h200-sxm"``) or None when none matches.
    """
    if kind not in ("hardware", "models"):
        raise InputError("kind", kind, "hardware or models")
    toks, found = _text_tokens(text)
    flat = " ".join(toks)
    best, best_key = None, None
    for name in preset_names(kind, ".toml" if kind == "hardware" else ".json"):
        need = _tokens(name)
        hit = [t for t in need if t in found]
        if len(hit) + sum(_fill(t, toks) for t in need if t not in found) < len(need):
            continue
        if not any(t not in _GENERIC and not _CAPACITY.match(t) for t in hit):
            continue
        where = max(flat.find(t) if t in flat else len(flat) for t in hit)
        key = (len(hit), -len(need), -where)
        if best_key is None or key > best_key:
            best, best_key = name, key
    return best


#: Published precision texts -> formats, first match wins: (pattern, format, weight
#: precision, activation precision, the nearest shipped precision for weights when the
#: format has no precision of its own). Weight-only formats compute in 16 bits.
PRECISION_FORMATS = (
    (r"\bq4_0\b", "Q4_0", "q4_0", "fp16", "q4_0"),
    (r"\bq4_k", "Q4_K", "q4_k", "fp16", "q4_0"),
    (r"\bnf4\b", "NF4", "nf4", "fp16", "nf4"),
    (r"\bawq\b", "AWQ", "awq", "fp16", "int4"),
    (r"\bgptq\b", "GPTQ", "gptq", "fp16", "int4"),
    (r"\bmxfp4\b", "MXFP4", "mxfp4", "fp4", "fp4"),
    (r"\bnvfp4\b", "NVFP4", "nvfp4", "fp4", "fp4"),
    (r"\bfp4\b", "FP4", "fp4", "fp4", "fp4"),
    (r"\bint4\b", "INT4", "int4", "fp16", "int4"),
    (r"\bint8\b", "INT8", "int8", "int8", "int8"),
    (r"\bfp8\b", "FP8", "fp8", "fp8", "fp8"),
    (r"\bbf16\b", "BF16", "bf16", "bf16", "bf16"),
    (r"\bf(p)?16\b", "FP16", "fp16", "fp16", "fp16"),
    (r"\bf(p)?32\b", "FP32", "fp32", "fp32", "fp32"),
)
_KV_TEXT = re.compile(r"\b(fp8|int8|fp16|bf16|fp4|int4)\s+kv\b")


def match_precision(text):
    """The format a published precision text names, as diffhw precisions, or None
    where the text does not state one (``"(not stated)"``, ``"likely FP4/FP8"``).

    A format diffhw has no precision for (AWQ, GPTQ, MXFP4, Q4_K, ...) maps to the
    nearest shipped one (`PRECISION_FORMATS`) until it has its own, with ``nearest``
    True; the published format stays in ``format``.

    **Returns:** a dict with ``format``, ``weight_precision``, ``activation_precision``,
    ``kv_precision`` (None unless the text names the KV cache's, e.g. "incl. FP8 KV
    cache"), ``nearest`` and ``assumed`` (the text says the precision is assumed).
    """
    t = str(text or "").lower()
    if "not stated" in t or "likely" in t or not t.strip():
        return None
    for pattern, fmt, weight, act, nearest in PRECISION_FORMATS:
        if re.search(pattern, t):
            known = weight in NAMED_PRECISIONS
            kv = _KV_TEXT.search(t)
            return dict(format=fmt, weight_precision=weight if known else nearest, activation_precision=act,
                        kv_precision=kv.group(1) if kv else None, nearest=not known, assumed="assumed" in t)
    return None
