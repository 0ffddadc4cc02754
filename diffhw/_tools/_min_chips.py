"""The minimum system: the fewest chips that hold a model and its KV cache, over every
parallel layout the model allows.

A model fits on fewer chips when it is split the right way: Llama-3.1-405B in FP8 (406 GB
of weights) does not fit 2 B200s (180 GB each) under any layout but fits 3 with three
pipeline stages, a count tensor parallelism alone (a divisor of 128 heads) never gives.
`min_chips` therefore enumerates every valid ``(tp, pp, dp, ep)`` up to a chip budget
(`layouts`: tensor-parallel degrees dividing the heads, pipeline depths up to the layer
count, data-parallel replicas, expert-parallel degrees as `diffhw.validate_parallelism`
allows), evaluates all of them in one compiled, vmapped program, and keeps the smallest
chip count whose memory fits exactly (``tau = 0``), counting the largest pipeline stage's
``ceil(layers / pp)`` layers, not the mean. Among the layouts of that size it picks the
one with the best `prefer` metric (lowest TPOT by default).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from .._evaluation._design import Design, anonymous, check_design
from .._evaluation._evaluate import Metrics, evaluate
from .._hardware import _memory
from .._jit import filter_jit
from .._smooth import DEFAULT_TAU
from .._timing._latency import memory_per_chip
from .._workload._workload import Parallelism

#: Default chip budget of the search.
DEFAULT_MAX_CHIPS = 64

#: Metrics `prefer` may name (lower is better), read from `Metrics`.
_PREFER = {
    "tpot_s": lambda m: m.tpot_s,
    "ttft_s": lambda m: m.ttft_s,
    "e2e_latency_s": lambda m: m.e2e_latency_s,
    "usd_per_million_tokens": lambda m: m.economics.usd_per_million_tokens,
    "tco_usd_per_year": lambda m: m.economics.tco_usd_per_year,
    "energy_per_token_j": lambda m: m.economics.energy_per_token_j,
}


def _divisors(n):
    return [d for d in range(1, int(n) + 1) if n % d == 0]


def layouts(model, max_chips=DEFAULT_MAX_CHIPS, data_parallel=True) -> np.ndarray:
    """Every valid parallel layout of `model` on at most `max_chips` chips.

    Valid as `diffhw.validate_parallelism` checks: ``tp`` divides the attention heads
    (and divides or is a multiple of the KV heads, unless the attention is MLA), ``pp``
    is at most the layer count, ``ep`` divides the experts and either divides ``tp`` or
    is a multiple of it dividing ``tp * dp``. With ``data_parallel=False``, ``dp = 1``.

    **Returns:** an ``(n, 4)`` float array of ``(tp, pp, dp, ep)`` rows, sorted by chip
    count ``tp * pp * dp`` (then by tp, pp, dp, ep).
    """
    max_chips = int(max_chips)
    if max_chips < 1:
        raise InputError("max_chips", max_chips, "a whole number >= 1")
    tps = [t for t in _divisors(model.n_heads)
           if t <= max_chips and (model.mla or model.n_kv_heads % t == 0 or t % model.n_kv_heads == 0)]
    eps = _divisors(model.n_experts) if model.n_experts else [1]
    rows = []
    for tp in tps:
        for pp in range(1, min(model.n_layers, max_chips // tp) + 1):
            for dp in range(1, (max_chips // (tp * pp) if data_parallel else 1) + 1):
                for ep in eps:
                    if ep > 1 and not (tp % ep == 0 or (ep % tp == 0 and (tp * dp) % ep == 0)):
                        continue
                    rows.append((tp * pp * dp, tp, pp, dp, ep))
    rows.sort()
    return np.asarray([r[1:] for r in rows], dtype=np.float64).reshape(-1, 4)


@dataclasses.dataclass(frozen=True, eq=False)
class MinChipsResult:
    """`min_chips`' answer.

    - `chips`: the fewest chips that fit (int), or None when no layout within the
      budget fits.
    - `parallelism`: the chosen `Parallelism` (None when nothing fits).
    - `metrics`: its `Metrics` (at the design's smoothing, with economics when the design
      has a technology), or None.
    - `layouts`: ``(n, 4)`` array of every evaluated ``(tp, pp, dp, ep)``.
    - `fits`: bool per layout: every tier holds its data (exact, largest pipeline stage).
    - `margin`: per layout, the exact memory margin after the largest-stage correction
      (``>= 0`` fits).
    - `tpot_s`: per layout, TPOT in seconds for the layouts evaluated (those that fit
      with the fewest chips), NaN for the others.
    """

    chips: int | None
    parallelism: Parallelism | None
    metrics: Metrics | None
    layouts: np.ndarray
    fits: np.ndarray
    margin: np.ndarray
    tpot_s: np.ndarray

    def fewest_by_layout(self) -> dict:
        """``{"tp": n, "pp": n, "tp*pp": n, ...}``: the fewest chips that fit when only
        the named degrees vary (the others 1), e.g. to show what pipeline parallelism
        adds to tensor parallelism (None where none fits)."""
        tp, pp, dp, ep = self.layouts.T
        ones = {"tp": tp == 1, "pp": pp == 1, "dp": dp == 1, "ep": ep == 1}
        out = {}
        for combo in ("tp", "pp", "tp*pp", "tp*pp*dp*ep"):
            free = combo.split("*")
            mask = self.fits.copy()
            for k, one in ones.items():
                if k not in free:
                    mask &= one
            chips = tp * pp * dp
            out[combo] = int(chips[mask].min()) if mask.any() else None
        return out


@filter_jit
def _margins_jit(design, columns):
    """Exact memory margin of every layout (the tightest tier's ``usable / occupancy -
    1``): only the memory terms, so the vmapped program stays small."""
    hw, model, wl = design.hardware, design.model, design.workload

    def one(tp, pp, dp, ep):
        par = Parallelism(tp, pp, dp, ep)
        stored = jnp.stack(memory_per_chip(hw, model, wl, par))
        occupancy = _memory._per_tier(_memory.fractions_of(hw), stored)
        return jnp.min(_memory.capacities(hw) / jnp.maximum(occupancy, 1.0)) - 1.0  # exact re-check

    return jax.vmap(one)(*columns)


def min_chips(design: Design, max_chips=DEFAULT_MAX_CHIPS, prefer="tpot_s", data_parallel=True,
              tau=None) -> MinChipsResult:
    """The fewest chips that hold `design`'s model, weights and KV cache, over every
    parallel layout.

    The design's own parallelism is ignored; its workload's batch and lengths set the KV
    cache (a system batch, split over data-parallel replicas). The memory of every
    layout of `layouts` is computed in one vmapped program (compiled once per design
    structure and layout count). A layout fits when its exact memory margin, scaled by
    ``(layers / pp) / ceil(layers / pp)`` for the largest pipeline stage, is ``>= 0``
    (the scaling charges the stage's extra layer to all of its bytes, activations
    included: a slight overestimate). The layouts that fit with the fewest chips are
    then evaluated with `diffhw.evaluate` (with the design's technology) and the best
    by `prefer` is kept.

    **Arguments:**

    - `design`: a `Design` (e.g. ``diffhw.from_presets("b200", "llama-3.1-405b")``).
    - `max_chips`: the largest system searched.
    - `prefer`: which of the fitting layouts with the fewest chips to keep, by the lowest
      value of ``"tpot_s"`` (default), ``"ttft_s"``, ``"e2e_latency_s"``, or with a
      technology ``"usd_per_million_tokens"``, ``"tco_usd_per_year"``,
      ``"energy_per_token_j"``.
    - `data_parallel`: also vary ``dp`` (it can only help an MoE model, whose expert
      parallelism may span replicas); False keeps ``dp = 1``.
    - `tau`: smoothing of the reported metrics (default `diffhw.DEFAULT_TAU`).

    **Returns:** a `MinChipsResult` (`tpot_s` is NaN for layouts not re-evaluated).
    """
    if prefer not in _PREFER:
        raise InputError("prefer", prefer, "one of " + ", ".join(_PREFER))
    if prefer not in ("tpot_s", "ttft_s", "e2e_latency_s") and design.technology is None:
        raise InputError("prefer", prefer, "tpot_s, ttft_s or e2e_latency_s for a design without technology")
    check_design(design)
    model = design.model
    table = layouts(model, max_chips, data_parallel)
    base = anonymous(design)
    dtype = np.asarray(base.parallelism.tp).dtype
    columns = tuple(jnp.asarray(table[:, i], dtype=dtype) for i in range(4))
    layers = float(model.n_layers)
    stage = (layers / table[:, 1]) / np.ceil(layers / table[:, 1])
    margin = (np.asarray(_margins_jit(base, columns), dtype=np.float64) + 1.0) * stage - 1.0
    fits = margin >= 0.0
    tpot = np.full(len(table), np.nan)
    if not fits.any():
        return MinChipsResult(None, None, None, table, fits, margin, tpot)
    chips = table[:, 0] * table[:, 1] * table[:, 2]
    fewest = chips[fits].min()
    best = None
    for i in np.flatnonzero(fits & (chips == fewest)):
        par = Parallelism(*(float(x) for x in table[i]))
        m = evaluate(design.hardware, model, design.workload, par, DEFAULT_TAU if tau is None else tau,
                     design.technology)
        tpot[i] = float(m.tpot_s)
        score = float(_PREFER[prefer](m))
        if best is None or score < best[0]:
            best = (score, par, m)
    return MinChipsResult(int(round(fewest)), best[1], best[2], table, fits, margin, tpot)
