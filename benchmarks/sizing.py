"""Gradient sizing (``diffhw.size``) against black-box search on the same problems.

For each sizing problem (a design, bounded variables, an objective to minimise, budgets)
every method is run on the *exact* model (``tau = 0``: hard max and min, the same
evaluation ``size`` re-checks its rounded candidates with): a point counts only if it
meets every budget (and ``memory_margin >= 0``, which ``size`` always adds) exactly,
with its whole-number variables (batch, chips) rounded to an allowed value.

Best known = the lowest feasible objective any method found, its long runs included.
For each method: the model evaluations and the wall time it needs to return a feasible
design within 1% of that, and both as ratios to gradient sizing's.

Methods:

- **gradient**: ``diffhw.size`` on a ladder of budgets (starts x outer x inner steps,
  smallest first), once with its default inner optimiser (Adam) and once with
  ``method="lbfgs"`` (L-BFGS with a zoom line search, a shorter ladder); for each, the
  first rung whose result is within 1% is the one reported (hindsight, as for every
  method here), and ratios are to the one of the two that needed fewer evaluations.
  Evaluations = the model evaluations ``size`` reports (each *with its gradient*: one
  per Adam step; per L-BFGS step one plus every line-search trial, none while a start
  is settled) plus the integer candidates it re-checks exactly. The "adjusted" count
  charges each gradient evaluation ``k`` evaluations, ``k`` = time(vmapped
  value_and_grad of the smooth objective and margins) / time(vmapped exact evaluation),
  both jitted, measured here on this machine per problem (the fastest of 30 calls
  each). Wall time = ``SizingResult.seconds`` of that rung: its search compiles afresh
  (each budget is a new structure), tracing and XLA compilation included; ``size``'s
  small exact-evaluation jits may already be cached by an earlier rung. Its defaults
  (`DEFAULTS`, read from ``size``'s signature: 4 starts (2 beyond ten variables), 6 x
  (80, or 8 per variable beyond ten) steps) are shown as a
  row too, and are part of the long runs behind the best known.
- **random**: log-uniform samples within the bounds, in vmapped batches of 1024;
  evaluations until the running best feasible is within 1% (counted to the sample;
  wall time to the end of its batch). Median over seeds.
- **grid**: a full factorial grid, log-spaced per axis (whole-number axes deduplicated
  after rounding), ``n = 2, 3, 4, 5, 6, 8, 10, 12, 15, ...`` points per axis (+25% a
  step past 4), each grid on its own; the smallest ``n`` whose best feasible point is
  within 1% is reported (that grid's size and time only, not the smaller ones before).
- **CMA-ES** (the ``cma`` package): in the unit cube of the log-scaled bounds
  (``x = lower * (upper / lower) ** u``), bounded by ``cma``'s ``bounds`` option,
  starting from the baseline (as ``size``'s first start), ``sigma0 = 0.3``, default
  population, IPOP restarts (population doubled) when it stops. Budgets by penalty:
  fitness = log(objective) + 100 x sum of the log-ratio violations (a point over a
  budget ranks by how far over), but only exactly feasible points count as found.
  Each population is evaluated in one call of a jitted vmap (padded to a fixed size,
  so it compiles once). Median over seeds.

A mix whose designs share a structure (problem f: one model's traffic classes) is
evaluated as ``size`` evaluates it, each group of designs in one ``vmap``
(``diffhw._tools._sizing._search._groups``), by every method here.

Black-box wall times include compiling their evaluator (one compile per method,
reported once and added to each run), so every method is timed from a cold start.
All seeds are fixed.

Usage::

    python benchmarks/sizing.py                 # six problems (~75 minutes on 2 CPU cores)
    python benchmarks/sizing.py --quick         # problems a and b, smaller budgets (~5 minutes)
    python benchmarks/sizing.py --quick --problems a,b,d   # any problems, quick budgets

Progress goes to stderr; each problem's table is printed when it is done.
"""

import argparse
import inspect
import math
import statistics
import sys
import time

import cma
import jax
import jax.numpy as jnp
import numpy as np

import diffhw
from diffhw import variable
from diffhw._cli._size import DEFAULT_VARIABLES, MAIN_JOB, SIZE_BATCH
from diffhw._evaluation._design import anonymous
from diffhw._tools._sizing._search import _groups, _values

GOAL = 20.0  # required ratio: best black-box evaluations / gradient evaluations
WITHIN = 0.01  # "within 1% of the best known"
PENALTY = 100.0  # CMA-ES penalty weight on log-ratio violations
BATCH = 1024  # random-search batch
GRID_CHUNK = 4096  # grid evaluation chunk
CMA_PAD = 256  # CMA-ES population padded to this (one compile)

#: size() budgets tried, smallest first: (starts, outer_steps, inner_steps).
LADDER = ((1, 2, 10), (1, 2, 20), (2, 4, 20), (2, 4, 40), (4, 6, 80), (8, 8, 120))
QUICK_LADDER = LADDER[:4]
#: Tried after `LADDER` when none of it reached 1%: one start (the baseline) with long
#: inner loops. On the 89-variable fleet (f) more starts do not help but longer runs per
#: start do: 8 x (8 x 120) ends +8.9% over the best known, 1 x (4 x 1000) within 0.4%.
LONG_LADDER = ((1, 4, 500), (1, 4, 1000), (1, 8, 600))
#: The same for size(method="lbfgs"): fewer steps per rung (each may cost several
#: evaluations: line-search trials are counted).
LBFGS_LADDER = ((1, 1, 10), (1, 2, 10), (1, 2, 20), (2, 3, 20), (4, 4, 30))
QUICK_LBFGS_LADDER = LBFGS_LADDER[:3]
#: diffhw.size's own defaults (starts, outer_steps, inner_steps), read from its signature.
DEFAULTS = tuple(inspect.signature(diffhw.size).parameters[n].default for n in ("starts", "outer_steps", "inner_steps"))
#: The methods `--methods` picks from ("gradient": size()'s ladder and its defaults).
METHODS = ("gradient", "cmaes", "random", "grid")
#: Each problem's best known objective (usd_per_million_tokens), from the full runs in
#: benchmarks/README.md (every method, long runs included; JAX 0.10.2, 2-core CPU). A run
#: judges every method against min(this, the best it finds), so a run of a subset of
#: methods has the same target; a run that beats it says so (update the value here).
#: (a), (c) and (e) re-recorded on 2026-12-07 (CMA-ES, best of 3 seeds x 20k-100k evaluations)
#: after the model's MoE-kernel, scale-out and memory-capacity changes raised their costs;
#: (f) from size() with its defaults (2 x (6 x 712) and the exact polish) the same day.
#: (c), (d) and (e) re-recorded on 2026-12-08 (CMA-ES, best of 3 seeds x 20k evaluations;
#: (d): size()'s own, lower) after collectives began to carry bf16 hidden states (FP8
#: tensor-parallel and expert-parallel designs communicate more); (a) and (b) unchanged;
#: (f) from size() with its defaults (0.922300 -> 0.972033; no CMA-ES run on (f) since).
#: (a)-(e) re-recorded on 2026-12-08 (session 14; CMA-ES, best of 3 seeds x 20k evaluations,
#: each matched by size()'s ladder) after the default profile's bf16 share rose 0.56 -> 0.64
#: (FP8 0.88 of it: measured matmul shares), which made the bf16 designs of (a), (b) and (e)
#: cheaper (-8.4%, -7.5%, -3.0%) and the FP8 ones of (c) and (d) by 0.3%.
BEST_KNOWN = {"a": 0.0168974, "b": 0.227665, "c": 1.35287, "d": 3.01069, "e": 0.838369, "f": 0.955833}


