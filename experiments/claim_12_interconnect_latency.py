"""Claim 12: decode messages are latency-bound; high-radix topologies need fewer hops;
in-network reduction cuts all-reduce time.

Ma & Patterson 2026 (section 4, direction 4): Decode's collectives move small messages
(KB to 100s of KB) often, so network LATENCY matters more than bandwidth; topologies of
higher connectivity (high-dimensional tori, dragonfly, trees) need fewer hops than 2D/3D
tori; and processing in the network (all-reduce in the switches) cuts collective time.

What diffhw computes (all with `diffhw.network` and `diffhw.evaluate`):

1. All-reduce time vs message size on ``h100-sxm`` (NVSwitch, 450 GB/s, 0.5 us per
   hop, 1 us per message step, 5 us per collective call in the default profile) at 8
   and 64 chips, with its latency floor (the same all-reduce at infinite bandwidth) and
   its bandwidth floor (zero latency); where they cross; and the Decode all-reduce
   message of Llama-3.1-70B (``d_model x batch x 2 bytes``) marked.
2. Mean hops, diameter and the all-reduce time of a Decode message by topology at a
   fixed chip count.
3. The same all-reduce with and without in-network reduction (NVLink SHARP class).
4. Decode TPOT of Llama-3.1-70B on ``h100-sxm`` vs ``h100-lowlat`` (lower hop and
   endpoint latency, packets landing in SRAM, in-switch reduction) as the
   tensor-parallel group grows.
"""

import dataclasses
import sys

import equinox as eqx
import numpy as np

import _common
import diffhw
from diffhw import presets

CLAIM = 12
TITLE = "Interconnect: decode messages are latency-bound; fewer hops and in-network reduction help"

MODEL = "llama-3.1-70b"
ACT_BYTES = 2.0  # bf16 activations
TOPOLOGIES = ("ring", "torus2d", "torus3d", "torus_hd", "dragonfly", "fat_tree", "switch")
# Latency anchors quoted by Ma & Patterson 2026 (PAPER.md, direction 4, outside figures):
# NVLink small message ~1-2 us end to end, RDMA through one switch ~2 us, a cut-through
# switch hop 0.1-0.6 us.
PAPER_NVLINK_US = (1.0, 2.0)
PAPER_HOP_US = (0.1, 0.6)


def _f(x):
    return np.asarray(x, dtype=float)


@eqx.filter_jit
def _allreduce_jit(hw, msg, chips):
    return diffhw.network.collective_time(hw, "allreduce", msg, chips)


def _allreduce(hw, msg, chips):
    # Compiled once per fabric structure (topology, in-network reduction): cheaper than
    # dispatching the formula's operations one by one.
    return _f(_allreduce_jit(hw, msg, chips))


def _floors(hw):
    """The same hardware at infinite link bandwidth (latency floor) and at zero latency
    (bandwidth floor: no hop, message or per-call software latency)."""
    fast = hw.replace(link_bandwidth_bytes_per_s=1e30)
    prof = dataclasses.replace(hw.profile, collective_latency_s=0.0, collective_step_latency_s=0.0)
    instant = hw.replace(link_latency_s=0.0, message_latency_s=0.0, profile=prof)
    return fast, instant


def _crossover(msg, alpha, beta):
    """Message size (bytes) where the bandwidth floor overtakes the latency floor,
    interpolated in log-log on the grid."""
    d = np.log(beta) - np.log(alpha)
    i = int(np.argmax(d > 0.0))
    if d[i] <= 0.0 or i == 0:
        return float("nan")
    x0, x1 = np.log(msg[i - 1]), np.log(msg[i])
    return float(np.exp(x0 + (x1 - x0) * (-d[i - 1]) / (d[i] - d[i - 1])))


def _with_innet(hw, on):
    return dataclasses.replace(hw, network=dataclasses.replace(hw.network, in_network_reduction=on))


