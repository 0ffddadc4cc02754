"""Energy and power: compute, memory, on-chip SRAM, network and static power."""

from .._hardware import _memory


def flop_energy_j(tech, precision):
    """Energy per FLOP at a precision: the BF16 figure scaled by bits / 16 (a multiplier's
    energy grows with operand width; tech_constants: FP8 0.15, FP4 0.075 pJ/FLOP)."""
    return tech.compute_j_per_flop * precision.bits / 16.0


def memory_energy_j(hw, tech, work):
    """Energy of a `Work`'s memory traffic (J): each data class's bytes in each tier at that
    tier's energy per byte read or written (main memory at the technology's), every byte
    also staged through on-chip SRAM ``sram_bytes_per_memory_byte`` times."""
    frac = _memory.fractions_of(hw)
    reads, writes = _memory._per_tier(frac, work.reads_by_class), _memory._per_tier(frac, work.writes_by_class)
    e = (reads[0] + writes[0]) * tech.memory_j_per_byte
    for i, t in enumerate(hw.tiers, start=1):
        e = e + reads[i] * t.read_j_per_byte + writes[i] * t.write_j_per_byte
    return e + work.memory_bytes * tech.sram_bytes_per_memory_byte * tech.sram_j_per_byte


def dynamic_energy_j(hw, tech, work, precision):
    """Dynamic energy of a `Work` (J): FLOPs at the precision's energy, memory traffic
    (`memory_energy_j`) and bytes sent on links."""
    e = (
        work.flops * flop_energy_j(tech, precision)
        + memory_energy_j(hw, tech, work)
        + work.network_bytes * tech.link_j_per_byte
    )
    nm = hw.near_memory
    if nm is not None:
        # offloaded work runs at the near-memory units' energies instead of the host's
        tier_j = tech.memory_j_per_byte if nm.tier == 0 else hw.tiers[nm.tier - 1].read_j_per_byte
        e = e + work.near_flops * (nm.j_per_flop - flop_energy_j(tech, precision))
        e = e + work.near_bytes * (nm.j_per_byte - tier_j - tech.sram_bytes_per_memory_byte * tech.sram_j_per_byte)
    return e


def peak_dynamic_power_w(hw, tech):
    """Dynamic power with every unit at its peak: dense BF16 FLOP/s, memory bandwidth
    (through SRAM) and the links in both directions (W)."""
    sram = tech.sram_bytes_per_memory_byte * tech.sram_j_per_byte
    tiers = sum(t.read_bandwidth_bytes_per_s * (t.read_j_per_byte + sram) for t in hw.tiers)
    if hw.near_memory is not None:
        tiers = tiers + hw.near_memory.flop_per_s * hw.near_memory.j_per_flop
    return (
        hw.flop_per_s_bf16 * tech.compute_j_per_flop
        + hw.memory_bandwidth_bytes_per_s * (tech.memory_j_per_byte + sram)
        + tiers
        + 2.0 * hw.link_bandwidth_bytes_per_s * tech.link_j_per_byte
    )


def static_power_w(hw, tech):
    """Static (leakage and always-on) power: ``static_fraction`` of peak power, i.e.
    ``f / (1 - f)`` times the peak dynamic power (W)."""
    f = tech.static_fraction
    return f / (1.0 - f) * peak_dynamic_power_w(hw, tech)


def peak_power_w(hw, tech):
    """Modelled peak power of one chip (W): peak dynamic plus static. Compare with TDP."""
    return peak_dynamic_power_w(hw, tech) + static_power_w(hw, tech)
