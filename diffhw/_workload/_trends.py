"""The six trends of Ma & Patterson 2026 (Table 2) as named workload transforms.

Each trend takes a model, a workload and optionally a parallelism and returns a
`Trended` ``(model, workload, parallelism)`` with the trend applied; they compose, by
function or by name::

    m, wl, par = trends.apply(model, wl, ["moe", "long_context"], par)
    m, wl, par = trends.apply(model, wl, ["reasoning:hidden_tokens=20000"])
    m, wl, _ = trends.diffusion(*trends.long_context(model, wl))

- `moe`: a dense model turned into a Mixture-of-Experts model of (nearly) equal active
  parameters (DeepSeek-V3's shape: 256 routed experts, 8 active, 1 shared).
- `reasoning`: long hidden outputs ("thoughts") before the answer.
- `multimodal`: image (or video-frame) tokens in the prompt and the encoder's own
  weights and compute in Prefill.
- `long_context`: a long prompt.
- `rag`: retrieved passages in the prompt plus a shared read-only context (a corpus or a
  code base) whose KV cache every request reads.
- `diffusion`: non-autoregressive Decode: a block of tokens refined over a fixed number
  of denoising passes instead of one Decode step per token.

Every default carries its source. Only values change for all but `moe` (a new model
structure), so evaluating several trends of one model reuses one compiled program.
"""

import dataclasses
import inspect
from typing import NamedTuple

from .._errors import InputError, check_positive
from ._transformer import Transformer
from ._workload import Parallelism, Workload


class Trended(NamedTuple):
    """A transform's answer: the model, workload and parallelism (None when none was
    given) with the trend applied."""

    model: Transformer
    workload: Workload
    parallelism: Parallelism | None


def _replace(module, **changes):
    return dataclasses.replace(module, **changes)


def _count(name, value, minimum=0.0):
    v = check_positive(name, value, allow_zero=True)
    if v < minimum:
        raise InputError(name, value, f">= {minimum:g}")
    return v


def _whole(name, value, minimum):
    v = _count(name, value, minimum)
    if v != int(v):
        raise InputError(name, value, "a whole number")
    return int(v)


def moe(model: Transformer, workload: Workload, parallelism: Parallelism | None = None, *,
        experts: int = 256, experts_per_token: int = 8, shared_experts: int = 1,
        dense_layers: int = 3) -> Trended:
    """Mixture of Experts: the dense FFN of each layer (but the first `dense_layers`)
    becomes `experts` routed experts, `experts_per_token` of them active per token, plus
    `shared_experts` always-active ones, each ``ffn_dim / (experts_per_token +
    shared_experts)`` wide, so a token's FFN work (the active parameters, but for a
    ``d_model * experts`` router) is the dense model's while the stored weights grow
    about ``(experts + shared_experts) / (experts_per_token + shared_experts)`` times.

    Defaults: DeepSeek-V3 (DeepSeek-AI 2024, arXiv 2412.19437, and its config.json):
    256 routed experts, 8 active, 1 shared, the first 3 layers dense, and expert width
    2048 = 18432 / 9, its dense FFN width over 8 + 1 active experts.

    With a `parallelism`, experts are spread over expert-parallel ranks: ``ep = tp * dp``
    when that divides `experts` (wide expert parallelism, as DeepSeek-V3 serves),
    else ``tp`` when it does, else 1.

    Raises `InputError` for a model that already has experts.
    """
    if model.n_experts:
        raise InputError("moe", model.name, "a dense model (this one already has experts; use it as it is)")
    E, k, s, dense = (_whole(n, v, lo) for n, v, lo in (
        ("experts", experts, 1), ("experts_per_token", experts_per_token, 1),
        ("shared_experts", shared_experts, 0), ("dense_layers", dense_layers, 0)))
    if k > E:
        raise InputError("experts_per_token", k, f"at most experts = {E}")
    if dense >= model.n_layers:
        raise InputError("dense_layers", dense, f"fewer than the model's {model.n_layers} layers")
    groups, left = [], dense
    for sliding, _, count in model.layer_groups:
        d = min(left, count)
        left -= d
        groups += [(sliding, False, d)] if d else []
        groups += [(sliding, True, count - d)] if count - d else []
    width = model.ffn_dim / (k + s)
    m = _replace(model, n_experts=E, experts_per_token=k, n_shared_experts=s, expert_ffn_dim=width,
                 shared_expert_ffn_dim=width, layer_groups=tuple(groups), name=f"{model.name}+moe",
                 description=f"{model.description} (MoE: {E} experts, {k} active, {s} shared)".strip())
    par = parallelism
    if par is not None:
        tp, dp = int(round(float(par.tp))), int(round(float(par.dp)))
        ep = tp * dp if E % (tp * dp) == 0 else (tp if E % tp == 0 else 1)
        par = _replace(par, ep=float(ep))
    return Trended(m, workload, par)


