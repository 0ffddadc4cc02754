"""Latency composition: roofline per operator, exposed communication, overheads.

A step's time is, for every operator group ``i`` of every layer,
``smooth_max(compute_i, memory_i)``, summed, plus the exposed communication of the
step and the fixed overheads of the calibration profile. Decode's time per output token
(TPOT) averages the step time over the contexts the generated tokens see; time to first
token (TTFT) is the Prefill pass of the batch's prompts, chunked and pipelined.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import _smooth
from .._hardware import _collectives, _memory, _near_memory
from .._hardware._hardware import Hardware
from .._workload._operators import (
    access_bytes,
    encoder_op,
    kv_bytes_per_chip,
    rank_load_factor,
    shards_for,
    step_ops,
    weight_bytes_per_chip,
)
from .._workload._transformer import Transformer
from .._workload._workload import Parallelism, Workload

Scalar = Float[Array, ""]

# Gauss-Legendre nodes and weights on [0, 1] for averaging Decode over the context.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)
_GL_X = (_GL_X + 1.0) / 2.0
_GL_W = _GL_W / 2.0

#: Names of the step-time components, in the order of `bound_index`.
COMPONENTS = ("compute", "memory", "communication", "overhead")


class StepTime(eqx.Module):
    """One step's time and where it goes (seconds). ``total`` is the sum of the parts."""

    compute_s: Scalar
    memory_s: Scalar
    communication_s: Scalar
    overhead_s: Scalar

    @property
    def total_s(self):
        return self.compute_s + self.memory_s + self.communication_s + self.overhead_s

    def scale(self, factor):
        return jax.tree_util.tree_map(lambda x: x * factor, self)


def roofline(hw: Hardware, ops, peak_flop_per_s, access, tau=_smooth.DEFAULT_TAU, offload=True):
    """Sum over operator groups of ``smooth_max(compute, memory)``, split by binding side.

    Compute time of a group is ``flops / (peak * eff(rows))`` (``peak``: the format's
    `Hardware.matmul_flop_per_s`, its share relative to bf16 included) with
    ``eff(M) = compute_efficiency * M / (M + compute_half_rows)``; memory time is
    ``bytes / (bandwidth * bandwidth_efficiency)``, over the memory tiers when the
    hardware has several (`diffhw._hardware._memory.memory_time`; `access` holds each data class's
    access size). With near-memory units (and `offload`, as in Decode) part of each
    group runs there (`diffhw._hardware._near_memory.offload`). Each group's smooth maximum is split
    between compute and memory by the softmax weights of the smooth max, so the two parts
    add up to the roofline time and say which side binds. `ops` is a `step_ops` list or
    its `stack_ops` form.

    **Returns:** ``(compute_s, memory_s)``.
    """
    prof = hw.profile

    def one(op):
        eff = prof.compute_efficiency * op.rows / (op.rows + prof.compute_half_rows)
        reads, writes = op.reads_writes()
        if hw.near_memory is None or not offload:
            tc = _smooth.safe_div(op.flops, peak_flop_per_s * eff)
            if hw.tiers:
                tm = _memory.memory_time(hw, reads, writes, access, tau)
            else:  # one tier: no per-class arrays needed (keeps wide vmaps fast)
                tm = op.bytes / (hw.memory_bandwidth_bytes_per_s * prof.bandwidth_efficiency)
        else:
            # Offloaded bytes leave the host's traffic in proportion to where they sat
            # (their tier), partial results come back through the activation class.
            off = _near_memory.offload(hw, op, tau)
            frac = _memory.fractions_of(hw)[:, hw.near_memory.tier]
            keep = 1.0 - hw.near_memory.offload_fraction * frac
            host_reads = reads * jnp.stack([keep[0], keep[1], keep[2], jnp.ones(())])
            host_reads = host_reads.at[3].add(off.host_extra_bytes)
            tc = _smooth.safe_div(off.host_flops, peak_flop_per_s * eff)
            tm = _smooth.smooth_max(
                _memory.memory_time(hw, host_reads, writes, access, tau), off.near_time_s, tau=tau
            )
        t = _smooth.smooth_max(tc, tm, tau=tau)
        w_compute = _smooth.smooth_share(tc, tm, tau)
        return t * w_compute, t * (1.0 - w_compute)

    # Every operator group through one vmapped body: traced (and compiled) once, not
    # once per group. `ops` may come stacked already (`stack_ops`).
    stacked, counts = ops if isinstance(ops, tuple) else stack_ops(ops)
    compute, memory = jax.vmap(one)(stacked)
    return jnp.dot(counts, compute), jnp.dot(counts, memory)


