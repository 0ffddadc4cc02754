"""Claim 8: HBF's 4 KB reads and microsecond latency: effective bandwidth vs access size,
and the on-chip prefetch buffer it needs (bandwidth x latency in flight).

Access size: a device that reads `granularity` bytes at a time moves a whole unit for a
smaller access, so only ``access / unit`` of its bandwidth is useful. diffhw's timing uses
`diffhw.access_efficiency` (``access / smooth_max(access, unit)``, aligned accesses; an
access of several units is taken as whole units), the same function that inflates every
tier's traffic; the exact aligned rule ``access / (ceil(access / unit) x unit)`` is drawn
beside it. Devices are Table 3's rows (``diffhw.presets.memory_device``).

Buffer: a tier with read latency ``L`` keeps ``bandwidth x L`` bytes in flight to stream
at full bandwidth (Little's law); the model caps a tier's sustained bandwidth at ``buffer
/ L`` (`diffhw.sustained_bandwidth`), so a step stops getting faster at ``buffer =
bandwidth x L`` (`diffhw.needed_buffer_bytes`). DeepSeek-V3 FP8 on ``b200-hbf`` (weights and
a 100K-token shared context in 8 HBF stacks, KV cache in HBM) shows it.
"""

import pathlib
import sys

import _common
import equinox as eqx
import jax.numpy as jnp
import numpy as np

import diffhw

CLAIM = 8
TITLE = "HBF's 4 KB reads and microsecond latency: effective bandwidth vs access size, prefetch buffer"

H3_BUFFER_MB = 40.0  # PAPER.md (outside figures): SK hynix H3, 40 MB SRAM latency buffer for 8 HBF stacks
DEVICES = ("HBF", "HBM4", "DDR5", "SSD")  # Table 3 rows


def _tpot(hw, model, wl, par, buffer_bytes):
    tier = eqx.tree_at(lambda t: t.prefetch_buffer_bytes, hw.tiers[0], jnp.asarray(buffer_bytes, dtype=float))
    return float(diffhw.evaluate(hw.replace(tiers=(tier,)), model, wl, par).tpot_s)


