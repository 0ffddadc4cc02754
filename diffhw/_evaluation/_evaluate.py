"""Public entry points: `evaluate` a design and find its `max_throughput` batch."""

import dataclasses
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import _smooth
from .._economics._cost import Economics, economics
from .._errors import InputError
from .._hardware import _memory, _near_memory
from .._hardware._hardware import Hardware
from .._hardware._memory import TierReport
from .._hardware._technology import Technology
from .._jit import _at_top_level, filter_jit
from .._timing._latency import COMPONENTS, StepTime, activation_bytes_per_chip, memory_per_chip, tpot, ttft
from .._workload._operators import access_bytes
from .._workload._transformer import Transformer
from .._workload._workload import Parallelism, Workload

Scalar = Float[Array, ""]


class Metrics(eqx.Module):
    """Everything `evaluate` reports, in SI units (per chip where it says so).

    - `tpot_s`: time per output token, averaged over the generated tokens.
    - `ttft_s`: time to first token (Prefill of the batch's prompts).
    - `e2e_latency_s`: ``ttft + (output_tokens - 1) * tpot``.
    - `output_tokens_per_s`: system output tokens per second over a whole request
      (``batch * output_tokens / e2e``, Prefill included).
    - `decode_tokens_per_s`: system tokens per second while decoding (``batch / tpot``).
    - `per_user_tokens_per_s`: ``1 / tpot``.
    - `memory_required_bytes`, `weight_bytes`, `kv_cache_bytes`, `activation_bytes`:
      per chip.
    - `memory_capacity_bytes`: main memory per chip; `memory_usable_bytes`: usable
      bytes of all tiers per chip (capacity * memory_utilization).
    - `memory_margin`: the tightest tier's ``usable / occupancy - 1`` (>= 0 when it fits).
    - `max_batch`: the largest whole batch whose KV cache fits (system-wide).
    - `decode`, `prefill`: `StepTime` breakdowns of one Decode step (averaged over the
      context) and of the whole Prefill pass.
    - `chips`: chips in the system.
    - `context_bytes`: per chip, the KV cache of the shared read-only context.
    - `tiers`: a `TierReport` (occupancy, traffic, wear-out lifetime per memory tier).
    - `economics`: `Economics` (energy, power, area, cost, TCO, carbon) when a
      `Technology` was given, else None.
    """

    tpot_s: Scalar
    ttft_s: Scalar
    e2e_latency_s: Scalar
    output_tokens_per_s: Scalar
    decode_tokens_per_s: Scalar
    per_user_tokens_per_s: Scalar
    memory_required_bytes: Scalar
    weight_bytes: Scalar
    kv_cache_bytes: Scalar
    activation_bytes: Scalar
    memory_capacity_bytes: Scalar
    memory_usable_bytes: Scalar
    memory_margin: Scalar
    max_batch: Scalar
    decode: StepTime
    prefill: StepTime
    chips: Scalar
    context_bytes: Scalar
    tiers: TierReport
    economics: Economics | None = None

    @property
    def fits(self):
        return self.memory_margin >= 0.0

    @property
    def bound_index(self):
        parts = jnp.stack(
            [self.decode.compute_s, self.decode.memory_s, self.decode.communication_s, self.decode.overhead_s]
        )
        return jnp.argmax(parts, axis=0)


#: The value checks of every evaluation. Every float leaf of the hardware (its profile,
#: tiers, near memory, network), the workload, the parallelism and the technology must
#: be finite and >= 0; these leaves are held to a stricter rule: rates, sizes and counts
#: positive, latencies and overheads non-negative, efficiencies and shares fractions.
_POSITIVE = ("hardware.flop_per_s_fp32", "hardware.flop_per_s_bf16", "hardware.flop_per_s_fp8",
             "hardware.flop_per_s_int8", "hardware.flop_per_s_fp4", "hardware.memory_capacity_bytes",
             "hardware.memory_bandwidth_bytes_per_s", "hardware.link_bandwidth_bytes_per_s",
             "hardware.profile.max_batched_tokens", "hardware.profile.max_batch_size",
             "hardware.profile.fp8_compute_ratio", "hardware.profile.fp4_compute_ratio",
             "hardware.profile.int8_compute_ratio", "workload.batch", "workload.input_tokens",
             "workload.output_tokens", "parallelism.tp", "parallelism.pp", "parallelism.dp", "parallelism.ep",
             "workload.weight_precision.bits", "workload.activation_precision.bits", "workload.kv_precision.bits",
             "technology.lifetime_s", "technology.facility_lifetime_s", "technology.reticle_mm2",
             "technology.wafer_diameter_mm", "technology.yield_alpha", "technology.interposer_area_factor",
             "technology.server_capex_multiplier", "technology.server_power_ratio",
             "technology.chip_price_multiplier", "technology.compute_mm2_per_flop_per_s",
             "technology.sram_mm2_per_byte", "technology.wafer_usd")
