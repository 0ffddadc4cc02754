"""diffhw: a differentiable cost model of LLM inference hardware, on JAX."""

from . import presets, units
from ._area import Area, chip_area
from ._cost import Economics, die_yield, dies_per_wafer
from ._errors import InputError
from ._evaluate import Metrics, ThroughputResult, bound_name, evaluate, max_throughput
from ._hardware import Hardware, Profile
from ._latency import COMPONENTS, StepTime
from ._model import OpCost, Transformer, expected_experts_touched
from ._precision import Precision, precision
from ._report import workload_costs
from ._smooth import DEFAULT_TAU, safe_div, safe_log, smooth_max, smooth_min, softplus
from ._technology import Technology
from ._workload import Parallelism, Workload, parallelism, validate_parallelism, workload

__version__ = "0.1.0"

__all__ = [
    "COMPONENTS",
    "DEFAULT_TAU",
    "Area",
    "Economics",
    "Hardware",
    "InputError",
    "Metrics",
    "OpCost",
    "Parallelism",
    "Precision",
    "Profile",
    "StepTime",
    "Technology",
    "ThroughputResult",
    "Transformer",
    "Workload",
    "bound_name",
    "chip_area",
    "die_yield",
    "dies_per_wafer",
    "evaluate",
    "expected_experts_touched",
    "max_throughput",
    "parallelism",
    "precision",
    "presets",
    "safe_div",
    "safe_log",
    "smooth_max",
    "smooth_min",
    "softplus",
    "units",
    "validate_parallelism",
    "workload",
    "workload_costs",
]