# --------------------------------------------------------------------------- problems


class Problem:
    """A design (or a mix: a list of designs sharing the hardware, with `shares`), its
    variables, one objective metric (minimised; for a mix its `shares`-weighted mean
    over the designs), and constraints (met by every design)."""

    def __init__(self, key, title, design, variables, objective, constraints, shares=None, skip_lbfgs=None,
                 cma_evals=None):
        self.key, self.title, self.design = key, title, design
        # skip_lbfgs: None, or why size(method="lbfgs") is not run on this problem;
        # cma_evals: a larger CMA-ES budget per seed than the mode's, or None
        self.skip_lbfgs, self.cma_evals = skip_lbfgs, cma_evals
        self.designs = tuple(design) if isinstance(design, (list, tuple)) else (design,)
        self.shares = None if shares is None else tuple(float(s) for s in shares)
        weights = np.ones(len(self.designs)) if shares is None else np.asarray(shares, dtype=float)
        self.weights = weights / weights.sum()
        self.variables = tuple(variables)
        self.objective = objective
        self.constraints = tuple(diffhw.constraint(c) for c in constraints)
        self.lo = np.asarray([v.lower for v in self.variables])
        self.hi = np.asarray([v.upper for v in self.variables])
        self.base_leaves = [{p: diffhw.get_value(d, p) for v in self.variables if v.scale and self._sets(v, i)
                             for p in v.paths} for i, d in enumerate(self.designs)]
        self.allowed = {i: self._allowed(v) for i, v in enumerate(self.variables) if v.integer}
        base = [1.0 if v.scale else float(diffhw.get_value(self.designs[v.workload or 0], v.paths[0]))
                for v in self.variables]
        # Designs of one model and variable pattern evaluated as one vmap, as size() does
        # (diffhw._tools._sizing._search._groups); a mix of distinct models, design by design.
        groups, g_bases, g_leaves = _groups(tuple(anonymous(d) for d in self.designs),
                                            tuple((v.paths, v.scale, v.workload) for v in self.variables),
                                            tuple(self.base_leaves))
        self.groups = (groups, g_bases, g_leaves) if any(len(g.members) > 1 for g in groups) else None
        self.baseline_u = np.log(np.clip(base, self.lo, self.hi) / self.lo) / np.log(self.hi / self.lo)

    @property
    def dim(self):
        return len(self.variables)

    @staticmethod
    def _sets(v, i):
        return v.workload is None or v.workload == i

    def _allowed(self, v):
        """Whole values within the bounds (for parallel degrees: those valid for every
        model the variable sets)."""
        values = v.choices or tuple(float(k) for k in range(math.ceil(v.lower), math.floor(v.upper) + 1))
        if any(p.startswith("parallelism.") for p in v.paths):
            ok = []
            for k in values:
                try:
                    for i, design in enumerate(self.designs):
                        if self._sets(v, i):
                            d = diffhw.set_values(design, {p: k for p in v.paths})
                            diffhw.validate_parallelism(design.model, d.parallelism)
                except diffhw.InputError:
                    continue
                ok.append(k)
            values = ok
        return np.asarray(values, dtype=float)

    def decode(self, u):
        """Unit-cube points (n, d) -> variable values, whole-number variables snapped to
        the nearest allowed value."""
        x = self.lo * (self.hi / self.lo) ** np.clip(u, 0.0, 1.0)
        for i, allowed in self.allowed.items():
            x[:, i] = allowed[np.abs(allowed[None, :] - x[:, i : i + 1]).argmin(axis=1)]
        return x

    @property
    def units(self):
        """How many parts a mix is evaluated in (`values`' `only`): its designs, or its
        groups of designs (vmapped) when it has any."""
        return len(self.designs) if self.groups is None else len(self.groups[0])

    def values(self, x, tau, only=None):
        """Metric values of every design (or of design `only`) at variable values `x`
        (traceable; a tuple). With groups: one dict per group (`only`: a group index),
        its values arrays over the group's designs."""
        if self.groups is not None:
            groups, g_bases, g_leaves = self.groups
            keep = range(len(groups)) if only is None else (only,)
            return _values(tuple(groups[g] for g in keep), tuple(g_bases[g] for g in keep),
                           tuple(g_leaves[g] for g in keep), x, tau)
        out = []
        for d, design in enumerate(self.designs):
            if only is not None and d != only:
                continue
            leaves = {}
            for i, v in enumerate(self.variables):
                if self._sets(v, d):
                    for p in v.paths:
                        leaves[p] = x[i] * self.base_leaves[d][p] if v.scale else x[i]
            out.append(diffhw.design_values(diffhw.set_values(design, leaves), tau))
        return tuple(out)

    def objective_value(self, vals, only=None):
        """The objective: one design's metric, or the weighted mean over a mix (`vals`
        of design `only` alone: its metric)."""
        if self.groups is not None:
            groups = self.groups[0] if only is None else (self.groups[0][only],)
            total = 0.0
            for g, v in zip(groups, vals, strict=True):
                w = self.weights[list(g.members)]
                if only is not None:
                    w = w / w.sum()
                total = total + jnp.sum(jnp.asarray(w, jnp.float32) * jnp.reshape(v[self.objective], (-1,)))
            return total
        if only is not None:
            return vals[0][self.objective]
        return sum(w * v[self.objective] for w, v in zip(self.weights, vals, strict=True))

    def violation(self, vals):
        """Sum of constraint violations over the designs (log ratio for positive metrics,
        difference for memory_margin), 0 when every budget is met; as `diffhw.size`
        measures margins."""
        total = 0.0
        for v in vals:
            mm = jnp.maximum(-v["memory_margin"], 0.0)
            total = total + (mm if self.groups is None else jnp.sum(mm))
            for c in self.constraints:
                m = v[c.metric]
                for bound, sign in ((c.upper, 1.0), (c.lower, -1.0)):
                    if bound is None:
                        continue
                    if c.metric in ("memory_margin", "tier_lifetime_margin") or bound <= 0:
                        g = sign * (bound - m)
                    else:
                        g = sign * (jnp.log(bound) - jnp.log(jnp.maximum(m, 1e-30)))
                    total = total + (jnp.maximum(-g, 0.0) if self.groups is None else jnp.sum(jnp.maximum(-g, 0.0)))
        return total