_FRACTIONS = ("workload.weight_precision.read_efficiency", "hardware.matmul_efficiency",
              "hardware.profile.bandwidth_efficiency", "hardware.profile.compute_efficiency",
              "hardware.profile.network_efficiency", "hardware.profile.memory_utilization",
              "hardware.profile.moe_efficiency", "technology.bond_yield")
# (0/1 switches such as on_interposer stay under the default rule: finite differences and
# sensitivities step them slightly past 1.)
_UNIT = ("technology.static_fraction", "technology.network_capex_fraction",
         "hardware.tiers[].buffered_append_fraction")
# every memory tier (``hardware.tiers[i]``): sizes, rates, latency and wear are positive
_POSITIVE += tuple(f"hardware.tiers[].{f}" for f in (
    "capacity_bytes", "read_bandwidth_bytes_per_s", "write_bandwidth_bytes_per_s", "read_latency_s",
    "granularity_bytes", "prefetch_buffer_bytes", "endurance_cycles"))
_RULES = {**{p: "> 0 and finite" for p in _POSITIVE}, **{p: "in (0, 1] and finite" for p in _FRACTIONS},
          **{p: "in [0, 1] and finite" for p in _UNIT}, "technology.pue": ">= 1 and finite",
          "workload.beam_width": ">= 1 and finite"}
_DEFAULT_RULE = ">= 0 and finite"
#: A derived check: the near-memory thermal budget covers its memory's own power.
_THERMAL = ("a thermal budget (power_density_w_per_mm2 x footprint_mm2) that covers the stacked memory's "
            "own power at full internal bandwidth (the margin, W, is >= 0): below it the near-memory logic "
            "has no power left to compute, the design is thermally infeasible (raise power_density_w_per_mm2 "
            "or footprint_mm2, or lower bandwidth_multiple or pj_per_bit)")
#: What each kind of check lets through (NaN passes none); `xp` is jax.numpy or numpy.
_PASSES = {
    "> 0 and finite": lambda v, xp=jnp: xp.isfinite(v) & (v > 0),
    ">= 0 and finite": lambda v, xp=jnp: xp.isfinite(v) & (v >= 0),
    "in (0, 1] and finite": lambda v, xp=jnp: (v > 0) & (v <= 1),
    "in [0, 1] and finite": lambda v, xp=jnp: (v >= 0) & (v <= 1),
    ">= 1 and finite": lambda v, xp=jnp: xp.isfinite(v) & (v >= 1),
    _THERMAL: lambda v, xp=jnp: xp.isfinite(v) & (v >= 0),
}


def _path_name(path) -> str:
    out = ""
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            out += str(k.key)
        elif isinstance(k, jax.tree_util.GetAttrKey):
            out += "." + k.name
        elif isinstance(k, jax.tree_util.SequenceKey):
            out += f"[{k.idx}]"
        else:
            out += str(k)
    return out


def _is_number(x) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, (int, float)):
        return True
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def _check_table(hw, wl, par, tech=None):
    """``[(path, allowed, leaf)]``: every numeric leaf of the design with its rule,
    grouped by rule, scalars first (the order of `_bad_values`' flags). Depends only on
    the structure, so a trace and the host agree on it."""
    tree = {"hardware": hw, "workload": wl, "parallelism": par}
    if tech is not None:
        tree["technology"] = tech
    rows = [(_path_name(p), leaf) for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0] if _is_number(leaf)]
    rows = [(name, _RULES.get(re.sub(r"\[\d+\]", "[]", name), _DEFAULT_RULE), leaf) for name, leaf in rows]
    if hw.near_memory is not None:
        rows.append(("hardware.near_memory thermal margin (W)", _THERMAL, _near_memory.thermal_margin_w(hw)))
    order = {rule: i for i, rule in enumerate(_PASSES)}
    return sorted(rows, key=lambda r: (np.size(r[2]) != 1, order[r[1]]))