def stack_ops(ops):
    """The `OpCost`s of a `step_ops` list as one `OpCost` of arrays (one entry per
    group) and the groups' layer counts: ``(stacked, counts)``."""
    # the routed-expert parts (`OpCost.expert_flops`) are read from the list (`ops_chain`)
    costs = [eqx.tree_at(lambda o: (o.expert_flops, o.expert_weight_bytes, o.expert_load), op, (None, None, None),
                         is_leaf=lambda x: x is None) for _, _, op in ops]

    def stack(*xs):
        dtype = jnp.result_type(*xs)
        return jnp.stack([jnp.broadcast_to(jnp.asarray(x, dtype), ()) for x in xs])

    stacked = jax.tree_util.tree_map(stack, *costs)
    return stacked, jnp.asarray([count for _, count, _ in ops], dtype=stacked.flops.dtype)


def communication(hw, model: Transformer, par: Parallelism, tokens, abytes, skew=0.0, alltoall=False, load=None,
                  forwarded=True):
    """Exposed communication of one pass of `tokens` tokens through every layer.

    Tensor parallel: one all-reduce of ``tokens * d_model`` hidden states (at least 16
    bits each, whatever `abytes`; see below) after attention
    and one after each dense FFN (and after each MoE block when ``ep == 1``). Expert
    parallel (``ep > 1``): an all-to-all dispatch and combine per MoE layer, each chip
    sending its ``tokens / tp`` tokens to ``experts_per_token`` experts; the most loaded
    rank (`rank_load_factor`, routing `skew`) receives more and sets the time. Pipeline: one
    send of the activations between each pair of stages. On a multi-node system
    (`Hardware.scale_out`) each collective's part that leaves a scale-up domain runs on
    the scale-out network (`diffhw._hardware._collectives`), and so do the stage-to-stage
    sends between domains.

    Attention data parallel with wide expert parallel (``tp`` small, ``dp`` replicas,
    ``ep`` up to ``tp * dp``): each replica runs attention for its own sequences and the
    dispatch/combine all-to-all spans the ``ep`` ranks of ``ep / tp`` replicas.

    `load`: the most loaded rank's `rank_load_factor` for these tokens, when the caller
    has it already (`OpCost.expert_load`); None: computed here.

    `forwarded`: across scale-up domains the dispatch and combine send each token once
    to each other domain holding one of its experts, and forward it inside that domain
    (DeepEP's normal kernels, run for Prefill; `_collectives.alltoall_time`'s
    ``fanout``); False: once per expert, straight to the expert's chip (DeepEP's
    low-latency kernels, pure RDMA, run for Decode; github.com/deepseek-ai/DeepEP
    README). The same inside one domain.

    **Returns:** ``(seconds, bytes each chip sends)``, and with `alltoall` the seconds of
    the expert-parallel dispatch/combine all-to-all among them (0 without it).
    """
    # The hidden states a collective carries are the residual stream's, never narrower
    # than 16 bits: an all-reduce sums the row-parallel GEMM's bf16 outputs and an FP8 or
    # FP4 stack quantises after it (TensorRT-LLM's fused AllReduce -> residual -> RMSNorm
    # -> quantise, `AllReduceFusionOp.RESIDUAL_RMS_NORM_QUANT_FP8/_NVFP4` in
    # tensorrt_llm/functional.py), stage-to-stage sends carry the same tensor, and the
    # MoE combine returns bf16 expert outputs while only the dispatch may be quantised
    # (DeepEP: FP8 dispatch, BF16 combine, github.com/deepseek-ai/DeepEP; Megatron-LM
    # sizes its buffers at ``max(element_size, 2)`` bytes per hidden element,
    # megatron/core/transformer/moe/fused_a2a.py `get_hidden_bytes`).
    hbytes = _smooth.exact_max(abytes, 2.0)
    msg = tokens * model.d_model * hbytes
    n_ar = model.n_layers + model.n_dense_layers
    t_ar, b_ar = _collectives.allreduce_time(hw, msg, par.tp), _collectives.allreduce_bytes(msg, par.tp)
    t, sent = n_ar * t_ar, n_ar * b_ar
    t_a2a = jnp.zeros(())
    if model.n_moe_layers:
        routed = tokens / par.tp * model.experts_per_token * model.d_model
        use_a2a = par.ep > 1.0
        if load is None:
            group_tokens = tokens * _smooth.exact_max(par.tp, par.ep) / par.tp
            load = rank_load_factor(float(model.n_experts), float(model.experts_per_token), group_tokens, par.ep,
                                    skew)
        # dispatch at the activation precision, combine at the hidden states': two
        # all-to-alls of their mean size (exact where the time is affine in the bytes;
        # one traced call, not two)
        k = float(model.experts_per_token) if forwarded else 1.0  # 1: every copy sent as its own item
        t_moe = _smooth.where(use_a2a, 2.0 * _collectives.alltoall_time(
            hw, routed * 0.5 * (abytes + hbytes) * load, par.ep, k), t_ar)
        b_moe = _smooth.where(use_a2a, _collectives.alltoall_bytes(routed * (abytes + hbytes), par.ep), b_ar)
        t = t + model.n_moe_layers * t_moe
        sent = sent + model.n_moe_layers * b_moe
        t_a2a = _smooth.where(use_a2a, model.n_moe_layers * t_moe, 0.0)
    has_pp = par.pp > 1.0
    t_p2p = _collectives.p2p_time(hw, msg)
    t_pp = (par.pp - 1.0) * t_p2p
    if hw.scale_out is not None:
        # stages are outermost (`diffhw._hardware._collectives`): of the pp - 1 stage
        # boundaries, chips / domain_chips - 1 cross a domain, each TP rank sending its
        # 1/tp share over its own NIC
        cross = _smooth.exact_clip(par.chips / hw.scale_out.domain_chips - 1.0, 0.0, par.pp - 1.0)
        t_pp = t_pp + cross * (_collectives.p2p_out_time(hw, msg / par.tp) - t_p2p)
    t = t + jnp.where(has_pp, t_pp, 0.0)
    # stage-to-stage sends along the chain, each TP rank sending its 1/tp share
    sent = sent + jnp.where(has_pp, (par.pp - 1.0) * msg / par.tp, 0.0)
    if alltoall:
        return t, sent, t_a2a
    return t, sent