def problems(quick):
    out = []
    d = diffhw.from_presets("h100-sxm", "llama-3.1-8b", chips=1, batch=16, input_tokens=1024, output_tokens=256)
    out.append(Problem(
        "a", "llama-3.1-8b, 1 x H100: memory bandwidth, batch; tpot <= 12 ms, peak power <= 800 W",
        d, [variable("memory_bandwidth", 5e11, 1e13), variable("batch", 1, 256)],
        "usd_per_million_tokens", ["tpot_s<=0.012", "peak_power_w<=800"]))
    d = diffhw.from_presets("h100-sxm", "llama-3.1-70b", tp=8, batch=32, input_tokens=2048, output_tokens=256)
    out.append(Problem(
        "b", "llama-3.1-70b, 8 x H100 (tp 8): compute, mem bw, mem cap, SRAM, link bw, batch; "
             "tpot <= 30 ms, area <= 858 mm2, power <= 1000 W per chip",
        d, [variable("compute", 0.25, 4.0), variable("memory_bandwidth", 1e12, 2e13),
            variable("memory_capacity", 4e10, 4e11), variable("sram", 1e7, 1e9),
            variable("link_bandwidth", 5e10, 3.6e12), variable("batch", 1, 512)],
        "usd_per_million_tokens", ["tpot_s<=0.03", "chip_area_mm2<=858", "peak_power_w<=1000"]))
    if not quick:
        d = diffhw.from_presets(batch=SIZE_BATCH, **MAIN_JOB)
        vs = [variable(n, lo, hi, paths=("parallelism.tp", "parallelism.ep") if n == "chips" else None)
              for n, lo, hi, _ in DEFAULT_VARIABLES]
        out.append(Problem(
            "c", "'diffhw size' main job: deepseek-v3 fp8 32K context on H200, 7 variables incl. chips; "
                 "tpot <= 50 ms, area <= 858 mm2, power <= 1000 W per chip",
            d, vs, "usd_per_million_tokens", ["tpot_s<=0.05", "chip_area_mm2<=858", "peak_power_w<=1000"]))
        d = diffhw.from_presets("b200-hbf", "llama-3.1-405b", tp=8, batch=16, input_tokens=32768,
                                output_tokens=1024, precision="fp8", shared_context_tokens=16384)
        out.append(Problem(
            "d", "HBM + HBF (b200-hbf), llama-3.1-405b fp8, 32K context (16K shared), 8 chips: compute, HBM bw "
                 "and capacity, SRAM, link bw and latency, HBF capacity, bandwidth and prefetch buffer, weights "
                 "and shared context in HBF, batch; tpot <= 50 ms, area <= 2200 mm2, power <= 2100 W per chip, "
                 "HBF lifetime",
            d, [variable("compute", 0.25, 4.0), variable("memory_bandwidth", 1e12, 2e13),
                variable("memory_capacity", 2e10, 4e11), variable("sram", 1e7, 1e9),
                variable("link_bandwidth", 1e11, 3.6e12), variable("link_latency", 1e-7, 5e-6),
                variable("hardware.tiers[0].capacity_bytes", 1e11, 8e12),
                variable("hardware.tiers[0].read_bandwidth_bytes_per_s", 1e12, 3e13),
                variable("hardware.tiers[0].prefetch_buffer_bytes", 1e6, 2e8),
                variable("placement.weights[1]", 0.01, 0.99), variable("placement.context[1]", 0.01, 0.99),
                variable("batch", 1, 512)],
            "usd_per_million_tokens",
            ["tpot_s<=0.05", "chip_area_mm2<=2200", "peak_power_w<=2100", "tier_lifetime_margin>=0"]))
        designs = [diffhw.from_presets("h200-sxm", m, tp=8, batch=32, input_tokens=i, output_tokens=o, precision=p)
                   for m, i, o, p, _ in FLEET]
        vs = [variable("compute", 0.25, 4.0), variable("memory_bandwidth", 1e12, 2e13),
              variable("memory_capacity", 4e10, 6e11), variable("sram", 1e7, 1e9),
              variable("link_bandwidth", 5e10, 3.6e12), variable("link_latency", 1e-7, 5e-6)]
        for w, d in enumerate(designs):
            chips = ("parallelism.tp", "parallelism.ep") if d.model.n_experts > 1 else ("parallelism.tp",)
            vs += [variable("batch", 1, 512, workload=w),
                   variable("chips", 1, 64, paths=chips, choices=(1, 2, 4, 8, 16, 32, 64), workload=w)]
        out.append(Problem(
            "e", "a fleet on one chip design (H200-based): 6 workloads by token share (Llama-3.1 8B/70B/405B, "
                 "DeepSeek-V3, Qwen3-30B-A3B, Mixtral-8x22B; 4K-32K context); shared compute, HBM bw and capacity, "
                 "SRAM, link bw and latency, per workload batch and chips (1-64, powers of 2); fleet $/Mtoken; "
                 "tpot <= 50 ms for each, area <= 858 mm2, power <= 1000 W per chip",
            designs, vs, "usd_per_million_tokens", ["tpot_s<=0.05", "chip_area_mm2<=858", "peak_power_w<=1000"],
            shares=[w for *_, w in FLEET], cma_evals=100_000,
            skip_lbfgs="not run: compiling its line search over six models took over 4 minutes and 9 GB (stopped)"))
        designs = [diffhw.from_presets("b200-hbf", m, tp=8, batch=16, input_tokens=i, output_tokens=o,
                                       precision="fp8", shared_context_tokens=c) for m, _, i, o, c, _ in FLEET_HBF]
        vs = [variable("compute", 0.25, 4.0), variable("memory_bandwidth", 1e12, 2e13),
              variable("memory_capacity", 2e10, 4e11), variable("sram", 1e7, 1e9),
              variable("link_bandwidth", 1e11, 3.6e12), variable("link_latency", 1e-7, 5e-6),
              variable("hardware.tiers[0].capacity_bytes", 1e11, 8e12),
              variable("hardware.tiers[0].read_bandwidth_bytes_per_s", 1e12, 3e13),
              variable("hardware.tiers[0].prefetch_buffer_bytes", 1e6, 2e8)]
        for w, d in enumerate(designs):
            chips = ("parallelism.tp", "parallelism.ep") if d.model.n_experts > 1 else ("parallelism.tp",)
            vs += [variable("batch", 1, 512, workload=w),
                   variable("chips", 1, 64, paths=chips, choices=(1, 2, 4, 8, 16, 32, 64), workload=w),
                   variable("placement.weights[1]", 0.01, 0.99, workload=w),
                   variable("placement.context[1]", 0.01, 0.99, workload=w),
                   variable("placement.kv_cache[1]", 1e-4, 0.99, workload=w)]
        out.append(Problem(
            "f", "a fleet of 16 workloads on one HBM + HBF chip design (b200-hbf): Llama-3.1-70B, -405B and "
                 "DeepSeek-V3 in FP8, 5-6 traffic classes each (chat, coding, RAG, summarisation, reasoning, "
                 "agentic; 1.5K-32K prompts, 32-8K outputs, 0.5K-8K shared context); shared compute, HBM bw and "
                 "capacity, SRAM, link bw and latency, HBF capacity, bandwidth and prefetch buffer; per workload "
                 "batch, chips (1-64, powers of 2), shares of weights, shared context and KV cache in HBF; "
                 "fleet $/Mtoken; tpot <= 50 ms for each, area <= 2200 mm2, power <= 2100 W per chip, HBF lifetime",
            designs, vs, "usd_per_million_tokens",
            ["tpot_s<=0.05", "chip_area_mm2<=2200", "peak_power_w<=2100", "tier_lifetime_margin>=0"],
            shares=[w for *_, w in FLEET_HBF], cma_evals=200_000,
            skip_lbfgs="not run: its line search over a 16-design fleet is not in the contract (Adam only)"))
    return out


