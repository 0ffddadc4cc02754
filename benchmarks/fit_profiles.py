"""Fit calibration-profile terms to measured points by gradient descent (Optax).

This is how the shipped profiles' numbers were chosen; rerun it to check them:

    python benchmarks/fit_profiles.py published   # modern stacks -> suggests `default`
    python benchmarks/fit_profiles.py splitwise   # SplitwiseSim's 2023 stack

The loss is the mean smooth-L1 of ``log(predicted / measured)`` over TPOT, TTFT and
static-batch throughput points (MLPerf max-throughput points are checked by
`accuracy.py`, not fitted). Fractions are fitted through a sigmoid and times through
an exponential, so every term stays physically bounded. Points sharing a model,
hardware and precision are evaluated together with `jax.vmap`.
"""

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import diffhw

sys.path.insert(0, str(Path(__file__).parent))
import accuracy

FRACTIONS = ("bandwidth_efficiency", "compute_efficiency", "network_efficiency")
POSITIVE = ("compute_half_rows", "collective_latency_s", "step_overhead_s", "layer_overhead_s")
FITTED = {
    "published": ("bandwidth_efficiency", "compute_efficiency", "step_overhead_s", "layer_overhead_s"),
    "splitwise": ("bandwidth_efficiency", "compute_efficiency", "collective_latency_s",
                  "step_overhead_s", "layer_overhead_s"),
}


def _to_theta(profile, names):
    out = {}
    for n in names:
        v = float(getattr(profile, n))
        out[n] = jnp.log(v / (1 - v)) if n in FRACTIONS else jnp.log(max(v, 1e-9))
    return out


def _apply(profile, theta):
    for n, t in theta.items():
        v = jax.nn.sigmoid(t) if n in FRACTIONS else jnp.exp(t)
        profile = eqx.tree_at(lambda p, n=n: getattr(p, n), profile, v)
    return profile


def groups_of(points):
    """Stack points that share a structure so one vmapped call evaluates them."""
    by = defaultdict(list)
    for p in points:
        if p["metric"] == "max_throughput":
            continue
        by[(p["hardware"], p["model"], p["weight_precision"], p["activation_precision"])].append(p)
    out = []
    for (hw, model, w, a), ps in by.items():
        wls, pars = [], []
        for p in ps:
            _, m, wl, par = accuracy._design(p, "default")
            wls.append(wl)
            pars.append(par)
        stack = lambda xs: jax.tree_util.tree_map(lambda *v: jnp.stack(v), *xs)
        metric_index = jnp.asarray([("tpot_s", "ttft_s", "output_tokens_per_s").index(p["metric"]) for p in ps])
        measured = jnp.asarray([p["measured"] for p in ps])
        out.append((diffhw.presets.hardware(hw), m, stack(wls), stack(pars), metric_index, measured))
    return out


@eqx.filter_jit
def _group_loss(hw, model, wls, pars, metric_index, measured):
    def one(wl, par):
        r = diffhw.evaluate(hw, model, wl, par)
        return jnp.stack([r.tpot_s, r.ttft_s, r.output_tokens_per_s])

    pred = jax.vmap(one)(wls, pars)
    pred = jnp.take_along_axis(pred, metric_index[:, None], axis=1)[:, 0]
    err = jnp.log(pred / measured)
    return jnp.sum(jnp.sqrt(err**2 + 1e-4)), err


def fit(points, names, start="default", steps=200, lr=0.05, verbose=True):
    groups = groups_of(points)
    n = sum(g[-1].shape[0] for g in groups)
    base = diffhw.presets.profile(start)
    theta = _to_theta(base, names)
    opt = optax.adam(lr)
    state = opt.init(theta)

    def loss(theta):
        prof = _apply(base, theta)
        total = 0.0
        for hw, m, wls, pars, idx, meas in groups:
            total = total + _group_loss(hw.replace(profile=prof), m, wls, pars, idx, meas)[0]
        return total / n

    vg = jax.jit(jax.value_and_grad(loss))  # one compile for every group
    for i in range(steps):
        v, g = vg(theta)
        updates, state = opt.update(g, state)
        theta = optax.apply_updates(theta, updates)
        if verbose and (i % 25 == 0 or i == steps - 1):
            print(f"step {i:4d}  mean |log error| {float(v):.4f}")
    return _apply(base, theta)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", choices=sorted(FITTED))
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args(argv)
    if args.data == "published":
        points, _ = accuracy.published_points()
    else:
        points = accuracy.splitwise_points()
    prof = fit(points, FITTED[args.data], steps=args.steps)
    print("\nfitted:")
    for n in FITTED[args.data]:
        print(f"  {n} = {float(getattr(prof, n)):.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