def run(quick: bool, out: pathlib.Path) -> dict:
    # --- effective bandwidth vs access size (Table 3 devices)
    sizes = np.logspace(np.log2(8), np.log2(1 << 20), 25 if quick else 97, base=2.0)
    dev = {name: diffhw.presets.memory_device(name) for name in DEVICES}
    eff = {name: np.asarray(diffhw.access_efficiency(jnp.asarray(sizes), d["granularity_bytes"]))
           for name, d in dev.items()}

    def exact(s, unit):
        return s / (np.ceil(s / unit) * unit)

    def eff_at(name, s):
        return float(diffhw.access_efficiency(jnp.asarray(float(s)), dev[name]["granularity_bytes"]))

    model = diffhw.presets.model("deepseek-v3")
    # The model's access sizes (as its timing takes them): an FP8 weight row (d_model
    # bytes), a 16-token page of the MLA latent (KV reads), one token's latent (a KV append).
    latent = float(model.kv_lora_rank + model.qk_rope_dim)
    accesses = {"weight row": float(model.d_model), "KV page (16 tokens)": 16.0 * latent, "KV append": latent}

    # --- TPOT vs prefetch buffer on b200-hbf
    hw = diffhw.presets.hardware("b200-hbf")
    par = diffhw.parallelism(tp=8, ep=8)
    wl = diffhw.workload(64, 8192, 1024, "fp8", shared_context_tokens=100_000)
    tier = hw.tiers[0]
    need = float(diffhw.needed_buffer_bytes(tier))
    bw = float(tier.read_bandwidth_bytes_per_s)
    lat = float(tier.read_latency_s)
    buffers = np.logspace(np.log10(1e6), np.log10(400e6), 12 if quick else 60)
    tpots = np.asarray([_tpot(hw, model, wl, par, b) for b in buffers])
    flat = _tpot(hw, model, wl, par, 100.0 * need)  # far past the knee
    at = {k: _tpot(hw, model, wl, par, k * need) for k in (0.5, 1.0, 1.5, 2.0)}
    at_h3 = _tpot(hw, model, wl, par, H3_BUFFER_MB * 1e6)
    # smallest buffer within 1% of the flat TPOT, on a fine grid around the knee
    fine = need * np.linspace(0.5, 2.0, 16 if quick else 61)
    fine_t = np.asarray([_tpot(hw, model, wl, par, b) for b in fine])
    within = fine[fine_t <= 1.01 * flat]
    saturation = float(within[0]) if within.size else float("nan")

    hbf_bw, hbm_bw = dev["HBF"]["bandwidth_gb_s"], dev["HBM4"]["bandwidth_gb_s"]
    rows = [
        ["bytes per read", "HBF 4096, HBM 32",
         f"HBF {dev['HBF']['granularity_bytes']:.0f}, HBM4 {dev['HBM4']['granularity_bytes']:.0f}"],
        ["useful GB/s per stack, 64-B reads", "small reads waste bandwidth",
         f"HBF {hbf_bw * eff_at('HBF', 64):.1f}, HBM4 {hbm_bw * eff_at('HBM4', 64):.0f} (of {hbf_bw:.0f})"],
        ["useful GB/s per stack, 576-B KV append", "-",
         f"HBF {hbf_bw * eff_at('HBF', latent):.0f}, HBM4 {hbm_bw * eff_at('HBM4', latent):.0f}"],
        ["useful fraction, DS-V3 weight row / KV page", "-",
         f"{eff_at('HBF', accesses['weight row']):.3f} / {eff_at('HBF', accesses['KV page (16 tokens)']):.3f}"],
        ["buffer to stream 8 HBF stacks", "BW x latency; H3 uses 40 MB",
         f"{need / 1e6:.1f} MB = {bw / 1e12:.1f} TB/s x {lat * 1e6:.0f} us"],
        ["TPOT at 0.5x / 1x / 2x that buffer", "-",
         f"{at[0.5] * 1e3:.1f} / {at[1.0] * 1e3:.2f} / {at[2.0] * 1e3:.2f} ms (flat {flat * 1e3:.2f})"],
        ["TPOT with H3's 40 MB", "-", f"{at_h3 * 1e3:.2f} ms"],
        ["buffer within 1% of the flat TPOT", "-", f"{saturation / 1e6:.1f} MB = {saturation / need:.2f} x BW x L"],
    ]
    _common.table(["quantity", "paper", "diffhw"], rows, "Claim 8: HBF access size and latency buffer")

    plt = _common.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.5, 4.8))
    for (name, d), color in zip(dev.items(), ("C3", "C0", "C2", "C7")):
        ax1.loglog(sizes, d["bandwidth_gb_s"] * eff[name], color=color, lw=2,
                   label=f"{name} ({d['granularity_bytes']:.0f} B/read, {d['bandwidth_gb_s']:.0f} GB/s)")
        ax1.loglog(sizes, d["bandwidth_gb_s"] * exact(sizes, d["granularity_bytes"]), color=color, lw=0.8, ls=":")
    for (label, s), mk in zip(accesses.items(), ("v", "s", "^")):
        ax1.plot([s], [hbf_bw * eff_at("HBF", s)], mk, color="k", ms=6, label=f"DeepSeek-V3 {label} on HBF ({s:.0f} B)")
    ax1.axvline(4096, color="grey", ls="--", lw=1, label="paper: HBF reads 4096 B (Table 3)")
    ax1.set_xlabel("access size (bytes)")
    ax1.set_ylabel("useful bandwidth per device (GB/s)")
    ax1.set_title("Effective bandwidth vs access size (solid: model, dotted: exact ceil)")
    ax1.legend(fontsize=7, loc="lower right")
    ax2.semilogx(buffers / 1e6, tpots * 1e3, "o-", ms=3, lw=2, label="diffhw TPOT")
    ax2.axvline(need / 1e6, color="C1", ls="--", label=f"BW x latency = {need / 1e6:.1f} MB (Little's law)")
    ax2.axvline(H3_BUFFER_MB, color="C2", ls="-.", label=f"SK hynix H3: {H3_BUFFER_MB:.0f} MB (paper, outside)")
    ax2.axhline(flat * 1e3, color="grey", lw=0.8, label=f"full HBF bandwidth: {flat * 1e3:.1f} ms")
    ax2.set_xlabel("on-chip prefetch buffer for the HBF tier (MB)")
    ax2.set_ylabel("TPOT (ms)")
    ax2.set_title("TPOT vs prefetch buffer (DeepSeek-V3 FP8, b200-hbf, batch 64)")
    ax2.legend(fontsize=7)
    fig.suptitle("Claim 8: HBF's 4 KB pages and microsecond latency")
    figure = _common.save(fig, out, "claim_08_hbf_access.png")

    small_waste = eff_at("HBF", 64) < 0.05 and eff_at("HBM4", 64) > 0.95
    knee = 0.8 <= saturation / need <= 1.25 and at[0.5] > 1.2 * flat
    status = "reproduced" if small_waste and knee else "partial"
    ours = (f"64-byte reads get {hbf_bw * eff_at('HBF', 64):.0f} of {hbf_bw:.0f} GB/s from an HBF stack vs "
            f"{hbm_bw * eff_at('HBM4', 64):.0f} from HBM4; DeepSeek-V3's weight rows ({accesses['weight row']:.0f} B) "
            f"and KV pages ({accesses['KV page (16 tokens)']:.0f} B) exceed a page, so the model serves them at full "
            f"rate (it takes a multi-page access as whole pages; exact aligned rounding would give "
            f"{exact(accesses['weight row'], 4096.0):.3f} for the row). "
            f"8 HBF stacks at {lat * 1e6:.0f} us need BW x latency = {need / 1e6:.1f} MB in flight: TPOT is "
            f"{at[0.5] / flat:.2f}x the flat {flat * 1e3:.1f} ms at half that, within 1% from "
            f"{saturation / 1e6:.1f} MB; H3's 40 MB ({H3_BUFFER_MB * 1e6 / need:.2f}x) suffices.")
    paper = ("HBF reads 4096 bytes at a time with latency in the thousands of ns (HBM: 32 bytes, 10-100 ns), so "
             "small reads waste bandwidth and an SRAM buffer must hold bandwidth x latency in flight "
             "(outside: SK hynix H3 uses 40 MB).")
    return _common.result(
        CLAIM, TITLE, status, paper, ours, figure,
        hbf_granularity_bytes=float(dev["HBF"]["granularity_bytes"]),
        hbm4_granularity_bytes=float(dev["HBM4"]["granularity_bytes"]),
        hbf_efficiency_64b=eff_at("HBF", 64),
        hbm4_efficiency_64b=eff_at("HBM4", 64),
        hbf_efficiency_kv_append=eff_at("HBF", latent),
        hbf_efficiency_weight_row=eff_at("HBF", accesses["weight row"]),
        hbf_exact_efficiency_weight_row=float(exact(accesses["weight row"], dev["HBF"]["granularity_bytes"])),
        needed_buffer_mb=need / 1e6,
        bandwidth_x_latency_mb=bw * lat / 1e6,
        saturation_buffer_mb=saturation / 1e6,
        saturation_over_needed=saturation / need,
        tpot_ms_flat=flat * 1e3,
        tpot_ms_half_needed=at[0.5] * 1e3,
        tpot_ms_needed=at[1.0] * 1e3,
        tpot_ms_double_needed=at[2.0] * 1e3,
        tpot_ms_h3_40mb=at_h3 * 1e3,
        buffers_mb=[float(b / 1e6) for b in buffers],
        tpot_ms=[float(t * 1e3) for t in tpots],
    )


if __name__ == "__main__":
    sys.exit(_common.main(run))