def communication_time(hw, model: Transformer, par: Parallelism, tokens, abytes, skew=0.0):
    """Seconds of `communication` (see there)."""
    return communication(hw, model, par, tokens, abytes, skew)[0]


class Work(eqx.Module):
    """What one pass of the layer chain does on one tensor-parallel rank per stage:
    `flops`, `memory_bytes` (memory traffic), `network_bytes` (sent), the memory
    traffic by data class, `reads_by_class` and `writes_by_class`, and the part of the
    FLOPs and bytes done by near-memory units, `near_flops` and `near_bytes`."""

    flops: Scalar
    memory_bytes: Scalar
    network_bytes: Scalar
    reads_by_class: Array
    writes_by_class: Array
    near_flops: Scalar = eqx.field(default_factory=lambda: jnp.zeros(()))
    near_bytes: Scalar = eqx.field(default_factory=lambda: jnp.zeros(()))

    def scale(self, factor):
        return jax.tree_util.tree_map(lambda x: x * factor, self)


def chain(hw, model, wl, par, tokens, sequences, context, decode, tau=_smooth.DEFAULT_TAU, block=1.0, beams=1.0,
          prompt=0.0):
    """Time and work of `tokens` tokens (of `sequences` sequences at `context`) passing
    through every layer on one tensor-parallel rank per pipeline stage. `block`: Decode
    tokens per sequence in the pass (`step_ops`; block diffusion); `beams`, `prompt`:
    beam search, `sequences` counting every beam and the beams sharing the prompt's KV
    (`step_ops`).

    **Returns:** ``(StepTime, Work)``.
    """
    shards = shards_for(model, par.tp, par.ep)
    wb, ab, kvb = wl.weight_precision.bytes, wl.activation_precision.bytes, wl.kv_precision.bytes
    ops = step_ops(
        model, shards, tokens, sequences, context, wb, ab, kvb, decode=decode,
        shared=wl.shared_context_tokens, skew=wl.routing_skew, block=block, beams=beams, prompt=prompt,
        head_wbytes=wl.weight_precision.head_bytes,
    )
    return ops_chain(hw, model, wl, par, ops, tokens, sequences, decode, tau, forwarded=not decode)


