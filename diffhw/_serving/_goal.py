"""Serving metrics inside a `Design`'s metrics, so sizing, sweeps and sensitivity take
them as objectives and constraints (`Design.serving`)."""

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _smooth
from .._errors import InputError
from ._serve import _at_load, _serve_impl
from ._traffic import Disaggregation, Speculation, Traffic

Scalar = Float[Array, ""]


def _f(x):
    return jnp.asarray(x, dtype=float)


#: ``serving_*`` metrics a `ServingGoal` adds (all at the largest rate meeting its limits).
SERVING_METRICS = (
    "serving_max_request_rate_per_s",
    "serving_output_tokens_per_s",
    "serving_ttft_p99_s",
    "serving_tpot_p99_s",
    "serving_requests_in_flight",
    "serving_max_sustainable_rate_per_s",
)
#: ``serving_*`` metrics of a `ServingGoal` with ``load="batch"`` (at the workload's
#: batch as the sequences decoding in the system; no root solved).
SERVING_LOAD_METRICS = (
    "serving_request_rate_per_s",
    "serving_output_tokens_per_s",
    "serving_ttft_p99_s",
    "serving_tpot_p99_s",
    "serving_ttft_mean_s",
    "serving_tpot_mean_s",
    "serving_requests_in_flight",
    "serving_utilization",
)
#: ... with a disaggregated goal and a `Technology`, the Prefill pool's chip.
SERVING_PREFILL_POOL = ("serving_prefill_chip_area_mm2", "serving_prefill_peak_power_w",
                        "serving_prefill_chip_cost_usd")
#: ... and with a `Technology`, the economics there.
SERVING_ECONOMICS = (
    "serving_usd_per_million_tokens",
    "serving_energy_per_token_j",
    "serving_kgco2e_per_million_tokens",
    "serving_tokens_per_s_per_watt",
    "serving_system_average_power_w",
)


class ServingGoal(eqx.Module):
    """Serve the design's workload under p99 latency limits: the design's metrics gain
    the ``serving_*`` metrics of `diffhw.serve` at the largest request rate that meets
    them (`at_max_rate`), with the workload's prompt and output lengths, precisions,
    shared context and routing skew, its hardware, parallelism and technology. Its batch
    plays no part: the engine's load follows from the rate. Serving models autoregressive
    Decode of text prompts: a workload's block-diffusion and modality-encoder fields
    (`diffhw.trends.diffusion`, `multimodal`) play no part here either (the CLI refuses
    them with `--serving`).

    - `ttft_limit_s`, `tpot_limit_s`: p99 limits (``inf``: none); MLPerf Server for
      Llama-2-70B: 2 s and 0.2 s; Interactive: 0.45 s and 0.04 s.
    - `input_cv`, `prefix_hit`, `max_sequences`, `output_cv`: as in `diffhw.traffic`
      (`output_cv`: spread of output lengths, 0 by default: every request at the mean).
    - `load`: "max_rate" or "batch" (below).
    - `disaggregation`: a `Disaggregation` (the Prefill pool, costed with the design's
      technology), or None; with a technology it adds `serving_prefill_chip_area_mm2`,
      `serving_prefill_peak_power_w` and `serving_prefill_chip_cost_usd`.
    - `speculation`: a `Speculation` (`diffhw.speculative`: a draft model or MTP heads,
      tokens drafted per step, acceptance), or None; its leaves are design parameters
      too (``serving.speculation.draft_tokens``, ``serving.speculation.acceptance``).

    Metrics: `serving_max_request_rate_per_s` (0 when even a lone request misses the
    limits), `serving_output_tokens_per_s`, `serving_ttft_p99_s`, `serving_tpot_p99_s`,
    `serving_requests_in_flight`, `serving_max_sustainable_rate_per_s` (the rate at the
    capacity cap, limits aside); with a technology `serving_usd_per_million_tokens`,
    `serving_energy_per_token_j`, `serving_kgco2e_per_million_tokens`,
    `serving_tokens_per_s_per_watt`, `serving_system_average_power_w`. When no rate
    meets the limits the rate-based metrics are taken at a vanishing rate (the economics
    then grow without bound): constrain `serving_max_request_rate_per_s` from below to
    keep a search away from there.

    `load="batch"` instead takes the workload's batch as the mean number of sequences
    decoding in the whole system (split over data-parallel replicas) and reports that
    operating point (`diffhw.serve_at_load`): `serving_request_rate_per_s` (Little's
    law), `serving_output_tokens_per_s`, `serving_ttft_p99_s`, `serving_tpot_p99_s`,
    `serving_ttft_mean_s`, `serving_tpot_mean_s`, `serving_requests_in_flight`,
    `serving_utilization` (>= 1: not sustainable) and the economics. No root is solved,
    so it is as cheap as a few `evaluate` steps; the limits are not applied (constrain
    the p99 metrics and the utilization instead). `diffhw size --serving` sizes this way:
    minimising cost per token with the batch free drives the load to the largest rate
    the limits allow.
    """

    ttft_limit_s: Scalar = eqx.field(converter=_f, default=math.inf)
    tpot_limit_s: Scalar = eqx.field(converter=_f, default=math.inf)
    input_cv: Scalar = eqx.field(converter=_f, default=0.0)
    prefix_hit: Scalar = eqx.field(converter=_f, default=0.0)
    max_sequences: Scalar = eqx.field(converter=_f, default=math.inf)
    load: str = eqx.field(static=True, default="max_rate")
    disaggregation: Disaggregation | None = None
    speculation: Speculation | None = None
    output_cv: Scalar = eqx.field(converter=_f, default=0.0)

    def metric_names(self, has_technology: bool) -> tuple:
        base = SERVING_LOAD_METRICS if self.load == "batch" else SERVING_METRICS
        extra = SERVING_PREFILL_POOL if has_technology and self.disaggregation is not None else ()
        return base + (SERVING_ECONOMICS if has_technology else ()) + extra

    def traffic(self, workload) -> Traffic:
        """The `Traffic` of a workload under this goal (rate 1; the goal finds its own)."""
        wl = workload
        return Traffic(1.0, wl.input_tokens, wl.output_tokens, wl.weight_precision, wl.activation_precision,
                       wl.kv_precision, self.input_cv, self.prefix_hit, wl.shared_context_tokens,
                       self.max_sequences, wl.routing_skew, self.output_cv)

    def values(self, design, tau=None, capex=None) -> dict:
        """The ``serving_*`` metrics of `design` at smoothing `tau`; `capex`: the design's
        chip's `chip_capex` at `tau` when the caller computed it already (one trace of
        it, not two: `diffhw._evaluation._design`), None: computed here."""
        tau = _smooth.DEFAULT_TAU if tau is None else tau
        tr = self.traffic(design.workload)
        if self.load == "batch":
            par = design.parallelism
            a = _at_load(design.hardware, design.model, tr, par, design.workload.batch / par.dp,
                         design.technology, tau, self.disaggregation, self.speculation, capex)
            out = {"serving_request_rate_per_s": a.request_rate_per_s,
                   "serving_output_tokens_per_s": a.output_tokens_per_s,
                   "serving_ttft_p99_s": a.ttft_p99_s, "serving_tpot_p99_s": a.tpot_p99_s,
                   "serving_ttft_mean_s": a.ttft_mean_s, "serving_tpot_mean_s": a.tpot_mean_s,
                   "serving_requests_in_flight": a.requests_in_flight, "serving_utilization": a.utilization}
            return out | _economics_values(a.economics, a.prefill_economics)
        s = _serve_impl(design.hardware, design.model, tr, design.parallelism, self.speculation, self.disaggregation,
                        design.technology,
                        self.ttft_limit_s, self.tpot_limit_s, True, tau, False, differentiable=True, capex=capex)
        rate = s.max_request_rate_per_s
        out = {
            "serving_max_request_rate_per_s": rate,
            "serving_output_tokens_per_s": rate * tr.output_tokens,
            "serving_ttft_p99_s": s.ttft_p99_s,
            "serving_tpot_p99_s": s.tpot_p99_s,
            "serving_requests_in_flight": s.requests_in_flight,
            "serving_max_sustainable_rate_per_s": s.max_sustainable_rate_per_s,
        }
        return out | _economics_values(s.economics, s.prefill_economics)