#: Problem (e)'s workloads: (model, input tokens, output tokens, precision, token share).
FLEET = (("llama-3.1-8b", 4096, 512, "bf16", 0.30), ("llama-3.1-70b", 8192, 512, "bf16", 0.25),
         ("llama-3.1-405b", 32768, 1024, "fp8", 0.10), ("deepseek-v3", 32768, 1024, "fp8", 0.15),
         ("qwen3-30b-a3b", 8192, 512, "bf16", 0.10), ("mixtral-8x22b", 16384, 512, "bf16", 0.10))

#: Problem (f)'s fleet: (model, traffic class, input tokens, output tokens, shared context
#: tokens, token share). Every class shares a prefix across its requests (a system prompt,
#: tool definitions, a retrieved corpus): the part HBF may hold read-only. Lengths:
#: - chat: Azure LLM inference trace 2023, conversation: median prompt 1,020, output 129
#:   tokens (Patel et al., "Splitwise", ISCA 2024); half of the prompt a shared system
#:   prompt (assumed).
#: - coding: the same trace, coding: median prompt 1,500, output 13 tokens (Splitwise);
#:   1K shared (assumed: repository context and instructions).
#: - RAG / long-document QA: Kimi's trace, mean input 7,590 and output 182 tokens, most of
#:   it reused prefix (Qin et al., "Mooncake", FAST 2025); 4K-6K shared documents (assumed).
#: - summarisation: 32K-token documents (LongBench-style long inputs, Bai et al. 2024;
#:   32K assumed), 512-token summaries, 2K shared instructions (assumed).
#: - reasoning: long chains of thought, thousands of output tokens per answer (DeepSeek-R1,
#:   Guo et al. 2025: responses grow to ~10K tokens in training); 8K assumed.
#: - agentic: tool-calling loops with long tool definitions and histories (assumed 4K-16K
#:   prompts, 1K-4K outputs, 4K-8K shared).
#: Token shares are an assumed fleet (sum 1), not from a published trace.
FLEET_HBF = (
    ("llama-3.1-70b", "chat", 1024, 128, 512, 0.10),
    ("llama-3.1-70b", "coding", 1536, 16, 1024, 0.06),
    ("llama-3.1-70b", "rag", 8192, 192, 4096, 0.08),
    ("llama-3.1-70b", "summarisation", 32768, 512, 2048, 0.04),
    ("llama-3.1-70b", "agentic", 4096, 1024, 4096, 0.07),
    ("llama-3.1-405b", "chat", 1024, 128, 512, 0.06),
    ("llama-3.1-405b", "rag", 8192, 192, 6144, 0.05),
    ("llama-3.1-405b", "summarisation", 32768, 512, 2048, 0.04),
    ("llama-3.1-405b", "long-document qa", 16384, 256, 8192, 0.04),
    ("llama-3.1-405b", "agentic", 8192, 2048, 4096, 0.05),
    ("deepseek-v3", "chat", 1024, 128, 512, 0.10),
    ("deepseek-v3", "coding", 1536, 16, 1024, 0.06),
    ("deepseek-v3", "rag", 8192, 192, 4096, 0.07),
    ("deepseek-v3", "summarisation", 32768, 512, 2048, 0.04),
    ("deepseek-v3", "reasoning", 2048, 8192, 1024, 0.08),
    ("deepseek-v3", "agentic", 16384, 4096, 8192, 0.06),
)


# --------------------------------------------------------------------------- evaluation