def mixed_chain(hw, model, wl, par, decode_tokens, decode_sequences, decode_context, prefill_tokens,
                prefill_sequences, prefill_context, tau=_smooth.DEFAULT_TAU, prefill_rows=None):
    """Time and work of one continuous-batching step: Decode tokens of some sequences and
    a Prefill chunk of others in ONE pass through every layer (one tensor-parallel rank
    per stage), as vLLM, SGLang and TensorRT-LLM run them with chunked prefill.

    The weight-bound groups (projections, FFN or experts, the head) see all the step's
    tokens at once, so their weights are read once; attention runs one core per kind
    (Decode reading each sequence's KV history, Prefill attending within its chunk), the
    shared context read once (it sits with the Decode core). With ``decode_tokens >
    decode_sequences`` each sequence verifies several tokens (speculative decoding); the
    head then scores every one of them. Near-memory units take their share of the
    memory-bound work as in Decode. `prefill_rows` (default `prefill_tokens`) sets the
    Prefill attention core's matrix rows: when `prefill_tokens` is a mean over steps that
    carry a whole chunk or none, the kernel runs at the chunk's efficiency.

    **Returns:** ``(StepTime, Work)``.
    """
    shards = shards_for(model, par.tp, par.ep)
    wb, ab, kvb = wl.weight_precision.bytes, wl.activation_precision.bytes, wl.kv_precision.bytes
    shared, skew = wl.shared_context_tokens, wl.routing_skew
    tokens = decode_tokens + prefill_tokens
    # the weight-bound groups of the whole step, the attention cores of each part
    both = step_ops(model, shards, tokens, decode_tokens + prefill_sequences, decode_context, wb, ab, kvb,
                    decode=True, shared=shared, skew=skew, head_wbytes=wl.weight_precision.head_bytes, parts="other")
    dec = step_ops(model, shards, decode_tokens, decode_sequences, decode_context, wb, ab, kvb, decode=True,
                   shared=shared, skew=skew, parts="core")
    pre = step_ops(model, shards, prefill_tokens, prefill_sequences, prefill_context, wb, ab, kvb, decode=False,
                   shared=shared, skew=skew, parts="core")
    cores = iter(zip(dec, pre))
    ops = []
    for name, count, op in both:
        ops.append((name, count, op))
        if name.startswith("attention_proj"):  # each group's cores follow its projections
            (core, _, d), (_, _, p) = next(cores)
            ops.append((core + "_decode", count, d))
            rows = p.rows if prefill_rows is None else prefill_rows * jnp.ones(())
            ops.append((core + "_prefill", count, eqx.tree_at(lambda o: (o.context_bytes, o.rows), p,
                                                              (jnp.zeros(()), rows))))
    return ops_chain(hw, model, wl, par, ops, tokens, decode_sequences + prefill_sequences, True, tau)