def _economics_values(e, prefill=None) -> dict:
    if e is None:
        return {}
    pool = {} if prefill is None else {"serving_prefill_chip_area_mm2": prefill.chip_area_mm2,
                                       "serving_prefill_peak_power_w": prefill.peak_power_w,
                                       "serving_prefill_chip_cost_usd": prefill.chip_cost_usd}
    return pool | {"serving_usd_per_million_tokens": e.usd_per_million_tokens,
            "serving_energy_per_token_j": e.energy_per_token_j,
            "serving_kgco2e_per_million_tokens": e.kgco2e_per_million_tokens,
            "serving_tokens_per_s_per_watt": e.tokens_per_s_per_watt,
            "serving_system_average_power_w": e.system_average_power_w}


def serving_goal(ttft_limit_s=math.inf, tpot_limit_s=math.inf, input_cv=0.0, prefix_hit=0.0,
                 max_sequences=math.inf, load="max_rate", disaggregation=None, speculation=None,
                 output_cv=0.0) -> ServingGoal:
    """Build a `ServingGoal`, checking values: limits > 0 (``inf``: none), `input_cv` >= 0,
    `output_cv` in [0, 100],
    `prefix_hit` in [0, 1), `max_sequences` >= 1, `load` "max_rate" or "batch";
    `disaggregation` (`diffhw.disaggregated`): the Prefill pool, whose hardware leaves a
    sizing can vary (``serving.disaggregation.prefill_hardware.*``, aliases
    ``prefill_compute``, ``prefill_memory_bandwidth``, ...) beside the Decode pool's;
    `speculation` (`diffhw.speculative`): speculative decoding or MTP on the Decode pool."""
    if load not in ("max_rate", "batch"):
        raise InputError("load", load, "'max_rate' (the largest rate meeting the limits) or 'batch' (the "
                         "workload's batch as the sequences decoding)")
    for name, v in (("ttft_limit_s", ttft_limit_s), ("tpot_limit_s", tpot_limit_s)):
        if not float(v) > 0:
            raise InputError(name, float(v), "> 0 (inf for no limit)")
    if not (math.isfinite(float(input_cv)) and float(input_cv) >= 0):
        raise InputError("input_cv", float(input_cv), ">= 0 and finite")
    if not (math.isfinite(float(output_cv)) and 0.0 <= float(output_cv) <= 100.0):
        raise InputError("output_cv", float(output_cv), "between 0 and 100 (coefficient of variation of output lengths)")
    if not 0.0 <= float(prefix_hit) < 1.0:
        raise InputError("prefix_hit", float(prefix_hit), "in [0, 1) (a fraction of each prompt)")
    if not float(max_sequences) >= 1.0:
        raise InputError("max_sequences", float(max_sequences), ">= 1 (inf for no cap)")
    if speculation is not None and not isinstance(speculation, Speculation):
        raise InputError("speculation", type(speculation).__name__, "a Speculation (diffhw.speculative(...)) or None")
    return ServingGoal(ttft_limit_s, tpot_limit_s, input_cv, prefix_hit, max_sequences, load, disaggregation,
                       speculation, output_cv)
