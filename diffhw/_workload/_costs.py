"""FLOPs and bytes of a workload by operator group, per layer and in total (plain Python)."""

from ._operators import shards_for, step_ops
from ._workload import parallelism as _par

_COST_FIELDS = ("flops", "weight_bytes", "kv_read_bytes", "kv_write_bytes", "act_bytes")


def workload_costs(model, workload, parallelism=None):
    """FLOPs and bytes of one Decode step and one Prefill pass, per layer and in total.

    Decode is taken at the mean context ``input + output / 2`` with the whole batch;
    Prefill processes every prompt of the batch. ``"model"`` is the whole model on one
    chip (no sharding); ``"per_chip"`` is one chip's share under `parallelism` (for the
    chip's micro-batch: ``batch / (dp * pp)``; summed over all layers, i.e. over the
    pipeline stages).

    **Returns:** ``{"decode_step": {...}, "prefill_pass": {...}}``, each with
    ``"model"`` and ``"per_chip"`` entries holding ``"ops"`` (one row per operator group:
    name, layers, and per-layer flops / weight_bytes / kv_read_bytes / kv_write_bytes /
    act_bytes) and ``"total"``.
    """
    wl = workload
    par = parallelism if parallelism is not None else _par()
    out = {}
    for phase, decode in (("decode_step", True), ("prefill_pass", False)):
        entry = {}
        for scope, p in (("model", _par()), ("per_chip", par)):
            seqs = wl.batch / (p.dp * (p.pp if decode else 1.0))
            tokens = seqs if decode else seqs * wl.input_tokens
            ctx = wl.input_tokens + wl.output_tokens / 2 if decode else (wl.input_tokens + 1) / 2
            ops = step_ops(
                model, shards_for(model, p.tp, p.ep), tokens, seqs, ctx,
                wl.weight_precision.bytes, wl.activation_precision.bytes, wl.kv_precision.bytes,
                decode=decode, skew=wl.routing_skew,
            )
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
        out[phase] = entry
    return out