def ops_chain(hw, model, wl, par, ops, tokens, sequences, offload, tau=_smooth.DEFAULT_TAU, forwarded=True):
    """`StepTime` and `Work` of a `step_ops` list (`chain`, `mixed_chain`): the roofline of
    its groups, the pass's communication for `tokens` tokens, and the profile's
    overheads for `sequences` sequences; near-memory units take work with `offload`.
    `forwarded`: a multi-domain MoE dispatch sends each token once per other domain
    and forwards it there (a pass with Prefill tokens); False: once per expert (a
    Decode-only pass; `communication`)."""
    wb, ab, kvb = wl.weight_precision.bytes, wl.activation_precision.bytes, wl.kv_precision.bytes
    stacked, counts = stack_ops(ops)
    # Decode appends one token per sequence; a Prefill pass writes each prompt's KV in one run.
    access = access_bytes(model, wb, ab, kvb)
    if not offload:
        access = _memory.written_in_runs(access, _smooth.safe_div(tokens, sequences))
    # a dequantising kernel streams its weights below the achievable bandwidth
    # (`Precision.read_efficiency`): more time, the same bytes (traffic and energy below);
    # the LM head keeps its 16-bit kernel (`Precision.head_bits`)
    quantised = np.asarray([name != "lm_head" for name, _, _ in ops])
    weight_bytes = stacked.weight_bytes
    flops = stacked.flops
    moe = [i for i, (_, _, op) in enumerate(ops) if op.expert_flops is not None]
    if moe:
        # routed-expert grouped GEMMs reach `moe_efficiency` of the dense rates: their
        # FLOPs and weight bytes take 1 / moe_efficiency the time (traffic unchanged);
        # a share of exactly 1 leaves every time as it was
        slow = 1.0 / hw.profile.moe_efficiency - 1.0
        flops = flops.at[np.asarray(moe)].add(slow * jnp.stack([ops[i][2].expert_flops for i in moe]))
        weight_bytes = weight_bytes.at[np.asarray(moe)].add(
            slow * jnp.stack([ops[i][2].expert_weight_bytes for i in moe]))
    weight_bytes = weight_bytes / jnp.where(quantised, wl.weight_precision.read_efficiency, 1.0)
    timed = eqx.tree_at(lambda o: (o.flops, o.weight_bytes), stacked, (flops, weight_bytes))
    c, mem = roofline(hw, (timed, counts), hw.matmul_flop_per_s(wl.activation_precision, tau), access, tau,
                      offload=offload)
    # the MoE blocks' rank imbalance (`_ffn_op`, the same tokens) sets the all-to-all's too
    loads = [op.expert_load for _, _, op in ops if op.expert_load is not None]
    comm, sent, t_a2a = communication(hw, model, par, tokens, wl.activation_precision.bytes, wl.routing_skew,
                                      alltoall=True, load=loads[0] if loads else None, forwarded=forwarded)
    if model.n_moe_layers:
        # two-batch overlap: one micro-batch's all-to-all runs under the other's layers,
        # hiding at most the step's roofline time (`Profile.moe_exposed_fraction`; 1:
        # all exposed, the share hidden is exactly 0)
        hidden = 1.0 - hw.profile.moe_exposed_fraction
        comm = comm - hidden * _smooth.smooth_min(t_a2a, c + mem, tau=tau)
    over = (hw.profile.step_overhead_s + model.n_layers * hw.profile.layer_overhead_s
            + sequences * hw.profile.sequence_overhead_s)

    def total(field):
        return jnp.dot(counts, getattr(stacked, field))

    flops = total("flops")

    reads = jnp.stack([total("weight_bytes"), total("kv_read_bytes"), total("context_bytes"), total("act_bytes")])
    zero = jnp.zeros(())
    writes = jnp.stack([zero, total("kv_write_bytes"), zero, zero])
    traffic = jnp.sum(reads) + jnp.sum(writes)
    near_flops = near_bytes = jnp.zeros(())
    if hw.near_memory is not None and offload:  # near-memory units serve Decode
        offs = jax.vmap(lambda op: _near_memory.offload(hw, op, tau))(stacked)
        near_flops, near_bytes = jnp.dot(counts, offs.near_flops), jnp.dot(counts, offs.near_bytes)
        # the shards' inputs and partial results cross the memory interface: traffic
        # (and energy) of the activation class, as the roofline already times them
        exchange = jnp.dot(counts, offs.host_extra_bytes)
        reads = reads.at[3].add(exchange)
        traffic = traffic + exchange
    work = Work(flops, traffic, sent, reads, writes, near_flops, near_bytes)
    return StepTime(c, mem, comm, over * jnp.ones(())), work


