"""Hardware as an Equinox module of float leaves: one chip, its memory tiers, near-memory
logic and the fabric that joins several."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._smooth import DEFAULT_TAU, smooth_max
from .._workload._precision import FLOAT_COLUMNS, Precision
from ._collectives import NetworkOptions, ScaleOut
from ._memory import Placement
from ._near_memory import NearMemory
from ._profile import Profile


def _f(x):
    return jnp.asarray(x, dtype=float)


Scalar = Float[Array, ""]

#: Maximum Achievable Matmul FLOPS of the part the calibration profiles' compute
#: efficiencies are stated for: H100 SXM reaches 794.5 of its 989 dense bf16 TFLOPS in
#: torch matmuls (80.3%; github.com/stas00/ml-engineering compute/accelerator/README.md,
#: "Maximum Achievable Matmul FLOPS comparison table", torch 2.7.0 + CUDA 12.6). A chip's
#: `Hardware.matmul_efficiency` scales its matrix rate by its own over this one; a chip
#: without a published measurement carries this value (no change).
REFERENCE_MATMUL_EFFICIENCY = 0.803

#: Topologies the collectives know ("none": a single device with no fabric).
TOPOLOGIES = ("switch", "ring", "torus2d", "torus3d", "torus_hd", "mesh", "fat_tree", "dragonfly", "none")


class Hardware(eqx.Module):
    """One accelerator chip (GPU, TPU, SoC, wafer) and the fabric that joins several.

    All continuous quantities are float leaves in SI units, so every output of diffhw is
    differentiable with respect to them. A chip with no native support for a format
    carries the peak of the next wider format it falls back to (set by the loaders).

    **Fields:**

    - `flop_per_s_fp32`, `flop_per_s_bf16`, `flop_per_s_fp8`, `flop_per_s_int8`,
      `flop_per_s_fp4`: dense peak FLOP/s (OP/s for int8) per chip.
    - `memory_capacity_bytes`, `memory_bandwidth_bytes_per_s`: main memory per chip.
    - `sram_bytes`: on-chip SRAM / last-level cache per chip.
    - `link_bandwidth_bytes_per_s`: unidirectional scale-up bandwidth per chip.
    - `link_latency_s`: latency per network hop.
    - `message_latency_s`: fixed latency per message / collective step (endpoint).
    - `tdp_w`: thermal design power per chip (reported; energy comes later).
    - `profile`: the `Profile` of software efficiency terms.
    - `tiers`: extra `MemoryTier`s beside main memory (HBF, DDR, SSD...), default none.
    - `placement`: the `Placement` of data classes over main memory and `tiers`
      (default: everything in main memory).
    - `network`: `NetworkOptions` (collective algorithm, in-network reduction, where
      packets land, stragglers, switch radix, torus dimensions).
    - `near_memory`: a `NearMemory` (PNM, PIM or 3D-stacked logic on one tier), or None.
    - `scale_out`: a `ScaleOut` (the slower network between scale-up domains of a
      multi-node system: chips per domain, NIC bandwidth and latency), or None (every
      chip of the system in one scale-up domain, the fabric above).
    - `tier_access`: ``"parallel"`` (tiers stream at once; smooth max of their times) or
      ``"serial"`` (sum), static.
    - `topology`: one of `TOPOLOGIES` (static).
    - `default_chips`: chips in the natural scale-up unit (static, used by the CLI).
    - `matmul_efficiency`: the share of its dense bf16 peak the chip's own BLAS reaches
      on the best large matrix multiply (Maximum Achievable Matmul FLOPS over the
      datasheet peak), in (0, 1]: A100 SXM 0.869, H100 SXM 0.803, MI325X 0.604, MI300X
      0.514 in one published microbenchmark. Matrix work runs at ``matmul_efficiency /
      REFERENCE_MATMUL_EFFICIENCY`` of the rate the profile states for H100-class
      kernels (`matmul_flop_per_s`); default `REFERENCE_MATMUL_EFFICIENCY` (a chip
      without a measurement: no change).
    """

    flop_per_s_fp32: Scalar = eqx.field(converter=_f)
    flop_per_s_bf16: Scalar = eqx.field(converter=_f)
    flop_per_s_fp8: Scalar = eqx.field(converter=_f)
    flop_per_s_int8: Scalar = eqx.field(converter=_f)
    flop_per_s_fp4: Scalar = eqx.field(converter=_f)
    memory_capacity_bytes: Scalar = eqx.field(converter=_f)
    memory_bandwidth_bytes_per_s: Scalar = eqx.field(converter=_f)
    sram_bytes: Scalar = eqx.field(converter=_f)
    link_bandwidth_bytes_per_s: Scalar = eqx.field(converter=_f)
    link_latency_s: Scalar = eqx.field(converter=_f)
    message_latency_s: Scalar = eqx.field(converter=_f)
    tdp_w: Scalar = eqx.field(converter=_f)
    profile: Profile
    tiers: tuple = ()
    placement: Placement | None = None
    near_memory: NearMemory | None = None
    network: NetworkOptions = eqx.field(default_factory=NetworkOptions)
    scale_out: ScaleOut | None = None
    matmul_efficiency: Scalar = eqx.field(converter=_f, default=REFERENCE_MATMUL_EFFICIENCY)
    tier_access: str = eqx.field(static=True, default="parallel")
    topology: str = eqx.field(static=True, default="switch")
    default_chips: int = eqx.field(static=True, default=1)
    name: str = eqx.field(static=True, default="custom")
    description: str = eqx.field(static=True, default="")

    def peak_flop_per_s(self, p: Precision):
        """Dense peak FLOP/s per chip for matrix work in format `p`.

        A named format reads its column; a custom bit width interpolates the float
        columns linearly in ``log2(bits)`` (and is flat beyond fp4 and fp32).
        """
        if p.column != "interp":
            return getattr(self, f"flop_per_s_{p.column}")
        xs = jnp.log2(jnp.asarray([b for _, b in FLOAT_COLUMNS]))
        ys = jnp.stack([jnp.log(getattr(self, f"flop_per_s_{c}")) for c, _ in FLOAT_COLUMNS])
        return jnp.exp(jnp.interp(jnp.log2(p.bits), xs, ys))

    def matmul_flop_per_s(self, p: Precision, tau=DEFAULT_TAU):
        """FLOP/s per chip for matrix work in format `p`: the format's peak scaled by the
        profile's share for it relative to bf16 (`Profile.precision_ratio`), never below
        the next wider format's rate (a kernel library runs the faster path: on a chip
        without FP8 tensor cores, whose FP8 column holds the bf16 peak, FP8 runs at bf16's
        rate, not at FP8's share of it; FP4 on a chip without FP4 at FP8's). The chain is
        bf16 <- fp8 <- fp4 and bf16 <- int8, a `smooth_max` at temperature `tau` (0: the
        hard maximum). The peak the roofline divides by, before ``compute_efficiency`` and
        the rows' factor. All of it is scaled by this chip's `matmul_efficiency` over
        `REFERENCE_MATMUL_EFFICIENCY` (its kernels reach more or less of their peak than
        the H100-class kernels the profile's shares were fitted on).

        A custom bit width interpolates these rates of the float columns linearly in
        ``log2(bits)``, as `peak_flop_per_s` does the peaks.
        """
        rates = self._format_rates(tau)
        if p.column != "interp":
            return rates[p.column]
        xs = jnp.log2(jnp.asarray([b for _, b in FLOAT_COLUMNS]))
        ys = jnp.stack([jnp.log(rates[c]) for c, _ in FLOAT_COLUMNS])
        return jnp.exp(jnp.interp(jnp.log2(p.bits), xs, ys))

    def _format_rates(self, tau):
        """Matrix FLOP/s per float column and int8 (`matmul_flop_per_s`)."""
        prof = self.profile
        scale = self.matmul_efficiency / REFERENCE_MATMUL_EFFICIENCY
        bf16 = self.flop_per_s_bf16 * scale
        fp8 = smooth_max(bf16, self.flop_per_s_fp8 * scale * prof.precision_ratio("fp8"), tau=tau)
        fp4 = smooth_max(fp8, self.flop_per_s_fp4 * scale * prof.precision_ratio("fp4"), tau=tau)
        int8 = smooth_max(bf16, self.flop_per_s_int8 * scale * prof.precision_ratio("int8"), tau=tau)
        return {"fp32": self.flop_per_s_fp32 * scale, "bf16": bf16, "fp8": fp8, "fp4": fp4, "int8": int8}

    def replace(self, **changes):
        """A copy with some fields changed (float fields by value, or the profile)."""
        names = list(changes)
        keep = ("profile", "tiers", "placement", "near_memory", "network", "scale_out")
        return eqx.tree_at(
            lambda h: [getattr(h, n) for n in names],
            self,
            [changes[n] if n in keep else _f(changes[n]) for n in names],
            is_leaf=lambda x: x is None,
        )
