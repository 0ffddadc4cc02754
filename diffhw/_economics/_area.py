"""Silicon area of a chip from its specification and a technology's densities."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _smooth
from .._hardware import _near_memory

Scalar = Float[Array, ""]


class Area(eqx.Module):
    """Logic silicon of one chip (mm2); memory stacks are not included.

    - `compute_mm2`: tensor/vector compute fabric, ``FLOP/s * mm2 per FLOP/s``.
    - `sram_mm2`: on-chip SRAM (plus main memory when it is on-die SRAM).
    - `memory_phy_mm2`: memory PHYs and controllers, per memory device (stack/channel)
      needed for the bandwidth, plus each extra tier's interface.
    - `serdes_mm2`: scale-up network SerDes, per unit of link bandwidth.
    - `chiplets`: relaxed die count (see `chip_area`).
    - `total_mm2`: all host logic dies, with die-to-die overhead for every extra chiplet.
    - `near_memory_mm2`: logic of near-memory units and 3D-stacked logic dies
      (`diffhw._hardware._near_memory.logic_mm2`); it sits on the memory side (base or stacked
      dies), so it is not part of `total_mm2` nor of the reticle split, and is costed as
      its own dies (`diffhw._economics._cost`). ``silicon_mm2`` adds both.
    """

    compute_mm2: Scalar
    sram_mm2: Scalar
    memory_phy_mm2: Scalar
    serdes_mm2: Scalar
    chiplets: Scalar
    total_mm2: Scalar
    near_memory_mm2: Scalar

    @property
    def die_mm2(self):
        return self.total_mm2 / self.chiplets

    @property
    def silicon_mm2(self):
        return self.total_mm2 + self.near_memory_mm2


def memory_devices(hw, tech):
    """Memory devices (HBM stacks, DRAM channels) the chip's bandwidth needs (relaxed)."""
    return _smooth.safe_div(hw.memory_bandwidth_bytes_per_s, tech.device_bandwidth_bytes_per_s)


def chip_area(hw, tech, tau=_smooth.DEFAULT_TAU) -> Area:
    """Area model of one chip (mm2).

    ``base = F * a_F + S * a_S + n_dev * a_PHY + L * a_L`` where ``F`` is dense BF16
    FLOP/s, ``S`` SRAM bytes (main memory too when it is on-die SRAM), ``n_dev`` the
    memory devices the bandwidth needs and ``L`` the link bandwidth; ``a_*`` come from
    the `Technology`. Past the reticle ``R`` the design splits smoothly into
    ``n = smooth_max((base - d) / (R - d), 1)`` reticle-sized chiplets, each extra one
    adding ``d = chiplet_overhead * R`` of area for die-to-die interfaces. Near-memory
    logic is reported apart (``near_memory_mm2``). Densities: see
    ``diffhw/data/technology/logic.toml``.
    """
    compute = hw.flop_per_s_bf16 * tech.compute_mm2_per_flop_per_s
    sram = (hw.sram_bytes + tech.memory_on_die * hw.memory_capacity_bytes) * tech.sram_mm2_per_byte
    phy = memory_devices(hw, tech) * tech.phy_mm2_per_device + sum(t.phy_mm2 for t in hw.tiers)
    serdes = hw.link_bandwidth_bytes_per_s * tech.serdes_mm2_per_byte_per_s
    base = compute + sram + phy + serdes
    d2d = tech.chiplet_overhead * tech.reticle_mm2  # die-to-die area per extra chiplet
    n = _smooth.smooth_max((base - d2d) / (tech.reticle_mm2 - d2d), 1.0, tau=tau)
    total = base + d2d * (n - 1.0)
    near = _near_memory.logic_mm2(hw.near_memory, tech) if hw.near_memory is not None else jnp.zeros_like(total)
    return Area(compute, sram, phy, serdes, n, total, near)