def decode_step(hw, model, wl: Workload, par, context, tau=_smooth.DEFAULT_TAU):
    """Time and work of one Decode step of a micro-batch at a given context.

    The chain of all layers runs on a micro-batch of ``batch / (dp * pp)`` sequences,
    one token each; with ``pp`` stages, ``pp`` micro-batches are in flight, so this
    chain time is also the time per output token.

    Block diffusion (``wl.decode_block_tokens = B``, ``wl.denoising_steps = S``): a
    pass runs ``B`` tokens of each sequence (``m B`` tokens, one KV read per sequence)
    and a block of ``B`` output tokens takes ``S`` passes, so the time and work per
    output token are those of one pass times ``S / B``. The block's K and V are written
    on every pass (recomputed as the tokens change, as in Fast-dLLM's cache refresh),
    and its queries attend to the cached context, not to each other (``B`` is small
    beside the context). ``B = S = 1`` is autoregressive Decode.

    Beam search (``wl.beam_width = W``): each of the ``m`` requests decodes ``W``
    sequences, so the step runs ``m W`` rows (FLOPs, activations, the head, per-sequence
    overheads such as sampling) and every beam reads its own generated KV, while the
    prompt's KV is read once per request where the kernel shares it (grouped-query
    models; `step_ops`). A request still yields one output token per step.
    """
    m = wl.batch / (par.dp * par.pp) * wl.beam_width
    block = wl.decode_block_tokens
    t, work = chain(hw, model, wl, par, m * block, m, context, True, tau, block=block, beams=wl.beam_width,
                    prompt=wl.input_tokens)
    per_token = wl.denoising_steps / block
    return t.scale(per_token), work.scale(per_token)


def tpot(hw, model, wl, par, tau=_smooth.DEFAULT_TAU):
    """Decode time per output token (`StepTime`) and the chain's `Work` per step,
    averaged over the generated tokens.

    The context grows from ``input_tokens`` to ``input_tokens + output_tokens``; the step
    is averaged over it by 4-point Gauss-Legendre quadrature (exact for a step time
    that is a cubic in the context; the roofline is piecewise linear and smooth).
    """
    # The quadrature points go through one vmapped step: the step is traced (and
    # compiled) once, not once per point.
    dtype = jnp.result_type(wl.input_tokens)
    ctx = wl.input_tokens + jnp.asarray(_GL_X, dtype=dtype) * wl.output_tokens
    steps = jax.vmap(lambda c: decode_step(hw, model, wl, par, c, tau))(ctx)
    return jax.tree_util.tree_map(lambda a: jnp.tensordot(jnp.asarray(_GL_W, dtype=a.dtype), a, axes=1), steps)


def prefill_chunks(hw, wl, par):
    """Relaxed number of Prefill chunks per replica: ``tokens / max_batched_tokens``, >= 1."""
    tokens = wl.batch / par.dp * wl.input_tokens
    return _smooth.smooth_max(tokens / hw.profile.max_batched_tokens, 1.0)