class Evaluator:
    """Exact (tau = 0) objective and feasibility of batches of variable values, through
    one freshly jitted vmap per instance (its compile time is `compile_s`)."""

    def __init__(self, prob, batch):
        self.prob, self.batch, self.count = prob, batch, 0

        def one(x):
            vals = prob.values(x, 0.0)
            return prob.objective_value(vals), prob.violation(vals)

        self._f = jax.jit(jax.vmap(one))
        t0 = time.perf_counter()
        jax.block_until_ready(self._f(jnp.asarray(np.tile(prob.lo, (batch, 1)))))
        self.compile_s = time.perf_counter() - t0

    def __call__(self, x):
        """(objective, violation, feasible) of the rows of `x` (any number of rows)."""
        n = len(x)
        objs, viols = [], []
        for s in range(0, n, self.batch):
            chunk = x[s : s + self.batch]
            pad = np.concatenate([chunk, np.tile(chunk[-1:], (self.batch - len(chunk), 1))])
            o, v = self._f(jnp.asarray(pad))
            objs.append(np.asarray(o)[: len(chunk)])
            viols.append(np.asarray(v)[: len(chunk)])
        self.count += n
        obj, viol = np.concatenate(objs).astype(float), np.concatenate(viols).astype(float)
        return obj, viol, (viol <= 0.0) & np.isfinite(obj) & (obj > 0)