def _bad_values(hw: Hardware, wl: Workload, par: Parallelism, tech=None, rows=None):
    """One flag per `_check_table` row (`rows`, if the caller built it), true when its
    check fails (one vectorised test per rule, so the checks add few operations)."""
    rows = _check_table(hw, wl, par, tech) if rows is None else rows
    flags = []
    for rule, test in _PASSES.items():
        scalars = [jnp.reshape(jnp.asarray(leaf, dtype=float), (1,)) for _, r, leaf in rows
                   if r == rule and np.size(leaf) == 1]
        if scalars:
            flags.append(~test(jnp.concatenate(scalars)))
    arrays = [jnp.reshape(jnp.any(~_PASSES[r](jnp.asarray(leaf, dtype=float))), (1,))
              for _, r, leaf in rows if np.size(leaf) != 1]
    return jnp.concatenate(flags + arrays)


def _checked(hw: Hardware, wl: Workload, par: Parallelism, tech=None):
    """The value checks inside `jit`, for traced values (a user's `jit`, `grad`, `vmap`):
    raises (via `eqx.branched_error_if`, a host callback) naming the first failing
    field."""
    rows = _check_table(hw, wl, par, tech)
    msgs = [f"{path} must be {allowed}" for path, allowed, _ in rows]
    bad = _bad_values(hw, wl, par, tech, rows)
    return eqx.branched_error_if(hw, jnp.any(bad), jnp.argmax(bad), msgs)


def _is_traced(*trees) -> bool:
    # no trace is active (a script's or notebook's call): nothing can be a tracer
    if _at_top_level():
        return False
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(trees))


def bad_reasons(bad, hw, wl, par, tech=None) -> list:
    """``"path must be ..."`` (the first failing check) for each row of flags `bad`
    (shape ``(n, checks)``, from `_bad_values` under `vmap`), ``""`` for a row that
    passes."""
    bad = np.asarray(bad).reshape(-1, np.shape(bad)[-1])
    rows = _check_table(hw, wl, par, tech)
    out = []
    for b in bad:
        if not b.any():
            out.append("")
            continue
        path, allowed, _ = rows[int(np.argmax(b))]
        out.append(f"{path} must be {allowed}")
    return out


def _not_finite(m: Metrics):
    """True when a metric is not finite (the tiers' wear-out times aside: an unlimited
    one is inf). Every value passed the checks, so values far beyond physical ones
    overflowed (float32 ends at 3.4e38) or cancelled."""
    leaves = jax.tree_util.tree_leaves([getattr(m, f.name) for f in dataclasses.fields(m) if f.name != "tiers"])
    return ~jnp.all(jnp.isfinite(jnp.concatenate([jnp.ravel(x) for x in leaves])))


#: What `_raise_bad` says when the checks pass but a metric is not finite.
_OVERFLOW = ("values whose metrics are finite: with these values a metric overflows or is undefined "
             "(a leaf far beyond physical values, e.g. 1e30 or 1e-30 in SI units)")


def _raise_bad(bad, hw, wl, par, tech=None):
    """Outside `jit`: raise `InputError` naming the first failing check of `bad` (the
    flags of `_bad_values`, computed by the compiled program; a last flag past them,
    from `_not_finite`, says a metric came out non-finite)."""
    bad = np.asarray(bad)
    if not bad.any():
        return
    rows = _check_table(hw, wl, par, tech)
    if int(np.argmax(bad)) >= len(rows):
        raise InputError("design", "a metric that is not finite", _OVERFLOW)
    path, allowed, leaf = rows[int(np.argmax(bad))]
    value = np.asarray(leaf, dtype=float)
    raise InputError(path, float(value) if value.ndim == 0 else value.tolist(), allowed)


def _call_checked(jitted, hw, model, wl, par, *rest, tech=None):
    """Call a compiled entry point that returns ``(result, flags)``: traced values are
    checked inside it; for concrete ones it compiles without the check (no host
    callback, so JAX can cache it) and the flags it returns are raised on here."""
    traced = _is_traced(hw, wl, par, rest)
    out, bad = jitted(hw, model, wl, par, *rest, traced)
    if not traced:
        _raise_bad(bad, hw, wl, par, tech)
    return out


def host_flags(hw: Hardware, wl: Workload, par: Parallelism, tech: Technology | None = None):
    """`_bad_values` on concrete values, in numpy on the host (nothing to compile)."""
    return np.array([not np.all(_PASSES[allowed](np.asarray(leaf, dtype=float), np))
                     for _, allowed, leaf in _check_table(hw, wl, par, tech)], dtype=bool)


