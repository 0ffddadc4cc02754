"""The paper's memory directions, computed (claims 4-8).

Run: ``python experiments/directions.py``. Uses only public diffhw names.
"""

import equinox as eqx
import jax.numpy as jnp

import diffhw

YEAR = 365.25 * 24 * 3600


def min_chips(hw_name, model_name, batch, isl, osl, precision="fp8"):
    """Fewest chips (tp = chips, up to 64) that hold the model and the batch's KV cache."""
    hw = diffhw.presets.hardware(hw_name)
    model = diffhw.presets.model(model_name)
    for chips in (1, 2, 4, 8, 16, 32, 64):
        if model.n_heads % chips:
            continue
        m = diffhw.evaluate(hw, model, diffhw.workload(batch, isl, osl, precision), diffhw.parallelism(tp=chips))
        if bool(m.fits):
            return chips, m
    return None, None


def main():
    print("Claim 4: HBF's capacity cuts the minimum system for a giant model")
    for name in ("b200", "b200-hbf"):
        chips, m = min_chips(name, "llama-3.1-405b", 16, 8192, 1024)
        print(f"  llama-3.1-405b fp8, batch 16, 8K+1K: {name:10s} needs {chips} chips"
              + (f", TPOT {float(m.tpot_s) * 1e3:.1f} ms" if m is not None else ""))

    print("\nClaim 5: HBF holds weights and read-only context, not the KV cache")
    hw = diffhw.presets.hardware("b200-hbf")
    model = diffhw.presets.model("deepseek-v3")
    par = diffhw.parallelism(tp=8, ep=8)
    wl = diffhw.workload(64, 8192, 1024, "fp8", shared_context_tokens=100_000)
    for label, pl in [
        ("weights + context in HBF", diffhw.Placement([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])),
        ("KV cache in HBF too     ", diffhw.Placement([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])),
    ]:
        m = diffhw.evaluate(hw.replace(placement=pl), model, wl, par)
        life = float(m.tiers.lifetime_s[1]) / YEAR
        print(f"  {label}: HBF lifetime {'unlimited' if life > 1e6 else f'{life:.1f} years'}, "
              f"TPOT {float(m.tpot_s) * 1e3:.1f} ms")

    print("\nClaim 6: HBF's microsecond latency needs an SRAM buffer of ~2 x bandwidth x latency")
    tier = hw.tiers[0]
    print(f"  8 HBF stacks need {2 * float(tier.read_bandwidth_bytes_per_s * tier.read_latency_s) / 1e6:.0f} MB"
          " (SK hynix H3 uses 40 MB)")
    for mb in (4, 16, 40, 160):
        t = eqx.tree_at(lambda x: x.prefetch_buffer_bytes, tier, jnp.asarray(mb * 1e6))
        m = diffhw.evaluate(hw.replace(tiers=(t,)), model, wl, par)
        print(f"  buffer {mb:4d} MB: TPOT {float(m.tpot_s) * 1e3:6.1f} ms")

    print("\nClaim 7: PIM is plausible on a phone (batch 1, small model)")
    small = diffhw.presets.model("llama-3.1-8b")
    for name in ("snapdragon-8-gen-3", "snapdragon-8-gen-3-pim"):
        m = diffhw.evaluate(diffhw.presets.hardware(name), small, diffhw.workload(1, 1024, 256, "int4"),
                            diffhw.parallelism())
        print(f"  {name:24s} {float(m.per_user_tokens_per_s):6.1f} tokens/s")

    print("\nClaim 8: 3D stacking under a thermal cap: Decode barely moves")
    hw3 = diffhw.presets.hardware("b200-3d")
    model70 = diffhw.presets.model("llama-3.1-70b")
    for density in (1e6, 0.5, 0.25, 0.2):
        nm = eqx.tree_at(lambda n: n.power_density_w_per_mm2, hw3.near_memory, jnp.asarray(density))
        m = diffhw.evaluate(hw3.replace(near_memory=nm), model70, diffhw.workload(4, 4096, 256),
                            diffhw.parallelism(tp=8))
        print(f"  {density:>9g} W/mm2: TPOT {float(m.tpot_s) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
