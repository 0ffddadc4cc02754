"""FLOPs and bytes of a workload by operator group, per layer and in total (plain Python)."""

from .._jit import filter_jit
from ._operators import encoder_op, shards_for, step_ops
from ._workload import parallelism as _par

_COST_FIELDS = ("flops", "weight_bytes", "kv_read_bytes", "kv_write_bytes", "act_bytes", "context_bytes")


def workload_costs(model, workload, parallelism=None):
    """FLOPs and bytes of one Decode step and one Prefill pass, per layer and in total.

    Decode is taken at the mean context ``input + output / 2`` with the whole batch;
    Prefill processes every prompt of the batch. ``"model"`` is the whole model on one
    chip (no sharding); ``"per_chip"`` is one chip's share under `parallelism` (for the
    chip's micro-batch: ``batch / (dp * pp)``; summed over all layers, i.e. over the
    pipeline stages). The shared read-only context (``shared_context_tokens``) is
    attended to by every query (FLOPs) and read once per step (``context_bytes``), as
    `diffhw.evaluate` charges it. A block-diffusion Decode step
    (``decode_block_tokens`` B, ``denoising_steps`` S) is one denoising pass over B
    tokens of every sequence; a modality encoder (``encoder_params``) adds an
    ``"encoder"`` row to the Prefill pass. Beam search (``beam_width`` W): the Decode
    step runs W sequences per request, the beams sharing the prompt's KV (`step_ops`),
    and a request yields one output token per step.

    **Returns:** ``{"decode_step": {...}, "prefill_pass": {...},
    "decode_per_output_token": {...}}``; the first two each with ``"model"`` and
    ``"per_chip"`` entries holding ``"ops"`` (one row per operator group: name, layers,
    and per-layer flops / weight_bytes / kv_read_bytes / kv_write_bytes / act_bytes /
    context_bytes) and ``"total"`` (the same fields summed, plus ``"bytes"``, all of
    them). ``"decode_per_output_token"`` holds ``"model"`` and ``"per_chip"`` totals of
    the Decode step divided by the output tokens it yields (``requests * B / S``).
    """
    wl = workload
    par = parallelism if parallelism is not None else _par()
    block, passes = float(wl.decode_block_tokens), float(wl.denoising_steps)
    out, per_token = {}, {}
    for phase, decode in (("decode_step", True), ("prefill_pass", False)):
        entry = {}
        for scope, p in (("model", _par()), ("per_chip", par)):
            requests = wl.batch / (p.dp * (p.pp if decode else 1.0))
            ops = _phase_ops(model, wl, p, decode)
            rows, total = [], dict.fromkeys(_COST_FIELDS, 0.0)
            for name, count, op in ops:
                row = {"name": name, "layers": int(count)}
                for f in _COST_FIELDS:
                    v = float(getattr(op, f))
                    row[f] = v
                    total[f] += count * v
                rows.append(row)
            total["bytes"] = sum(total[f] for f in _COST_FIELDS[1:])
            entry[scope] = {"ops": rows, "total": total}
            if decode:
                yielded = float(requests) * block / passes
                per_token[scope] = {k: v / yielded for k, v in total.items()}
        out[phase] = entry
    out["decode_per_output_token"] = per_token
    return out


@filter_jit
def _phase_ops(model, wl, p, decode):
    """`step_ops` of one Decode step (`decode`) or Prefill pass, with a modality
    encoder's row first in a Prefill pass of a workload that has one (one compiled
    program per model structure, not one per JAX primitive as eager execution would)."""
    seqs = wl.batch / (p.dp * (p.pp if decode else 1.0))
    if decode:  # every beam is a sequence of the Decode step
        seqs = seqs * wl.beam_width
    tokens = seqs * wl.decode_block_tokens if decode else seqs * wl.input_tokens
    ctx = wl.input_tokens + wl.output_tokens / 2 if decode else (wl.input_tokens + 1) / 2
    shards = shards_for(model, p.tp, p.ep)
    ops = step_ops(
        model, shards, tokens, seqs, ctx,
        wl.weight_precision.bytes, wl.activation_precision.bytes, wl.kv_precision.bytes,
        decode=decode, shared=wl.shared_context_tokens, skew=wl.routing_skew,
        block=wl.decode_block_tokens if decode else 1.0,
        beams=wl.beam_width if decode else 1.0, prompt=wl.input_tokens if decode else 0.0,
        head_wbytes=wl.weight_precision.head_bytes,
    )
    if not decode and wl.encoder_params is not None:
        enc = encoder_op(model, shards, wl.encoder_params, seqs * wl.encoder_tokens,
                         wl.weight_precision.bytes, wl.activation_precision.bytes)
        ops = [("encoder", 1, enc), *ops]
    return ops