def check_values(hw: Hardware, wl: Workload, par: Parallelism, tech: Technology | None = None) -> None:
    """The value checks of `evaluate` on concrete values, outside `jit`: raises
    `InputError` naming the first failing field, the value and what is allowed. Tools
    run it once on what they will evaluate, then compile without the checks."""
    _raise_bad(host_flags(hw, wl, par, tech), hw, wl, par, tech)


def _tier_ratios(hw, stored):
    """Usable capacity over occupancy of every tier (array)."""
    occ = _memory._per_tier(_memory.fractions_of(hw), stored)
    return _memory.capacities(hw) / _smooth.smooth_max(occ, 1.0)


def _max_batch(hw, model, wl, par):
    """Largest whole (system) batch whose memory fits in every tier, in closed form.

    Per tier ``t``, occupancy is ``f_w W + f_ctx C + f_kv K b + f_act A(b)`` with the
    weights ``W`` and shared context ``C`` independent of the batch, the KV cache ``K b``
    linear in it, and activations ``A(b)`` at most a full Prefill chunk plus logits
    linear in ``b``; solving each tier for ``b`` and taking the smallest gives the batch
    (exact once the Prefill chunk is full, a safe bound below that). 0 when even the
    weights do not fit.
    """
    w, kv1, ctx, _ = memory_per_chip(hw, model, wl, par, batch=par.dp)  # kv1: one sequence per replica
    logits1 = par.dp * wl.beam_width / par.pp * model.vocab_size / par.tp * 4.0 / par.dp  # per replica request
    chunk = activation_bytes_per_chip(hw, model, wl, par, 1e9) - logits1 * 1e9
    zero = jnp.zeros(())
    b = _memory.items_that_fit(hw, jnp.stack([w, zero, ctx, chunk]),
                               jnp.stack([zero, kv1, zero, zero + logits1]) / par.dp)
    return jax.lax.stop_gradient(jnp.floor(b))


def _metrics(hw: Hardware, model: Transformer, wl: Workload, par: Parallelism, tau, tech=None,
             checked=True) -> Metrics:
    """Every metric of a design. With `checked`, the value checks run inside the
    program (`_checked`: a host callback, which keeps the program out of JAX's
    persistent compilation cache); without, the caller has checked the values."""
    if checked:
        hw = _checked(hw, wl, par, tech)
    dec, dec_work = tpot(hw, model, wl, par, tau)
    pre, pre_work = ttft(hw, model, wl, par, tau)
    t_tok, t_first = dec.total_s, pre.total_s
    e2e = t_first + (wl.output_tokens - 1.0) * t_tok
    w, kv, ctx, act = memory_per_chip(hw, model, wl, par)
    stored = jnp.stack([w, kv, ctx, act])
    required = w + kv + ctx + act
    usable = jnp.sum(_memory.capacities(hw))
    ratios = _tier_ratios(hw, stored)
    margin = (ratios[0] if ratios.shape[0] == 1 else _smooth.smooth_min(*ratios, tau=tau)) - 1.0
    max_batch = _max_batch(hw, model, wl, par)
    thru = wl.batch * wl.output_tokens / e2e
    # Per-chip traffic over a request's life: Prefill (its chain covers all pp stages,
    # one rank each) and output - 1 Decode steps (pp micro-batches per step on pp stages).
    # Decode appends one token's KV at a time; Prefill writes each prompt's KV in one run
    # (its write amplification on a paged tier is ~1 whatever the write path).
    reads = (pre_work.reads_by_class / par.pp + (wl.output_tokens - 1.0) * dec_work.reads_by_class) / e2e
    appends = (wl.output_tokens - 1.0) * dec_work.writes_by_class / e2e
    bulk = pre_work.writes_by_class / par.pp / e2e
    access = access_bytes(model, wl.weight_precision.bytes, wl.activation_precision.bytes, wl.kv_precision.bytes)
    bulk_access = _memory.written_in_runs(access, wl.input_tokens)[1]
    tiers = _memory.tier_report(hw, stored, reads, appends, access, more_writes=((bulk, bulk_access),))
    econ = None
    if tech is not None:
        econ = economics(hw, tech, wl, par, t_tok, t_first, e2e, thru, dec_work, pre_work, tau)
    return Metrics(
        tpot_s=t_tok,
        ttft_s=t_first,
        e2e_latency_s=e2e,
        output_tokens_per_s=thru,
        decode_tokens_per_s=wl.batch / t_tok,
        per_user_tokens_per_s=1.0 / t_tok,
        memory_required_bytes=required,
        weight_bytes=w,
        kv_cache_bytes=kv,
        activation_bytes=act,
        memory_capacity_bytes=hw.memory_capacity_bytes,
        memory_usable_bytes=usable,
        memory_margin=margin,
        max_batch=max_batch,
        decode=dec,
        prefill=pre,
        chips=par.chips,
        context_bytes=ctx,
        tiers=tiers,
        economics=econ,
    )