def run(quick: bool, out):
    # One fabric of 8-1024 chips, topology by topology, as the paper's claim compares them:
    # the presets' scale-out network between 8-GPU nodes (Hardware.scale_out) is left out
    hw = presets.hardware("h100-sxm").replace(scale_out=None)
    low = presets.hardware("h100-lowlat").replace(scale_out=None)
    model = presets.model(MODEL)
    d_model = float(model.d_model)
    chips = (8.0, 64.0)
    msg = np.logspace(3, 9, 25 if quick else 61)  # 1 KB .. 1 GB per chip
    decode_batches = (1.0, 16.0, 64.0)
    decode_msg = np.array([d_model * b * ACT_BYTES for b in decode_batches])

    # Every all-reduce below is evaluated on one grid (messages x chips), so the eager
    # operations keep one shape and compile once: the message sweep, the Decode
    # messages, and chip counts 8, 64 and 1024.
    grid = np.concatenate([msg, decode_msg])[:, None]
    p_grid = np.array([8.0, 64.0, 1024.0])[None, :]
    n, col = len(msg), {8.0: 0, 64.0: 1, 1024.0: 2}

    def allreduce(h):
        return _allreduce(h, grid, p_grid)

    # 1. alpha vs beta
    fast, instant = _floors(hw)
    tot, alpha, beta = (allreduce(h) for h in (hw, fast, instant))
    curves = {}
    for p in chips:
        j = col[p]
        curves[p] = dict(total=tot[:n, j], alpha=alpha[:n, j], beta=beta[:n, j],
                         d_total=tot[n:, j], d_alpha=alpha[n:, j], d_beta=beta[n:, j])
    cross = {p: _crossover(msg, c["alpha"], c["beta"]) for p, c in curves.items()}
    share = {p: c["d_alpha"] / c["d_total"] for p, c in curves.items()}

    # fabric latency of one small message, against the paper's anchors
    tiny = 8.0
    sw = float(hw.profile.collective_latency_s + hw.profile.collective_step_latency_s)
    p2p_fabric_us = (float(diffhw.network.collective_time(hw, "p2p", tiny)) - sw) * 1e6
    p2p_low_us = (float(diffhw.network.collective_time(low, "p2p", tiny))
                  - float(low.profile.collective_latency_s + low.profile.collective_step_latency_s)) * 1e6

    # 2. topologies at a fixed chip count
    p_topo = (64.0, 1024.0)
    radix, dims = float(hw.network.switch_radix), float(hw.network.torus_dims)
    hops = {t: _f(diffhw.network.average_hops(t, np.array(p_topo), radix, dims)).tolist() for t in TOPOLOGIES}
    diam = {t: _f(diffhw.network.diameter(t, np.array(p_topo), radix, dims)).tolist() for t in TOPOLOGIES}
    i_topo = n + 1  # batch 16: 256 KiB, the paper's "100s of KB"
    topo_msg = float(decode_msg[1])
    pick = [col[p] for p in p_topo]
    t_topo = {t: allreduce(dataclasses.replace(hw, topology=t))[i_topo, pick].tolist() for t in TOPOLOGIES}

    # 3. in-network reduction (switched topologies)
    innet_topos = ("switch", "fat_tree", "dragonfly")
    t_innet = {t: allreduce(_with_innet(dataclasses.replace(hw, topology=t), True))[i_topo, pick].tolist()
               for t in innet_topos}
    on = allreduce(_with_innet(hw, True))
    innet_curve = {p: on[:n, col[p]] for p in chips}
    innet_speedup_decode = {p: float(curves[p]["d_total"][1] / on[i_topo, col[p]]) for p in chips}

    # 4. Decode TPOT as the tensor-parallel group grows
    tps = (8.0, 16.0, 32.0, 64.0) if not quick else (8.0, 64.0)
    batch = 16.0
    wl = diffhw.workload(batch, 2048, 256)
    tpot, comm = {}, {}
    for name, h in (("h100-sxm", hw), ("h100-lowlat", low)):
        rs = [diffhw.evaluate(h, model, wl, diffhw.parallelism(tp=tp)) for tp in tps]
        tpot[name] = [float(r.tpot_s) for r in rs]
        comm[name] = [float(r.decode.communication_s) for r in rs]
    tpot_ratio = [a / b for a, b in zip(tpot["h100-lowlat"], tpot["h100-sxm"])]

    # tables
    rows = []
    for p in chips:
        c = curves[p]
        for b, m, a, bt, s in zip(decode_batches, decode_msg, c["d_alpha"], c["d_beta"], share[p]):
            rows.append([f"{p:.0f}", f"{b:.0f}", f"{m / 1024:.0f} KiB", f"{a * 1e6:.1f}", f"{bt * 1e6:.2f}",
                         f"{s:.0%}"])
    _common.table(["chips", "batch", "message", "latency floor us", "bandwidth floor us", "latency share"], rows,
                  f"All-reduce of Llama-3.1-70B's Decode message on h100-sxm (paper: latency dominates for KB to "
                  f"100s of KB); alpha = beta at {cross[8.0] / 1e6:.2f} MB (8 chips), {cross[64.0] / 1e6:.2f} MB "
                  f"(64 chips)")
    _common.table(
        ["anchor", "paper", "diffhw"],
        [["one small message, NVLink (fabric)", f"{PAPER_NVLINK_US[0]:.0f}-{PAPER_NVLINK_US[1]:.0f} us",
          f"{p2p_fabric_us:.2f} us (h100-sxm), {p2p_low_us:.2f} us (h100-lowlat)"],
         ["cut-through switch hop", f"{PAPER_HOP_US[0]}-{PAPER_HOP_US[1]} us",
          f"{float(hw.link_latency_s) * 1e6:.2f} us (h100-sxm), {float(low.link_latency_s) * 1e6:.2f} us (lowlat)"],
         ["software per collective call", "-", f"{sw * 1e6:.1f} us (profile default)"]],
        "Latency anchors (PAPER.md direction 4, outside figures)")
    _common.table(
        ["topology", "hops @64", "hops @1024", "diameter @1024", "all-reduce @64 us", "@1024 us", "in-network @1024 us"],
        [[t, f"{hops[t][0]:.2f}", f"{hops[t][1]:.2f}", f"{diam[t][1]:.1f}", f"{t_topo[t][0] * 1e6:.1f}",
          f"{t_topo[t][1] * 1e6:.1f}", f"{t_innet[t][1] * 1e6:.1f}" if t in t_innet else "-"] for t in TOPOLOGIES],
        f"Topologies (radix {radix:.0f}, {dims:.0f}-D torus), all-reduce of {topo_msg / 1024:.0f} KiB "
        f"(paper: high-radix needs fewer hops; in-network reduction cuts time)")
    _common.table(["TP chips", "TPOT h100-sxm ms", "TPOT h100-lowlat ms", "comm sxm ms", "comm lowlat ms", "ratio"],
                  [[f"{tp:.0f}", f"{a * 1e3:.2f}", f"{b * 1e3:.2f}", f"{c * 1e3:.2f}", f"{d * 1e3:.2f}", f"{r:.2f}"]
                   for tp, a, b, c, d, r in zip(tps, tpot["h100-sxm"], tpot["h100-lowlat"], comm["h100-sxm"],
                                                comm["h100-lowlat"], tpot_ratio)],
                  f"Decode TPOT of {MODEL}, batch {batch:.0f}, context 2048, bf16")

    figure = _figure(out, msg, curves, chips, decode_batches, decode_msg, innet_curve, p_topo, hops, t_topo,
                     t_innet, topo_msg, tps, tpot, comm)

    # verdicts, computed
    kb100 = 100e3
    latency_bound = all(share[p][0] > 0.5 and share[p][1] > 0.5 for p in chips) and min(cross.values()) > kb100
    fewer_hops = (hops["torus_hd"][1] < hops["torus3d"][1] < hops["torus2d"][1]
                  and max(hops["dragonfly"][1], hops["fat_tree"][1]) < hops["torus3d"][1])
    innet_helps = all(t_innet[t][1] < t_topo[t][1] for t in innet_topos)
    lowlat_helps = all(r < 1.0 for r in tpot_ratio)
    ok = latency_bound and fewer_hops and innet_helps and lowlat_helps
    paper = ("Decode's small messages (KB to 100s of KB) make interconnect latency matter more than bandwidth; "
             "high-connectivity topologies (high-dimensional tori, dragonfly, trees) need fewer hops than 2D/3D "
             "tori; in-network reduction cuts all-reduce time. Anchors: NVLink small message ~1-2 us, hop 0.1-0.6 us.")
    ours = (f"On 8x h100-sxm a {decode_msg[0] / 1024:.0f}-{decode_msg[1] / 1024:.0f} KiB all-reduce is "
            f"{share[8.0][1]:.0%}-{share[8.0][0]:.0%} latency ({curves[8.0]['d_total'][0] * 1e6:.1f} us); bandwidth "
            f"overtakes latency only above {cross[8.0] / 1e6:.1f} MB (8 chips) / {cross[64.0] / 1e6:.1f} MB (64). "
            f"At 1024 chips mean hops fall from {hops['torus2d'][1]:.1f} (2D torus) and {hops['torus3d'][1]:.1f} (3D) "
            f"to {hops['torus_hd'][1]:.1f} (6D), {hops['dragonfly'][1]:.1f} (dragonfly), "
            f"{hops['fat_tree'][1]:.1f} (fat tree); in-network reduction cuts a {topo_msg / 1024:.0f} KiB all-reduce "
            f"{innet_speedup_decode[8.0]:.2f}x on 8 chips and {innet_speedup_decode[64.0]:.2f}x on 64; "
            f"h100-lowlat cuts Decode TPOT of {MODEL} by {1 - tpot_ratio[0]:.0%} at TP {tps[0]:.0f} and "
            f"{1 - tpot_ratio[-1]:.0%} at TP {tps[-1]:.0f}.")
    if not ok:
        ours += (f" Not all sub-claims hold: latency-bound {latency_bound}, fewer hops {fewer_hops}, "
                 f"in-network helps {innet_helps}, low latency helps {lowlat_helps}.")
    return _common.result(
        CLAIM, TITLE, "reproduced" if ok else "partial", paper, ours, figure,
        decode_message_bytes=decode_msg.tolist(),
        decode_batches=list(decode_batches),
        latency_share_8=share[8.0].tolist(),
        latency_share_64=share[64.0].tolist(),
        allreduce_decode_us_8=(curves[8.0]["d_total"] * 1e6).tolist(),
        allreduce_decode_us_64=(curves[64.0]["d_total"] * 1e6).tolist(),
        crossover_bytes_8=cross[8.0],
        crossover_bytes_64=cross[64.0],
        p2p_fabric_us=p2p_fabric_us,
        p2p_lowlat_fabric_us=p2p_low_us,
        topology_chips=list(p_topo),
        mean_hops=hops,
        diameter=diam,
        topology_message_bytes=topo_msg,
        topology_allreduce_us={t: [x * 1e6 for x in v] for t, v in t_topo.items()},
        innet_allreduce_us={t: [x * 1e6 for x in v] for t, v in t_innet.items()},
        innet_speedup_8=innet_speedup_decode[8.0],
        innet_speedup_64=innet_speedup_decode[64.0],
        tpot_tp=list(tps),
        tpot_ms={k: [x * 1e3 for x in v] for k, v in tpot.items()},
        tpot_lowlat_ratio=tpot_ratio,
    )


