"""Serving metrics inside a `Design`'s metrics, so sizing, sweeps and sensitivity take
them as objectives and constraints (`Design.serving`)."""

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _smooth
from .._errors import InputError
from ._serve import _serve_impl
from ._traffic import Traffic

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
    plays no part: the engine's load follows from the rate.

    - `ttft_limit_s`, `tpot_limit_s`: p99 limits (``inf``: none); MLPerf Server for
      Llama-2-70B: 2 s and 0.2 s; Interactive: 0.45 s and 0.04 s.
    - `input_cv`, `prefix_hit`, `max_sequences`: as in `diffhw.traffic`.

    Metrics: `serving_max_request_rate_per_s` (0 when even a lone request misses the
    limits), `serving_output_tokens_per_s`, `serving_ttft_p99_s`, `serving_tpot_p99_s`,
    `serving_requests_in_flight`, `serving_max_sustainable_rate_per_s` (the rate at the
    capacity cap, limits aside); with a technology `serving_usd_per_million_tokens`,
    `serving_energy_per_token_j`, `serving_kgco2e_per_million_tokens`,
    `serving_tokens_per_s_per_watt`, `serving_system_average_power_w`. When no rate
    meets the limits the rate-based metrics are taken at a vanishing rate (the economics
    then grow without bound): constrain `serving_max_request_rate_per_s` from below to
    keep a search away from there.
    """

    ttft_limit_s: Scalar = eqx.field(converter=_f, default=math.inf)
    tpot_limit_s: Scalar = eqx.field(converter=_f, default=math.inf)
    input_cv: Scalar = eqx.field(converter=_f, default=0.0)
    prefix_hit: Scalar = eqx.field(converter=_f, default=0.0)
    max_sequences: Scalar = eqx.field(converter=_f, default=math.inf)

    def metric_names(self, has_technology: bool) -> tuple:
        return SERVING_METRICS + (SERVING_ECONOMICS if has_technology else ())

    def traffic(self, workload) -> Traffic:
        """The `Traffic` of a workload under this goal (rate 1; the goal finds its own)."""
        wl = workload
        return Traffic(1.0, wl.input_tokens, wl.output_tokens, wl.weight_precision, wl.activation_precision,
                       wl.kv_precision, self.input_cv, self.prefix_hit, wl.shared_context_tokens,
                       self.max_sequences, wl.routing_skew)

    def values(self, design, tau=None) -> dict:
        tau = _smooth.DEFAULT_TAU if tau is None else tau
        tr = self.traffic(design.workload)
        s = _serve_impl(design.hardware, design.model, tr, design.parallelism, None, None, design.technology,
                        self.ttft_limit_s, self.tpot_limit_s, True, tau, False, differentiable=True)
        rate = s.max_request_rate_per_s
        out = {
            "serving_max_request_rate_per_s": rate,
            "serving_output_tokens_per_s": rate * tr.output_tokens,
            "serving_ttft_p99_s": s.ttft_p99_s,
            "serving_tpot_p99_s": s.tpot_p99_s,
            "serving_requests_in_flight": s.requests_in_flight,
            "serving_max_sustainable_rate_per_s": s.max_sustainable_rate_per_s,
        }
        if s.economics is not None:
            e = s.economics
            out.update(serving_usd_per_million_tokens=e.usd_per_million_tokens,
                       serving_energy_per_token_j=e.energy_per_token_j,
                       serving_kgco2e_per_million_tokens=e.kgco2e_per_million_tokens,
                       serving_tokens_per_s_per_watt=e.tokens_per_s_per_watt,
                       serving_system_average_power_w=e.system_average_power_w)
        return out


def serving_goal(ttft_limit_s=math.inf, tpot_limit_s=math.inf, input_cv=0.0, prefix_hit=0.0,
                 max_sequences=math.inf) -> ServingGoal:
    """Build a `ServingGoal`, checking values: limits > 0 (``inf``: none), `input_cv` >= 0,
    `prefix_hit` in [0, 1), `max_sequences` >= 1."""
    for name, v in (("ttft_limit_s", ttft_limit_s), ("tpot_limit_s", tpot_limit_s)):
        if not float(v) > 0:
            raise InputError(name, float(v), "> 0 (inf for no limit)")
    if not (math.isfinite(float(input_cv)) and float(input_cv) >= 0):
        raise InputError("input_cv", float(input_cv), ">= 0 and finite")
    if not 0.0 <= float(prefix_hit) < 1.0:
        raise InputError("prefix_hit", float(prefix_hit), "in [0, 1) (a fraction of each prompt)")
    if not float(max_sequences) >= 1.0:
        raise InputError("max_sequences", float(max_sequences), ">= 1 (inf for no cap)")
    return ServingGoal(ttft_limit_s, tpot_limit_s, input_cv, prefix_hit, max_sequences)
