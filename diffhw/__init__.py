"""diffhw: a differentiable cost model of LLM inference hardware, on JAX."""

from . import network, presets, units
from ._economics._area import Area, chip_area
from ._economics._cost import Economics, die_yield, dies_per_wafer
from ._errors import InputError
from ._evaluation._design import (
    Design,
    design_values,
    evaluate_design,
    get_value,
    metric_names,
    metric_values,
    set_values,
)
from ._evaluation._evaluate import Metrics, ThroughputResult, bound_name, evaluate, max_throughput
from ._hardware._collectives import NetworkOptions
from ._hardware._hardware import Hardware
from ._hardware._memory import (
    DATA_CLASSES,
    MemoryTier,
    Placement,
    TierReport,
    access_efficiency,
    needed_buffer_bytes,
    placement_from_logits,
    sustained_bandwidth,
    write_amplification,
)
from ._hardware._near_memory import NearMemory
from ._hardware._profile import Profile
from ._hardware._technology import Technology
from ._io._design import from_presets
from ._io._measurements import Measurement, load_points
from ._programs import enable_program_cache, program_cache_dir
from ._serving._goal import SERVING_ECONOMICS, SERVING_LOAD_METRICS, SERVING_METRICS, ServingGoal, serving_goal
from ._serving._serve import QUANTILES, AtLoad, Serving, max_request_rate, serve, serve_at_load
from ._serving._traffic import Disaggregation, Speculation, Traffic, disaggregated, speculative, traffic
from ._smooth import DEFAULT_TAU, safe_div, safe_log, smooth_max, smooth_min, softplus
from ._timing._latency import COMPONENTS, StepTime, Work
from ._tools._calibrate import Calibration, CrossValidation, calibrate, cross_validate
from ._tools._min_chips import MinChipsResult, min_chips
from ._tools._sensitivity import (
    Sensitivity,
    crossovers,
    curvature,
    hessian_vector_product,
    leaf_paths,
    plot_tornado,
    sensitivity,
    tornado,
)
from ._tools._sizing._problem import Constraint, Variable, constraint, variable
from ._tools._sizing._size import SizingResult, size
from ._tools._sweep import SweepResult, pareto_front, sweep
from ._workload._costs import workload_costs
from ._workload import _trends as trends
from ._workload._operators import OpCost, expected_experts_touched
from ._workload._precision import Precision, precision
from ._workload._transformer import Transformer
from ._workload._workload import Parallelism, Workload, parallelism, validate_parallelism, workload

__version__ = "0.1.0"

__all__ = [
    "COMPONENTS",
    "DATA_CLASSES",
    "DEFAULT_TAU",
    "QUANTILES",
    "Disaggregation",
    "Serving",
    "ServingGoal",
    "SERVING_ECONOMICS",
    "SERVING_METRICS",
    "SERVING_LOAD_METRICS",
    "AtLoad",
    "Speculation",
    "Traffic",
    "Area",
    "Calibration",
    "Constraint",
    "CrossValidation",
    "Design",
    "Economics",
    "Hardware",
    "InputError",
    "Measurement",
    "MemoryTier",
    "Metrics",
    "MinChipsResult",
    "NearMemory",
    "NetworkOptions",
    "OpCost",
    "Parallelism",
    "Placement",
    "Precision",
    "Profile",
    "Sensitivity",
    "SizingResult",
    "StepTime",
    "SweepResult",
    "Technology",
    "ThroughputResult",
    "TierReport",
    "Transformer",
    "Variable",
    "Work",
    "Workload",
    "access_efficiency",
    "bound_name",
    "calibrate",
    "chip_area",
    "constraint",
    "cross_validate",
    "crossovers",
    "curvature",
    "design_values",
    "die_yield",
    "disaggregated",
    "dies_per_wafer",
    "enable_program_cache",
    "evaluate",
    "evaluate_design",
    "expected_experts_touched",
    "from_presets",
    "get_value",
    "hessian_vector_product",
    "leaf_paths",
    "load_points",
    "max_throughput",
    "max_request_rate",
    "metric_names",
    "metric_values",
    "min_chips",
    "needed_buffer_bytes",
    "network",
    "parallelism",
    "pareto_front",
    "placement_from_logits",
    "plot_tornado",
    "precision",
    "presets",
    "program_cache_dir",
    "safe_div",
    "safe_log",
    "sensitivity",
    "serve",
    "serving_goal",
    "serve_at_load",
    "set_values",
    "size",
    "smooth_max",
    "smooth_min",
    "speculative",
    "softplus",
    "sustained_bandwidth",
    "sweep",
    "tornado",
    "traffic",
    "trends",
    "units",
    "validate_parallelism",
    "variable",
    "workload",
    "workload_costs",
    "write_amplification",
]