def gradient_cost_factor(prob, batch=256, repeats=30):
    """k = time(value_and_grad of the smooth objective + penalised margins) /
    time(exact evaluation), both jitted and vmapped over `batch` points, per point; the
    fastest of `repeats` calls each (the least disturbed by other load on the machine).
    Both times are summed over the designs of a mix, each timed alone (a mix's
    evaluation is its designs' evaluations; a jitted value_and_grad of all six models of
    problem (e) at once did not compile within ten minutes, though the same model
    inside `size`'s scan compiles in about a minute)."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(prob.decode(rng.random((batch, prob.dim))))
    times = {"value": 0.0, "value_and_grad": 0.0}
    for only in range(prob.units):

        def exact(x, only=only):
            vals = prob.values(x, 0.0, only)
            return prob.objective_value(vals, only), prob.violation(vals)

        def smooth(x, only=only):
            vals = prob.values(x, diffhw.DEFAULT_TAU, only)
            return jnp.log(prob.objective_value(vals, only)) + PENALTY * prob.violation(vals) ** 2

        f = jax.jit(jax.vmap(exact))
        g = jax.jit(jax.vmap(jax.value_and_grad(smooth)))
        for name, fn in (("value", f), ("value_and_grad", g)):
            jax.block_until_ready(fn(x))
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                jax.block_until_ready(fn(x))
                ts.append(time.perf_counter() - t0)
            times[name] += min(ts)
    return times["value_and_grad"] / times["value"], times["value"] / batch


# --------------------------------------------------------------------------- methods
# Each returns a trace: a list of (evaluations, seconds, best feasible objective so far).


def run_gradient(prob, starts, outer, inner, seed=0, method="adam"):
    r = diffhw.size(prob.design, prob.variables, prob.objective, prob.constraints, shares=prob.shares,
                    starts=starts, outer_steps=outer, inner_steps=inner, seed=seed, method=method)
    obj = r.objective if r.feasible else math.inf
    # size()'s own when None (its defaults)
    inner, starts = r.history["multiplier_updates"][0], len(r.history["values"])
    return {"evals": r.evaluations + r.candidates, "grad_evals": r.evaluations, "candidates": r.candidates,
            "seconds": r.seconds, "objective": obj, "config": f"{starts}x({outer}x{inner}+restore)"}


def run_random(prob, ev, max_evals, seed):
    rng = np.random.default_rng(seed)
    best, trace, t0 = math.inf, [], time.perf_counter()
    done = 0
    while done < max_evals:
        obj, _, ok = ev(prob.decode(rng.random((BATCH, prob.dim))))
        running = np.minimum.accumulate(np.where(ok, obj, math.inf))
        elapsed = time.perf_counter() - t0 + ev.compile_s
        improved = np.flatnonzero(running < best)
        for i in improved:  # keep only improvements (counted to the sample)
            trace.append((done + i + 1, elapsed, float(running[i])))
        best = min(best, float(running[-1]))
        done += BATCH
    return trace, done


def grid_sizes(prob, max_evals):
    """Resolutions n = 2, 3, ... growing by 25% a step once past 4 (so the grids' total
    stays a small multiple of the largest), up to `max_evals` points."""
    out, n = [], 2
    while True:
        axes = _grid_axes(prob, n)
        size = math.prod(len(a) for a in axes)  # Python ints: 2 ** 89 overflows int64
        if size > max_evals:
            return out
        out.append((n, axes, size))
        n = max(n + 1, round(n * 1.25))


def _grid_axes(prob, n):
    axes = []
    for i in range(prob.dim):
        u = np.linspace(0.0, 1.0, n)[:, None] * np.ones((1, prob.dim))
        axes.append(np.unique(prob.decode(u)[:, i]))
    return axes


def run_grid(prob, ev, max_evals):
    """One result per resolution: (evaluations, seconds, best feasible objective)."""
    results = []
    for n, axes, size in grid_sizes(prob, max_evals):
        t0 = time.perf_counter()
        x = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=1)
        obj, _, ok = ev(x)
        best = float(np.min(np.where(ok, obj, math.inf)))
        results.append((size, time.perf_counter() - t0 + ev.compile_s, best, n))
    return results


def run_cma(prob, ev, max_evals, seed):
    """IPOP-CMA-ES in the unit cube; returns the improvement trace and evaluations used."""
    rng = np.random.default_rng(seed)
    best, trace, done, popsize, t0 = math.inf, [], 0, None, time.perf_counter()
    x0 = prob.baseline_u.copy()
    while done < max_evals:
        opts = {"bounds": [0.0, 1.0], "seed": int(rng.integers(1, 2**31)), "verbose": -9,
                "maxfevals": max_evals - done, "tolfun": 1e-9, "tolx": 1e-7}
        if popsize is not None:
            opts["popsize"] = popsize
        es = cma.CMAEvolutionStrategy(x0, 0.3, opts)
        popsize = es.popsize
        while not es.stop() and done < max_evals:
            u = np.asarray(es.ask())
            obj, viol, ok = ev(prob.decode(u))
            fitness = np.where(np.isfinite(obj) & (obj > 0), np.log(np.maximum(obj, 1e-300)), 1e3) + PENALTY * viol
            es.tell(list(u), list(fitness))
            elapsed = time.perf_counter() - t0 + ev.compile_s
            for i in range(len(u)):
                if ok[i] and obj[i] < best:
                    best = float(obj[i])
                    trace.append((done + i + 1, elapsed, best))
            done += len(u)
        popsize = min(2 * popsize, CMA_PAD)
        x0 = rng.random(prob.dim)
    return trace, done


def first_within(trace, target):
    """(evaluations, seconds) of the first trace entry at or below `target`, or None."""
    for evals, secs, best in trace:
        if best <= target:
            return evals, secs
    return None


# --------------------------------------------------------------------------- driver


def _progress(t0, what):
    print(f"  [{time.perf_counter() - t0:6.1f} s] {what}", file=sys.stderr, flush=True)


def run(quick, only=None, methods=METHODS, fresh_defaults=False):
    """Run every problem (or those whose key is in `only`) with `methods`; yields one
    result dict per problem as it finishes. `fresh_defaults` also times size() with its
    defaults in fresh processes, cold (empty compilation cache) then warm (its cache)."""
    seeds = (0, 1) if quick else (0, 1, 2)
    max_random = 2**16 if quick else 2**21
    max_grid = 2**16 if quick else 2**21
    max_cma = 10_000 if quick else 20_000
    ladder = QUICK_LADDER if quick else LADDER + LONG_LADDER
    lbfgs_ladder = QUICK_LBFGS_LADDER if quick else LBFGS_LADDER
    # --problems picks from every problem (c and d too), run with the mode's budgets
    for prob in problems(quick and not only):
        if only and prob.key not in only:
            continue
        t_prob = time.perf_counter()
        _progress(t_prob, f"problem {prob.key}")
        k, t_eval = gradient_cost_factor(prob)
        _progress(t_prob, f"gradient cost factor k = {k:.2f}")
        # Gradient: the ladder, smallest budget first; the defaults always (long run) in a
        # full run, so the best known includes them.
        grad_runs = {}
        fresh = None
        if "gradient" in methods and fresh_defaults:
            fresh = {phase: run_defaults_fresh(prob.key, quick and not only, cache)
                     for phase, cache in _cold_then_warm()}
            _progress(t_prob, "size() defaults in fresh processes, cold and warm")
        if "gradient" in methods and not quick:
            grad_runs[DEFAULTS] = run_gradient(prob, *DEFAULTS)
            _progress(t_prob, "size() defaults")
        # Black-box long runs.
        compile_s = [0.0]
        rnd, grid, cmas = [], [], []
        cma_cap = max(max_cma, prob.cma_evals or 0)
        if "random" in methods:
            ev = Evaluator(prob, BATCH)
            rnd = [run_random(prob, ev, max_random, s) for s in seeds]
            compile_s.append(ev.compile_s)
            _progress(t_prob, "random search")
        if "grid" in methods:
            ev_grid = Evaluator(prob, GRID_CHUNK)
            grid = run_grid(prob, ev_grid, max_grid)
            compile_s.append(ev_grid.compile_s)
            _progress(t_prob, "grid")
        if "cmaes" in methods:
            ev_cma = Evaluator(prob, CMA_PAD)
            cmas = [run_cma(prob, ev_cma, cma_cap, s) for s in seeds]
            compile_s.append(ev_cma.compile_s)
            _progress(t_prob, "CMA-ES")
        bests = [BEST_KNOWN.get(prob.key, math.inf)] + [r["objective"] for r in grad_runs.values()]
        bests += [t[-1][2] for t, _ in rnd + cmas if t] + [g[2] for g in grid]
        bests += [f["objective"] for f in (fresh or {}).values()]
        # Each method's ladder until a rung reaches within 1% of the best known so far
        # (a rung may lower the best known; the check is repeated against the final value).
        by_method = {"adam": {}, "lbfgs": {}}
        if DEFAULTS in grad_runs:
            by_method["adam"][DEFAULTS] = grad_runs[DEFAULTS]
        ladders = (("adam", ladder),) + ((("lbfgs", lbfgs_ladder),) if prob.skip_lbfgs is None else ())
        ladders = ladders if "gradient" in methods else ()
        for method, lad in ladders:
            for cfg in lad:
                if cfg not in by_method[method]:
                    by_method[method][cfg] = run_gradient(prob, *cfg, method=method)
                    _progress(t_prob, f"size(method={method!r}) {by_method[method][cfg]['config']}: "
                                      f"{by_method[method][cfg]['objective']:.6g}")
                bests.append(by_method[method][cfg]["objective"])
                if by_method[method][cfg]["objective"] <= min(bests) * (1 + WITHIN):
                    break
        best = min(bests)
        found = min(bests[1:], default=math.inf)  # this run's best (BEST_KNOWN aside)
        target = best * (1 + WITHIN)
        grad_rows = []
        for method, lad in ladders:
            done = by_method[method]
            g = next((done[c] for c in lad if c in done and done[c]["objective"] <= target), None)
            missed = [done[c] for c in lad if c in done and done[c]["objective"] > target
                      and (g is None or done[c]["evals"] < g["evals"])]
            missed_note = "; smaller budgets missed: " + ", ".join(
                f"{m['evals']:,} evals {m['objective'] / best - 1:+.1%}" for m in missed) if missed else ""
            label = {"adam": "Adam", "lbfgs": "L-BFGS"}[method]
            if g is not None:
                adj = k * g["grad_evals"] + g["candidates"]
                grad_rows.append(dict(method=f"gradient {label}, size() {g['config']}", evals=g["evals"],
                                      adjusted=adj, seconds=g["seconds"],
                                      note=f"{g['grad_evals']:,} value+grad + {g['candidates']} exact{missed_note}"))
            else:
                grad_rows.append(dict(method=f"gradient {label}, size() ladder", evals=None, seconds=None,
                                      note=f"not reached within {lad[-1]}{missed_note}"))
        # The reference gradient row (ratios are to it): the method that needed fewer.
        rows = sorted(grad_rows, key=lambda r: math.inf if r["evals"] is None else r["evals"])
        if prob.skip_lbfgs is not None and "gradient" in methods:
            rows.append(dict(method="gradient L-BFGS", evals=None, seconds=None, note=prob.skip_lbfgs, skipped=True))
        if DEFAULTS in grad_runs:
            d = grad_runs[DEFAULTS]
            ok = d["objective"] <= target
            rows.append(dict(method=f"gradient, size() defaults {d['config']}", evals=d["evals"] if ok else None,
                             adjusted=k * d["grad_evals"] + d["candidates"], seconds=d["seconds"] if ok else None,
                             note=f"objective {d['objective']:.5g}" + ("" if ok else ", NOT within 1%")))
        contract = {}
        for name, runs, cap in (("random search", rnd, max_random), ("CMA-ES (IPOP, penalty)", cmas, cma_cap)):
            if not runs:
                continue
            hits = [first_within(t, target) for t, _ in runs]
            key = "random" if name.startswith("random") else "cmaes"
            contract[key] = _reach(statistics.median(h[0] for h in hits) if None not in hits else None,
                                   statistics.median(h[1] for h in hits) if None not in hits else None,
                                   min((t[-1][2] for t, _ in runs if t), default=None))
            got = [h for h in hits if h is not None]
            if len(got) == len(hits):
                rows.append(dict(method=f"{name}, median of {len(runs)}",
                                 evals=statistics.median(h[0] for h in got),
                                 seconds=statistics.median(h[1] for h in got),
                                 note="per seed: " + ", ".join(f"{h[0]:,}" for h in got)))
            else:
                rows.append(dict(method=f"{name}, median of {len(runs)}", evals=None, seconds=None,
                                 note=f"not reached within {cap:,} in {len(hits) - len(got)} of {len(hits)} seeds"
                                      + (" (reached: " + ", ".join(f"{h[0]:,}" for h in got) + ")" if got else "")))
        hit = next((gr for gr in grid if gr[2] <= target), None)
        if "grid" in methods:
            contract["grid"] = _reach(hit[0] if hit else None, hit[1] if hit else None,
                                      min((g[2] for g in grid), default=None))
        if hit is not None:
            rows.append(dict(method="grid", evals=hit[0], seconds=hit[1],
                             note=f"{hit[3]} points per axis (deduplicated)"))
        elif grid:
            largest = grid[-1]
            rows.append(dict(method="grid", evals=None, seconds=None,
                             note=f"not reached within {max_grid:,}"
                                  + (f" (largest {largest[3]} per axis, {largest[0]:,} points, "
                                     f"{largest[2] / best - 1:+.1%})" if largest else "")))
        if "gradient" in methods:
            contract["gradient"] = _gradient_contract(fresh, grad_runs.get(DEFAULTS), target)
            if rows and rows[0]["method"].startswith("gradient") and rows[0]["evals"] is not None:
                contract["gradient_ladder"] = {"evaluations": rows[0]["evals"], "wall_s": rows[0]["seconds"],
                                               "reached": True, "config": rows[0]["method"]}
        if fresh is not None:
            ok = fresh["cold"]["objective"] <= target
            rows.append(dict(method="gradient, size() defaults, fresh process",
                             evals=fresh["cold"]["evaluations"] if ok else None,
                             adjusted=k * fresh["cold"]["grad_evals"] + fresh["cold"]["candidates"], seconds=fresh["cold"]["wall_s"] if ok else None,
                             note=f"cold {fresh['cold']['wall_s']:.1f} s, warm {fresh['warm']['wall_s']:.1f} s, "
                                  f"objective {fresh['cold']['objective']:.5g}"
                                  + ("" if fresh["cold"]["objective"] <= target else ", NOT within 1%")))
        yield dict(problem=prob, best=best, found=found, k=k, t_eval=t_eval, rows=rows, compile_s=tuple(compile_s),
                   seconds=time.perf_counter() - t_prob, contract=contract,
                   new_best=best < BEST_KNOWN.get(prob.key, math.inf) * (1 - 1e-9))


def _reach(evaluations, wall_s, objective=None):
    """A method's entry of the JSON contract: what it needed to reach 1% (cold), and the
    best feasible objective it found (None: none)."""
    out = {"evaluations": evaluations, "wall_s": wall_s, "reached": evaluations is not None}
    if objective is not None and math.isfinite(objective):
        out["objective"] = objective
    return out


def _gradient_contract(fresh, in_process, target):
    """size() with its defaults: cold and warm wall in fresh processes when measured
    (else the in-process run, warm unknown); `reached` when it is within 1%."""
    if fresh is not None:
        cold, warm = fresh["cold"], fresh["warm"]
        ok = cold["objective"] <= target
        return {"evaluations": cold["evaluations"] if ok else None, "wall_s": cold["wall_s"] if ok else None,
                "warm_wall_s": warm["wall_s"] if warm["objective"] <= target else None, "reached": ok,
                "objective": cold["objective"]}
    if in_process is None:
        return {"evaluations": None, "wall_s": None, "warm_wall_s": None, "reached": False,
                "note": "size() defaults not run (quick mode without --fresh)"}
    ok = in_process["objective"] <= target
    return {"evaluations": in_process["evals"] if ok else None, "wall_s": in_process["seconds"] if ok else None,
            "warm_wall_s": None, "reached": ok, "objective": in_process["objective"]}


def _cold_then_warm():
    """(phase, cache folder): a new empty folder for the cold run, the same for the warm."""
    import tempfile

    cache = tempfile.mkdtemp(prefix="diffhw-sizing-cache-")
    return (("cold", cache), ("warm", cache))


def run_defaults_fresh(key, quick, cache):
    """size() with its defaults on problem `key`, in a new Python process whose JAX
    persistent compilation cache and diffhw program cache are in `cache`: {"wall_s", "objective", "evaluations",
    "grad_evals", "candidates"}."""
    import json
    import os
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--_fresh-defaults", key] + (["--quick"] if quick else []),
                         env=dict(os.environ, DIFFHW_BENCH_CACHE=cache), capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fresh_defaults_main(key, quick):
    import json
    import os

    jax.config.update("jax_compilation_cache_dir", os.environ["DIFFHW_BENCH_CACHE"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    # as the CLI does: diffhw's compiled programs kept whole (a warm process skips tracing)
    diffhw.enable_program_cache(os.path.join(os.environ["DIFFHW_BENCH_CACHE"], "programs"))
    prob = next(p for p in problems(quick) if p.key == key)
    r = run_gradient(prob, *DEFAULTS)
    print(json.dumps({"wall_s": r["seconds"], "objective": r["objective"], "evaluations": r["evals"],
                      "grad_evals": r["grad_evals"], "candidates": r["candidates"]}))


def _num(x, fmt="{:,.0f}"):
    return "-" if x is None else fmt.format(x)


def header(quick):
    return (f"diffhw sizing benchmark ({'quick' if quick else 'full'}; JAX {jax.__version__}, "
            f"{jax.default_backend()}; target: feasible, within {WITHIN:.0%} of the best known)\n")


def format_problem(r):
    """The table of one problem and its verdict line."""
    lines = []
    p = r["problem"]
    grad = next((row for row in r["rows"] if row["method"].startswith("gradient")),
                {"evals": None, "seconds": None, "adjusted": None})
    lines.append(f"({p.key}) {p.title}")
    lines.append(f"    {p.dim} variables; best known {p.objective} = {r['best']:.6g}; gradient cost factor "
                 f"k = {r['k']:.2f} exact evaluations per value_and_grad ({r['t_eval'] * 1e6:.2f} us per exact "
                 f"evaluation vmapped); evaluator compile {max(r['compile_s']):.1f} s")
    head = (f"    {'method':<44} {'evals to 1%':>12} {'wall s':>8} {'evals/grad':>11} "
            f"{'evals/grad adj':>15} {'wall/grad':>10}  note")
    lines += [head, "    " + "-" * (len(head) - 4)]
    best_bb = None
    for row in r["rows"]:
        ratio = adj = wall = None
        if row["evals"] is not None and grad["evals"] is not None:
            ratio = row["evals"] / grad["evals"]
            adj = row["evals"] / grad["adjusted"]
            wall = row["seconds"] / grad["seconds"]
            if not row["method"].startswith("gradient") and (best_bb is None or row["evals"] < best_bb[1]):
                best_bb = (row["method"], row["evals"], ratio, adj)
        ev = ("not run" if row.get("skipped") else "not reached") if row["evals"] is None else _num(row["evals"])
        if row["method"].startswith("gradient") and row["evals"] is not None:
            row["note"] += f"; k-adjusted {row['adjusted']:,.0f}"
        lines.append(f"    {row['method']:<44} {ev:>12} {_num(row['seconds'], '{:.2f}'):>8} "
                     f"{_num(ratio, '{:.1f}x'):>11} {_num(adj, '{:.1f}x'):>15} {_num(wall, '{:.3f}x'):>10}  "
                     f"{row['note']}")
    if grad["evals"] is None:
        verdict = f"({p.key}) gradient sizing did not reach 1% of the best known: goal NOT met"
    elif best_bb is None:
        verdict = (f"({p.key}) no black-box method reached 1% within its budget; gradient did with "
                   f"{grad['evals']:,} evaluations: goal met (lower bound on the ratio)")
    else:
        name, evals, ratio, adj = best_bb
        met = "met" if ratio >= GOAL else "NOT met"
        met_adj = "met" if adj >= GOAL else "NOT met"
        verdict = (f"({p.key}) best black-box: {name} with {evals:,.0f} evaluations = {ratio:.1f}x the "
                   f"gradient's (goal {GOAL:g}x {met}); charging gradients k = {r['k']:.2f}: {adj:.1f}x "
                   f"({met_adj})")
    lines.append(f"    ({r['seconds']:.0f} s for this problem)")
    lines.append("")
    return "\n".join(lines), verdict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="problems a and b, smaller budgets and ladder")
    parser.add_argument("--problems", default=None, metavar="KEYS",
                        help="comma-separated problem keys to run, e.g. 'a,d' (default: all of the mode)")
    parser.add_argument("--methods", default=",".join(METHODS), metavar="NAMES",
                        help=f"comma-separated methods to run, of {', '.join(METHODS)} (default: all)")
    parser.add_argument("--fresh", action="store_true",
                        help="also time size() with its defaults in fresh processes, cold and warm "
                             "(always on with --json)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (the contract) instead")
    parser.add_argument("--_fresh-defaults", dest="fresh_key", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fresh_key:
        return _fresh_defaults_main(args.fresh_key, args.quick)
    only = set(args.problems.split(",")) if args.problems else None
    known = {p.key for p in problems(False)}
    if only and not only <= known:
        parser.error(f"--problems: unknown {', '.join(sorted(only - known))} (known: {', '.join(sorted(known))})")
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if not methods or not set(methods) <= set(METHODS):
        parser.error(f"--methods: {args.methods!r}; allowed: {', '.join(METHODS)}")
    results = []
    if not args.json:
        print(header(args.quick), flush=True)
    verdicts = []
    for r in run(args.quick, only, methods, fresh_defaults=args.fresh or args.json):
        results.append(r)
        if r["new_best"]:
            print(f"({r['problem'].key}) new best known {r['best']:.6g} (was {BEST_KNOWN.get(r['problem'].key)}): "
                  "update BEST_KNOWN", file=sys.stderr)
        elif r["found"] > r["best"] * (1 + WITHIN):
            print(f"({r['problem'].key}) nothing came within 1% of BEST_KNOWN {r['best']:.6g} (best found "
                  f"{r['found']:.6g}, {r['found'] / r['best'] - 1:+.1%}): if the model changed since it was "
                  "recorded, re-run the full problem and update BEST_KNOWN", file=sys.stderr)
        if args.json:
            continue
        text, verdict = format_problem(r)
        print(text, flush=True)
        verdicts.append(verdict)
    if args.json:
        import json

        print(json.dumps({"problems": [_problem_json(r) for r in results]}, indent=2))
        return None
    print(f"Goal: at least {GOAL:g}x fewer model evaluations than the best black-box method.")
    print("\n".join("  " + v for v in verdicts))
    for r in results:
        print("  " + _time_ratio_line(r))
    return None


def _time_ratio_line(r):
    """Goal 1 of the time-to-answer work: size() defaults against CMA-ES, cold and warm."""
    c = r["contract"]
    g, cm = c.get("gradient", {}), c.get("cmaes", {})
    key = r["problem"].key
    if not g.get("reached") or not cm.get("reached") or g.get("wall_s") is None:
        return f"({key}) wall-time ratio vs CMA-ES: n/a (size() defaults reached: {g.get('reached')}, " \
               f"CMA-ES reached: {cm.get('reached')})"
    cold = cm["wall_s"] / g["wall_s"]
    warm = cm["wall_s"] / g["warm_wall_s"] if g.get("warm_wall_s") else None
    warm_s = f"{warm:.2f}x" if warm is not None else "n/a"
    return (f"({key}) CMA-ES wall / size() defaults wall: cold {cold:.2f}x (goal > 1x: "
            f"{'met' if cold > 1 else 'NOT met'}), warm {warm_s} (goal >= 5x: "
            f"{'met' if warm is not None and warm >= 5 else 'NOT met'})")


def _problem_json(r):
    p = r["problem"]
    found = r["found"] if math.isfinite(r["found"]) else None
    return {"key": p.key, "variables": p.dim, "best_known": r["best"], "best_found": found,
            "methods": r["contract"]}


if __name__ == "__main__":
    main()