def _with_static(module, **changes):
    """A copy of `module` with some static fields changed, without re-running field
    converters (they already ran; this keeps the per-call dispatch cheap)."""
    fields = object.__getattribute__(module, "__dict__")
    if all(fields[k] is v or (isinstance(v, (str, int)) and fields[k] == v) for k, v in changes.items()):
        return module
    new = object.__new__(type(module))
    object.__getattribute__(new, "__dict__").update(fields, **changes)
    return new


def _anonymous(hw: Hardware, model: Transformer, tech: Technology | None = None):
    """Drop static metadata that the maths does not read (names, descriptions, the
    CLI's default chip count, technology row names) so that designs differing only in
    them share one compiled trace."""
    profile = _with_static(hw.profile, name="")
    hw = _with_static(hw, name="", description="", profile=profile, default_chips=1)
    if tech is not None:
        tech = _with_static(tech, node="", memory="")
    return hw, _with_static(model, name="", description="", max_context=0), tech


def evaluate(
    hardware: Hardware,
    model: Transformer,
    workload: Workload,
    parallelism: Parallelism,
    tau: float = _smooth.DEFAULT_TAU,
    technology: Technology | None = None,
) -> Metrics:
    """Evaluate a design: latency, throughput, memory and the step-time breakdown.

    Differentiable in every float leaf of `hardware` (and its profile), `workload`
    and `parallelism`; `jax.vmap` it over stacked designs for sweeps. Compiled once per
    structure (model shape, topology): new values never retrace.

    **Arguments:**

    - `hardware`: a `Hardware` (e.g. ``diffhw.presets.hardware("h100-sxm")``).
    - `model`: a `Transformer` (e.g. ``diffhw.presets.model("llama-3.1-70b")``).
    - `workload`: a `Workload` (batch, lengths, precisions).
    - `parallelism`: a `Parallelism` (tp, pp, dp, ep).
    - `tau`: smoothing temperature of every smooth max (see `diffhw.smooth_max`).
    - `technology`: a `Technology` (e.g. ``diffhw.presets.technology_for("h100-sxm")``);
      when given, `Metrics.economics` holds energy, power, area, cost, TCO and carbon.

    **Returns:** a `Metrics`. Called at the top level (a script or notebook), its leaves
    are read-only NumPy arrays (float32 unless JAX runs in 64-bit): the compiled program
    returns them packed in one vector, which cuts a warm call by about a fifth
    (`benchmarks/speed.py`); inside a user's `jit`, `grad` or `vmap` they are traced
    JAX values as usual.
    """
    hardware, model, technology = _anonymous(hardware, model, technology)
    return _call_checked(_evaluate_jit, hardware, model, workload, parallelism, tau, technology, tech=technology)


@filter_jit(packed=True)  # one design per call from a notebook: NumPy results (`diffhw._jit`)
@eqx.debug.assert_max_traces(max_traces=None)  # counts traces (tests read the count)
def _evaluate_jit(
    hardware: Hardware,
    model: Transformer,
    workload: Workload,
    parallelism: Parallelism,
    tau: float = _smooth.DEFAULT_TAU,
    technology: Technology | None = None,
    traced: bool = True,
):
    """`Metrics` and the value checks' flags. Traced values are checked inside (a host
    callback raises); concrete ones return their flags for `evaluate` to raise on, so
    the compiled program has no callback."""
    m = _metrics(hardware, model, workload, parallelism, tau, technology, checked=traced)
    return m, jnp.concatenate([_bad_values(hardware, workload, parallelism, technology), _not_finite(m)[None]])


class ThroughputResult(eqx.Module):
    """`max_throughput`'s answer.

    - `batch`: the chosen whole batch (feasible: fits, meets the limits), 0 if none is.
    - `batch_continuous`: the best batch of the continuous search.
    - `feasible`: whether `batch` meets every constraint (False if even batch 1 fails).
    - `metrics`: the `Metrics` at `batch` (at batch 1 when nothing is feasible).
    """

    batch: Scalar
    batch_continuous: Scalar
    feasible: Array
    metrics: Metrics