def reasoning(model: Transformer, workload: Workload, parallelism: Parallelism | None = None, *,
              hidden_tokens: float = 10_000.0) -> Trended:
    """Reasoning: each request first generates `hidden_tokens` tokens of hidden thought,
    then its visible answer (``output_tokens`` grows by `hidden_tokens`).

    Default: 10,000 tokens, the average response length DeepSeek-R1-Zero reached during
    its reinforcement learning (Guo et al. 2025, arXiv 2501.12948, Fig. 3); o1/R1-class
    traces run from thousands to tens of thousands of tokens.
    """
    h = _count("hidden_tokens", hidden_tokens)
    return Trended(model, _replace(workload, output_tokens=workload.output_tokens + h), parallelism)


def multimodal(model: Transformer, workload: Workload, parallelism: Parallelism | None = None, *,
               images: float = 8.0, tokens_per_image: float = 576.0, encoder_params: float = 304e6) -> Trended:
    """Multimodal input: `images` images (or video frames) per request, each encoded
    into `tokens_per_image` tokens that join the prompt, by an encoder of
    `encoder_params` weights that runs in Prefill (its weights stored beside the
    model's; see `diffhw.Workload`).

    Defaults: LLaVA-1.5's CLIP ViT-L/14 at 336 px, 24 x 24 = 576 patch tokens per image
    (Liu et al. 2023, arXiv 2310.03744), a ViT-L of about 304 M parameters (24 layers of
    width 1024: ``12 * 24 * 1024**2`` = 302 M plus embeddings; Radford et al. 2021, CLIP);
    8 frames per request as Video-LLaVA samples a video (Lin et al. 2023, arXiv
    2311.10122).
    """
    n = _count("images", images)
    t = _count("tokens_per_image", tokens_per_image)
    p = _count("encoder_params", encoder_params)
    wl = _replace(workload, input_tokens=workload.input_tokens + n * t,
                  encoder_tokens=(0.0 if workload.encoder_tokens is None else workload.encoder_tokens) + n * t,
                  encoder_params=p)
    return Trended(model, wl, parallelism)


def long_context(model: Transformer, workload: Workload, parallelism: Parallelism | None = None, *,
                 context_tokens: float = 131_072.0) -> Trended:
    """Long context: the prompt grows to `context_tokens` tokens (kept if already longer),
    or, for a model whose context window is known and shorter than that, to what the
    window leaves beside the output and any shared context.

    Default: 128 K tokens, Llama 3.1's context window (Meta 2024, "The Llama 3 Herd of
    Models", arXiv 2407.21783).
    """
    c = _count("context_tokens", context_tokens, 1)
    if model.max_context:
        room = float(model.max_context) - float(workload.output_tokens) - float(workload.shared_context_tokens)
        c = min(c, max(room, 1.0))
    wl = _replace(workload, input_tokens=max(float(workload.input_tokens), c))
    return Trended(model, wl, parallelism)