def _figure(out, msg, curves, chips, decode_batches, decode_msg, innet_curve, p_topo, hops, t_topo, t_innet,
            topo_msg, tps, tpot, comm):
    plt = _common.pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
    ax = axes[0, 0]
    for p, color in zip(chips, ("C0", "C3")):
        c = curves[p]
        ax.loglog(msg, c["total"] * 1e6, color=color, lw=2, label=f"{p:.0f} chips: all-reduce (diffhw)")
        ax.loglog(msg, c["alpha"] * 1e6, color=color, ls="--", label=f"{p:.0f} chips: latency floor (alpha)")
        ax.loglog(msg, c["beta"] * 1e6, color=color, ls=":", label=f"{p:.0f} chips: bandwidth floor (beta)")
        ax.loglog(msg, innet_curve[p] * 1e6, color=color, ls="-.", alpha=0.7,
                  label=f"{p:.0f} chips: with in-network reduction")
    ax.axvspan(1e3, 1e6, color="0.92", zorder=0, label="paper: decode messages, KB to 100s of KB")
    for b, m in zip(decode_batches, decode_msg):
        ax.axvline(m, color="0.4", lw=0.8)
        ax.text(m * 1.1, 0.15, f"batch {b:.0f}", fontsize=7, rotation=90, va="bottom")
    ax.set_ylim(0.1, None)
    ax.set_xlabel(f"message per chip (bytes); vertical lines: {MODEL} Decode all-reduce (d_model x batch x 2 B)")
    ax.set_ylabel("all-reduce time (us)")
    ax.set_title("All-reduce on h100-sxm (NVSwitch): latency vs bandwidth terms")
    ax.legend(fontsize=6.5, loc="upper left", ncol=2)

    ax = axes[0, 1]
    x = np.arange(len(TOPOLOGIES))
    w = 0.38
    for i, (p, color) in enumerate(zip(p_topo, ("C2", "C1"))):
        ax.bar(x + (i - 0.5) * w, [hops[t][i] for t in TOPOLOGIES], w, color=color, label=f"{p:.0f} chips")
    ax.set_yscale("log")
    ax.set_xticks(x, TOPOLOGIES, rotation=20)
    ax.set_ylabel("mean hops between two chips (links)")
    ax.set_title("Mean hops by topology (radix-64 switches, 6-D torus;\n'switch' = one ideal crossbar). "
                 "Paper: high-radix topologies need fewer hops", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    for i, (p, color) in enumerate(zip(p_topo, ("C2", "C1"))):
        ax.bar(x + (i - 0.5) * w, [t_topo[t][i] * 1e6 for t in TOPOLOGIES], w, color=color,
               label=f"{p:.0f} chips, no in-network reduction")
        xi = [j for j, t in enumerate(TOPOLOGIES) if t in t_innet]
        ax.scatter(x[xi] + (i - 0.5) * w, [t_innet[TOPOLOGIES[j]][i] * 1e6 for j in xi], marker="v", s=60,
                   color="k" if i else "0.5", zorder=3, label=f"{p:.0f} chips, in-network reduction")
    ax.set_yscale("log")
    ax.set_xticks(x, TOPOLOGIES, rotation=20)
    ax.set_ylabel("all-reduce time (us)")
    ax.set_title(f"All-reduce of a {topo_msg / 1024:.0f} KiB decode message by topology\n"
                 "(h100-sxm link and latencies; paper: in-network reduction cuts it)")
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    for name, color in (("h100-sxm", "C0"), ("h100-lowlat", "C2")):
        ax.plot(tps, [t * 1e3 for t in tpot[name]], "o-", color=color, label=f"{name}: TPOT")
        ax.plot(tps, [t * 1e3 for t in comm[name]], "s--", color=color, label=f"{name}: its communication")
    ax.set_ylim(0, None)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("tensor-parallel chips")
    ax.set_ylabel("Decode time per output token (ms)")
    ax.set_title(f"{MODEL}, batch 16, context 2048: a low-latency network\n(paper: latency, not bandwidth, "
                 "limits multi-chip Decode)")
    ax.legend(fontsize=8)
    return _common.save(fig, out, "claim_12_interconnect_latency.png")


if __name__ == "__main__":
    sys.exit(_common.main(run))
