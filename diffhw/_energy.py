"""Energy and power: compute, memory, on-chip SRAM, network and static power."""

def flop_energy_j(tech, precision):
    """Energy per FLOP at a precision: the BF16 figure scaled by bits / 16 (a multiplier's
    energy grows with operand width; tech_constants: FP8 0.15, FP4 0.075 pJ/FLOP)."""
    return tech.compute_j_per_flop * precision.bits / 16.0


def dynamic_energy_j(tech, work, precision):
    """Dynamic energy of a `Work` (J): FLOPs, main-memory bytes (each also staged through
    on-chip SRAM ``sram_bytes_per_memory_byte`` times) and bytes sent on links."""
    per_mem_byte = tech.memory_j_per_byte + tech.sram_bytes_per_memory_byte * tech.sram_j_per_byte
    return (
        work.flops * flop_energy_j(tech, precision)
        + work.memory_bytes * per_mem_byte
        + work.network_bytes * tech.link_j_per_byte
    )


def peak_dynamic_power_w(hw, tech):
    """Dynamic power with every unit at its peak: dense BF16 FLOP/s, memory bandwidth
    (through SRAM) and the links in both directions (W)."""
    per_mem_byte = tech.memory_j_per_byte + tech.sram_bytes_per_memory_byte * tech.sram_j_per_byte
    return (
        hw.flop_per_s_bf16 * tech.compute_j_per_flop
        + hw.memory_bandwidth_bytes_per_s * per_mem_byte
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