def rag(model: Transformer, workload: Workload, parallelism: Parallelism | None = None, *,
        passages: float = 10.0, passage_tokens: float = 512.0, shared_tokens: float = 100_000.0) -> Trended:
    """Retrieval-augmented generation: `passages` retrieved passages of
    `passage_tokens` tokens each join every prompt (read from the store, then
    prefilled and kept in the KV cache), and a shared read-only context of
    `shared_tokens` tokens (the corpus or code base the requests ask about) is stored
    once and read by every Decode step (``shared_context_tokens``).

    Defaults: top-10 passages, as RAG retrieves 5 to 10 (Lewis et al. 2020, arXiv
    2005.11401); 512-token passages, the input limit of BERT-class retrieval encoders
    (Devlin et al. 2019; Karpukhin et al. 2020, DPR); a 100 K-token shared context, a
    modest code base (SK hynix's H3 studies 1 M to 10 M tokens: Ma & Patterson 2026,
    direction 1).
    """
    n = _count("passages", passages)
    t = _count("passage_tokens", passage_tokens)
    s = _count("shared_tokens", shared_tokens)
    wl = _replace(workload, input_tokens=workload.input_tokens + n * t,
                  shared_context_tokens=workload.shared_context_tokens + s)
    return Trended(model, wl, parallelism)


def diffusion(model: Transformer, workload: Workload, parallelism: Parallelism | None = None, *,
              block_tokens: float = 32.0, denoising_steps: float = 32.0) -> Trended:
    """Diffusion (block diffusion, non-autoregressive): output is generated in blocks of
    `block_tokens` tokens, each refined by `denoising_steps` full passes of the model
    over the block (with the earlier blocks' KV cached). Per output token the weights
    and KV history are read ``denoising_steps / block_tokens`` times and the FLOPs are
    ``denoising_steps`` times an autoregressive token's (see `diffhw.Workload`).

    Defaults: LLaDA's semi-autoregressive sampling, block length 32 with one token
    unmasked per step, i.e. 32 steps per block (Nie et al. 2025, arXiv 2502.09992);
    parallel decoding (Fast-dLLM, Wu et al. 2025, arXiv 2505.22618; Mercury, Gemini
    Diffusion) unmasks several tokens per pass: fewer `denoising_steps`.
    """
    b = _count("block_tokens", block_tokens, 1)
    s = _count("denoising_steps", denoising_steps, 1)
    wl = _replace(workload, decode_block_tokens=b, denoising_steps=s)
    return Trended(model, wl, parallelism)


#: The trends by name, in the order of the paper's Table 2.
TRENDS = {"moe": moe, "reasoning": reasoning, "multimodal": multimodal, "long_context": long_context,
          "rag": rag, "diffusion": diffusion}


def parse(spec):
    """``"name"`` or ``"name:key=value,key=value"`` (values are numbers) as ``(name,
    {key: value})``; hyphens in the name read as underscores. Raises `InputError` for an
    unknown trend or parameter."""
    name, _, rest = str(spec).partition(":")
    name = name.strip().replace("-", "_")
    if name not in TRENDS:
        raise InputError("trend", spec, "one of " + ", ".join(TRENDS))
    kwargs = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq:
            raise InputError("trend", spec, "parameters as key=value")
        try:
            kwargs[key] = float(value)
        except ValueError:
            raise InputError(f"trend {name}: {key}", value, "a number") from None
    known = [f.name for f in _keyword_params(TRENDS[name])]
    bad = [k for k in kwargs if k not in known]
    if bad:
        raise InputError(f"trend {name}", bad[0], "one of " + ", ".join(known))
    return name, kwargs


def _keyword_params(fn):
    return [p for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY]


def parameters(name):
    """A trend's parameters and their defaults, ``{name: default}``."""
    return {p.name: p.default for p in _keyword_params(TRENDS[parse(name)[0]])}


def apply(model: Transformer, workload: Workload, trends, parallelism: Parallelism | None = None) -> Trended:
    """Apply `trends` in order: each a name (``"moe"``), a spec with parameters
    (``"rag:shared_tokens=1e6"``), a ``(name, {params})`` pair or a transform function.

    **Returns:** a `Trended` ``(model, workload, parallelism)``.
    """
    out = Trended(model, workload, parallelism)
    for t in ([trends] if isinstance(trends, str) else trends):
        if callable(t):
            fn, kwargs = t, {}
        elif isinstance(t, tuple):
            name, kwargs = parse(t[0])[0], dict(t[1])
            fn = TRENDS[name]
            known = parameters(name)
            bad = [k for k in kwargs if k not in known]
            if bad:
                raise InputError(f"trend {name}", bad[0], "one of " + ", ".join(known))
        else:
            name, kwargs = parse(t)
            fn = TRENDS[name]
        out = Trended(*fn(*out, **kwargs))
    return out
