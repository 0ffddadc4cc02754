"""A `Design` from preset names or files."""

from .._evaluation._design import Design
from .._workload._workload import parallelism, validate_parallelism, workload
from ._hardware import load_hardware
from ._models import load_model
from ._technology import technology_for


def from_presets(hardware="h100-sxm", model="llama-3.1-70b", chips=None, tp=None, pp=1, dp=1, ep=1,
                 batch=1, input_tokens=2048, output_tokens=256, precision="bf16", kv_precision=None,
                 weight_precision=None, profile=None, technology=True, shared_context_tokens=0.0,
                 routing_skew=0.0, serving=None, beam_width=1.0) -> Design:
    """A `Design` from preset names (or files), checked outside `jit`. `chips` defaults
    to ``tp * pp * dp`` or the hardware's scale-up unit; `technology=True` loads the
    hardware's technology (`presets.technology_for`), False leaves it out; `serving`: a
    `diffhw.ServingGoal` (`diffhw.serving_goal`), whose ``serving_*`` metrics join the
    design's; `beam_width`: beam search's beams per request (`diffhw.Workload`)."""
    hw = load_hardware(hardware, profile=profile)
    mdl = load_model(model)
    if tp is None:
        n = hw.default_chips if chips is None else chips
        tp = max(int(n) // int(pp * dp), 1)
    par = parallelism(tp=tp, pp=pp, dp=dp, ep=ep)
    validate_parallelism(mdl, par)
    wl = workload(batch=batch, input_tokens=input_tokens, output_tokens=output_tokens, precision_=precision,
                  kv_precision=kv_precision, weight_precision=weight_precision,
                  shared_context_tokens=shared_context_tokens, routing_skew=routing_skew, beam_width=beam_width)
    tech = technology_for(hardware) if technology is True else (technology or None)
    return Design(hw, mdl, wl, par, tech, serving)