def ttft(hw, model, wl, par, tau=_smooth.DEFAULT_TAU):
    """Time to first token (`StepTime`, seconds) and the `Work` of the whole Prefill of
    one replica (on one tensor-parallel rank per stage).

    All ``batch / dp`` prompts of a replica arrive together (static batching, as in
    TensorRT-LLM's and SplitwiseSim's measurements) and are processed in ``n`` chunks of
    at most ``max_batched_tokens`` tokens. Chunks flow through the ``pp`` pipeline
    stages: ``time = chain(chunk) * (n + pp - 1) / pp``. Queries attend on average to
    half the prompt (causal mask).

    A modality encoder (``wl.encoder_params`` not None) first encodes the replica's
    ``b * encoder_tokens`` tokens on the first stage (its weights split over the
    tensor-parallel group, read once): its roofline time and work are added, not
    pipelined. Its tokens are part of ``input_tokens`` (`diffhw.trends.multimodal`).
    """
    b = wl.batch / par.dp
    n = prefill_chunks(hw, wl, par)
    t, work = chain(hw, model, wl, par, b * wl.input_tokens / n, b / n, (wl.input_tokens + 1.0) / 2.0,
                    False, tau)
    t, work = t.scale((n + par.pp - 1.0) / par.pp), work.scale(n)
    if wl.encoder_params is None:  # text only: no encoder in the program (static)
        return t, work
    et, ework = _encoder(hw, model, wl, par, b * wl.encoder_tokens, tau)
    return jax.tree_util.tree_map(jnp.add, t, et), jax.tree_util.tree_map(jnp.add, work, ework)


def _encoder(hw, model, wl, par, tokens, tau):
    """`StepTime` and `Work` of a modality encoder encoding `tokens` tokens on one
    tensor-parallel rank (only traced for a workload that has one: `ttft`)."""
    wb, ab, kvb = wl.weight_precision.bytes, wl.activation_precision.bytes, wl.kv_precision.bytes
    op = encoder_op(model, shards_for(model, par.tp, par.ep), wl.encoder_params, tokens, wb, ab)
    c, mem = roofline(hw, [("encoder", 1, op)], hw.matmul_flop_per_s(wl.activation_precision, tau),
                      access_bytes(model, wb, ab, kvb), tau, offload=False)
    reads, writes = op.reads_writes()
    zero = jnp.zeros(())
    return StepTime(c, mem, zero, zero), Work(op.flops, op.bytes, zero, reads, writes)


def memory_per_chip(hw, model, wl, par, batch=None):
    """Bytes one chip stores, by data class: ``(weights, kv_cache, context, activations)``.

    Weights include a modality encoder's (``wl.encoder_params``, split like the model's).
    KV: every sequence of the replica at its full length ``input + output``; with beam
    search the prompt's once and the output's once per beam. Activations: the working
    set of one Prefill chunk (residual stream, attention and FFN intermediates) plus
    fp32 logits of the Decode batch (every beam's row).
    """
    b = (wl.batch if batch is None else batch) / par.dp
    shards = shards_for(model, par.tp, par.ep)
    w = weight_bytes_per_chip(model, shards, par.pp, wl.weight_precision.bytes, wl.weight_precision.head_bytes)
    if wl.encoder_params is not None:  # a modality encoder's
        w = w + wl.encoder_params / (par.tp * par.pp) * wl.weight_precision.bytes
    kv = kv_bytes_per_chip(
        model, shards, par.pp, b, wl.input_tokens + wl.output_tokens, wl.kv_precision.bytes, wl.beam_width,
        wl.output_tokens,
    )
    ctx = kv_bytes_per_chip(model, shards, par.pp, 1.0, wl.shared_context_tokens, wl.kv_precision.bytes)
    return w, kv, ctx, activation_bytes_per_chip(hw, model, wl, par, b)


def activation_bytes_per_chip(hw, model, wl, par, replica_batch):
    chunk = _smooth.smooth_min(replica_batch * wl.input_tokens, hw.profile.max_batched_tokens)
    ffn_width = _smooth.smooth_max(
        model.ffn_dim, model.experts_per_token * model.expert_ffn_dim + 1.0
    )
    per_token = (4.0 * model.d_model + 2.0 * ffn_width / par.tp) * wl.activation_precision.bytes
    logits = replica_batch * wl.beam_width / par.pp * model.vocab_size / par.tp * 4.0
    return chunk * per_token + logits
