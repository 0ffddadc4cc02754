"""Claim 6: HBF's ~10x capacity shrinks the minimum system for a large model, and with
it power, TCO, CO2e and network hops (Ma & Patterson 2026, direction 1).

For each model, `diffhw.min_chips` searches every parallel layout (tp dividing the heads,
any pipeline depth up to the layer count, data and expert parallelism) for the fewest
chips whose memory holds the weights and the KV cache of a stated batch; then the
minimum HBM system (`b200`) and the minimum HBM+HBF system (`b200-hbf`) are compared.

Network hops are counted, per Decode token, as the chip-to-chip messages on the token's
critical path times the links each crosses: ``pp - 1`` pipeline hand-offs, plus two
collectives per layer when ``tp > 1`` (attention and FFN all-reduces), plus two per MoE
layer when ``ep > 1`` (dispatch and combine); each message crosses 2 links in both
presets' NVSwitch fabric (chip -> switch -> chip; the ``switch`` topology of
``diffhw.network``'s graph model).
"""

import pathlib
import sys

import _common
import numpy as np

import diffhw

CLAIM = 6
TITLE = "HBF's 10x capacity cuts the minimum system (chips, power, TCO, CO2e, network hops)"

HBM, HBF = "b200", "b200-hbf"
#: A stated serving point: 16 concurrent requests, 8K-token prompts, 1K-token answers, FP8.
BATCH, ISL, OSL, PRECISION = 16, 8192, 1024, "fp8"
LINKS_PER_MESSAGE = 2  # chip -> NVSwitch -> chip (both presets: topology = "switch")
MAX_CHIPS = 32
#: metric key -> (label, unit, how to read it from a min_chips result)
METRICS = {
    "chips": ("chips", "", lambda r, hops: float(r.chips)),
    "tpot_ms": ("TPOT", "ms", lambda r, hops: float(r.metrics.tpot_s) * 1e3),
    "power_kw": ("system power", "kW", lambda r, hops: float(r.metrics.economics.facility_power_w) / 1e3),
    "tco_kusd_per_year": ("TCO", "k$/yr", lambda r, hops: float(r.metrics.economics.tco_usd_per_year) / 1e3),
    "usd_per_mtok": ("cost", "$/Mtok", lambda r, hops: float(r.metrics.economics.usd_per_million_tokens)),
    "kgco2e_per_mtok": ("CO2e", "kg/Mtok", lambda r, hops: float(r.metrics.economics.kgco2e_per_million_tokens)),
    "embodied_tco2e": ("embodied CO2e", "t", lambda r, hops: float(r.metrics.economics.embodied_kgco2e) / 1e3),
    "hops_per_token": ("network hops", "/token", lambda r, hops: float(hops)),
}


def hops_per_token(model, par):
    """Links crossed per Decode token on the critical path (see the module docstring)."""
    tp, pp, ep = (float(getattr(par, k)) for k in ("tp", "pp", "ep"))
    messages = (pp - 1.0) + (2.0 * model.n_layers if tp > 1 else 0.0)
    messages += 2.0 * model.n_moe_layers if ep > 1 else 0.0
    return messages * LINKS_PER_MESSAGE


def layout_name(par):
    return " ".join(f"{k}{int(float(getattr(par, k)))}" for k in ("tp", "pp", "dp", "ep")
                    if float(getattr(par, k)) != 1.0) or "1 chip"


def minimum_system(hw_name, model):
    design = diffhw.Design(diffhw.presets.hardware(hw_name), model, diffhw.workload(BATCH, ISL, OSL, PRECISION),
                           diffhw.parallelism(), diffhw.presets.technology_for(hw_name))
    r = diffhw.min_chips(design, max_chips=MAX_CHIPS)
    if r.chips is None:
        raise RuntimeError(f"{model.name} does not fit {MAX_CHIPS} x {hw_name}")
    return r