def _feasible(m: Metrics, tpot_limit_s, ttft_limit_s):
    return (m.memory_margin >= 0.0) & (m.tpot_s <= tpot_limit_s) & (m.ttft_s <= ttft_limit_s)


def max_throughput(
    hardware: Hardware,
    model: Transformer,
    workload: Workload,
    parallelism: Parallelism,
    tpot_limit_s=jnp.inf,
    ttft_limit_s=jnp.inf,
    tau: float = _smooth.DEFAULT_TAU,
    technology: Technology | None = None,
) -> ThroughputResult:
    """The batch that maximises output tokens/s under memory, TPOT and TTFT limits.

    As in MLPerf's Server and Interactive scenarios, a design is judged by the
    throughput it reaches while every request meets the latency limits. The batch of
    `workload` is ignored. The search is continuous (a log-spaced scan of the batch
    between 1 and the smaller of the memory limit and the engine's limit, ``dp`` x
    `Profile.engine_batch_limit`: no engine schedules more sequences per replica than
    its maximum batch size or its token budget per step; then a finer scan around the
    best point), then
    rounded: the neighbouring whole batches are re-evaluated and the best feasible
    one is kept.

    **Arguments:** as `evaluate`, plus `tpot_limit_s` and `ttft_limit_s` (seconds;
    ``inf`` for none). With `technology`, the chosen design's metrics carry economics.

    **Returns:** a `ThroughputResult`.
    """
    hardware, model, technology = _anonymous(hardware, model, technology)
    limits = jnp.asarray(tpot_limit_s, dtype=float), jnp.asarray(ttft_limit_s, dtype=float)
    return _call_checked(_max_throughput_jit, hardware, model, workload, parallelism, *limits, tau, technology,
                         tech=technology)


@filter_jit(packed=True)  # NumPy results at the top level (`_evaluate_jit`)
@eqx.debug.assert_max_traces(max_traces=None)
def _max_throughput_jit(
    hardware: Hardware,
    model: Transformer,
    workload: Workload,
    parallelism: Parallelism,
    tpot_limit_s=jnp.inf,
    ttft_limit_s=jnp.inf,
    tau: float = _smooth.DEFAULT_TAU,
    technology: Technology | None = None,
    traced: bool = True,
):
    hw, wl, par = hardware, workload, parallelism

    def run(batch, tech=None):
        return _metrics(hw, model, eqx.tree_at(lambda w: w.batch, wl, batch), par, tau, tech, checked=traced)

    def score(batch):
        m = run(batch)
        ok = _feasible(m, tpot_limit_s, ttft_limit_s)
        return jnp.where(ok, m.output_tokens_per_s, -1.0)

    # The three scans go through one jitted, vmapped score of a fixed width (shorter
    # scans padded with their last batch), so the model is traced once for all of them.
    width = 48
    scores = jax.jit(jax.vmap(score))

    def scan(batches):
        n = batches.shape[0]
        return scores(jnp.concatenate([batches, jnp.repeat(batches[-1:], width - n)]))[:n]

    engine = jax.lax.stop_gradient(par.dp * hw.profile.engine_batch_limit())
    upper = _smooth.exact_max(_smooth.exact_min(_max_batch(hw, model, wl, par), jnp.floor(engine)), 1.0)
    grid = jnp.exp(jnp.linspace(0.0, 1.0, width) * jnp.log(upper))
    s = scan(grid)
    i = jnp.argmax(s)
    lo = grid[_smooth.exact_max(i - 1, 0)]
    hi = grid[_smooth.exact_min(i + 1, grid.shape[0] - 1)]
    fine = jnp.exp(jnp.linspace(jnp.log(lo), jnp.log(hi), 32))
    sf = scan(fine)
    best = fine[jnp.argmax(sf)]
    # Round: whole batches near the continuous optimum, and whole multiples of dp.
    cands = jnp.floor(best) + jnp.arange(-2.0, 3.0)
    cands = _smooth.exact_clip(cands, 1.0, upper)
    sc = scan(cands)
    j = jnp.argmax(sc)
    ok = sc[j] > 0.0
    batch = jnp.where(ok, cands[j], 0.0)
    metrics = run(jnp.where(ok, cands[j], 1.0), technology)
    flags = jnp.concatenate([_bad_values(hw, wl, par, technology), _not_finite(metrics)[None]])
    return ThroughputResult(batch, best, ok, metrics), flags


def bound_name(metrics: Metrics) -> str:
    """Which resource binds the Decode step: one of `COMPONENTS` (outside `jit`)."""
    return COMPONENTS[int(metrics.bound_index)]