def run(quick: bool, out: pathlib.Path) -> dict:
    # quick: the physics check (pp=3 on B200s); full adds the paper's 256-expert MoE
    models = ["llama-3.1-405b"] if quick else ["llama-3.1-405b", "deepseek-v3"]
    rows, data, ratios = [], {}, {}
    for name in models:
        model = diffhw.presets.model(name)
        per = {}
        for hw in (HBM, HBF):
            r = minimum_system(hw, model)
            hops = hops_per_token(model, r.parallelism)
            per[hw] = {k: f(r, hops) for k, (_, _, f) in METRICS.items()}
            per[hw]["layout"] = layout_name(r.parallelism)
            per[hw]["fewest_tp_only"] = r.fewest_by_layout()["tp"]
        data[name] = {hw: {k: v for k, v in per[hw].items()} for hw in per}
        ratios[name] = {k: per[HBF][k] / per[HBM][k] if per[HBM][k] else 1.0 for k in METRICS}  # 0/0 hops: equal
        for hw in (HBM, HBF):
            p = per[hw]
            rows.append([name, hw, f"{int(p['chips'])} ({p['layout']})", f"{p['fewest_tp_only']}",
                         p["tpot_ms"], p["power_kw"], p["tco_kusd_per_year"], p["usd_per_mtok"],
                         p["kgco2e_per_mtok"], p["embodied_tco2e"], f"{p['hops_per_token']:.0f}"])
    _common.table(
        ["model", "hardware", "min chips (layout)", "tp-only", "TPOT ms", "power kW", "TCO k$/yr", "$/Mtok",
         "kgCO2e/Mtok", "embodied t", "hops/token"], rows,
        f"Minimum systems, batch {BATCH}, {ISL}+{OSL} tokens, {PRECISION} (paper: HBF's 10x memory per node "
        "shrinks the minimum system, with less power, TCO, CO2e and fewer network hops)")

    figure = _figure(out, models, ratios)
    smaller = all(ratios[n][k] < 1.0 for n in models for k in
                  ("chips", "power_kw", "tco_kusd_per_year", "usd_per_mtok", "kgco2e_per_mtok", "embodied_tco2e"))
    fewer_hops = all(data[n][HBF]["hops_per_token"] < data[n][HBM]["hops_per_token"] for n in models)
    status = "reproduced" if smaller and fewer_hops else "partial"
    a, r = data[models[0]], ratios[models[0]]
    ours = (f"Minimum systems (every tp/pp/dp/ep layout, batch {BATCH}, {ISL}+{OSL} tokens, FP8): "
            f"Llama-3.1-405B needs {a[HBM]['chips']:.0f} B200 ({a[HBM]['layout']}; tp alone needs "
            f"{a[HBM]['fewest_tp_only']}) vs {a[HBF]['chips']:.0f} B200+HBF, with {r['power_kw']:.2f}x the power, "
            f"{r['tco_kusd_per_year']:.2f}x the TCO, {r['kgco2e_per_mtok']:.2f}x the CO2e per token, "
            f"{a[HBF]['hops_per_token']:.0f} network hops per token against {a[HBM]['hops_per_token']:.0f} and TPOT "
            f"{a[HBF]['tpot_ms']:.0f} vs {a[HBM]['tpot_ms']:.0f} ms (one chip streams the weights from its own 8 HBF "
            "stacks beside HBM). Hops count the links a Decode token crosses: pipeline hand-offs and per-layer "
            "collectives, 2 links each through NVSwitch. ")
    if len(models) > 1:
        b, q = data[models[1]], ratios[models[1]]
        ours += (f"DeepSeek-V3 (256 experts): {b[HBM]['chips']:.0f} B200 ({b[HBM]['layout']}) vs "
                 f"{b[HBF]['chips']:.0f}, power {q['power_kw']:.2f}x, TCO {q['tco_kusd_per_year']:.2f}x, CO2e per "
                 f"token {q['kgco2e_per_mtok']:.2f}x, hops {b[HBF]['hops_per_token']:.0f} vs "
                 f"{b[HBM]['hops_per_token']:.0f}, but TPOT {b[HBF]['tpot_ms']:.0f} vs {b[HBM]['tpot_ms']:.0f} ms "
                 f"(one chip's bandwidth against {b[HBM]['chips']:.0f}).")
    if not (smaller and fewer_hops):
        ours += " Not every metric shrinks (see the table)."
    return _common.result(
        CLAIM, TITLE, status,
        "HBF (512 GB per stack vs 48 GB for HBM4, ~10x) lets a node hold a giant model (e.g. a 256-expert MoE), "
        "so the minimum system is smaller, with less power, TCO and CO2e and fewer network hops "
        "(Ma & Patterson 2026, direction 1; no numbers given).",
        ours, figure,
        workload={"batch": BATCH, "input_tokens": ISL, "output_tokens": OSL, "precision": PRECISION},
        systems=data, hbf_over_hbm=ratios)


def _figure(out, models, ratios):
    plt = _common.pyplot()
    keys = list(METRICS)
    fig = plt.figure(figsize=(10, 4.6))
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(keys))
    w = 0.8 / len(models)
    for i, name in enumerate(models):
        vals = [ratios[name][k] for k in keys]
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * w, vals, w, label=f"{name}: {HBF} / {HBM}")
        for b, v in zip(bars, vals, strict=True):
            ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="k", ls="--", lw=1, label=f"minimum HBM system ({HBM}) = 1")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{METRICS[k][0]}\n({METRICS[k][1]})" if METRICS[k][1] else METRICS[k][0] for k in keys],
                       fontsize=8)
    ax.set_ylabel("minimum HBF system / minimum HBM system (ratio)")
    ax.set_title(f"Claim 6: minimum systems with and without HBF (batch {BATCH}, {ISL}+{OSL} tokens, "
                 f"{PRECISION}; paper: all smaller with HBF)", fontsize=9)
    ax.legend(fontsize=8)
    return _common.save(fig, out, "claim_06_hbf_min_system.png")


if __name__ == "__main__":
    sys.exit(_common.main(run))
