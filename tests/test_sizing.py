"""Gradient-based sizing: optimality against a dense grid, exact feasibility of the
returned design, integer rounding, infeasible budgets, and the CLI."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw import InputError
from diffhw._cli import main
from diffhw._tools._sizing._problem import Constraint, constraint, objective_terms, variable
from diffhw._tools._sizing._size import default_inner_steps, default_starts, size


@pytest.fixture(scope="module")
def small():
    return diffhw.from_presets("h100-sxm", "llama-3.1-8b", chips=1, batch=16, input_tokens=1024, output_tokens=256)


BUDGETS = ("tpot_s<=0.012", "peak_power_w<=800")
VARIABLES = (variable("memory_bandwidth", 5e11, 1e13), variable("batch", 1, 256))
# One search structure for most tests here (and the CLI's below): compiled once. The
# defaults: 4 starts and 80 inner steps for these two variables.
QUICK = dict(outer_steps=6)


@pytest.fixture(scope="module")
def sized(small):
    return size(small, VARIABLES, "usd_per_million_tokens", BUDGETS, **QUICK)


def _dense_grid(design):
    """Exact $/Mtoken of `design` over 400 memory bandwidths x every batch 1-256 (inf
    where a budget of `BUDGETS` or memory fit is missed): an array (bandwidth, batch)."""
    bw = np.geomspace(5e11, 1e13, 400)
    batch = np.arange(1.0, 257.0)
    B, W = (a.ravel() for a in np.meshgrid(batch, bw))

    @jax.jit
    def grid(w, b):
        def one(w, b):
            d = diffhw.set_values(design, {"hardware.memory_bandwidth_bytes_per_s": w, "workload.batch": b})
            v = diffhw.design_values(d, 0)
            ok = (v["tpot_s"] <= 0.012) & (v["peak_power_w"] <= 800) & (v["memory_margin"] >= 0)
            return jnp.where(ok, v["usd_per_million_tokens"], jnp.inf)

        return jax.vmap(one)(w, b)

    return np.asarray(grid(jnp.asarray(W), jnp.asarray(B))).reshape(len(bw), len(batch))


def test_default_inner_steps_grow_with_the_variables(sized):
    """`inner_steps=None` takes 80 steps per multiplier update up to ten variables and 8
    per variable beyond (an 89-variable fleet settles only after ~700)."""
    assert sized.history["multiplier_updates"][:2] == [80, 160]
    assert [default_inner_steps(n) for n in (1, 10, 11, 18, 89)] == [80, 80, 88, 144, 712]
    assert [default_starts(n) for n in (1, 10, 11, 89)] == [4, 4, 2, 2]
    assert sized.history["values"].shape[0] == 4  # two variables: four starts


def test_sized_design_is_within_1pct_of_dense_grid(small, sized):
    """Exhaustive grid (every whole batch x 400 bandwidths), exact evaluation: the sized
    integer design is at most 1% worse than the grid's best feasible point."""
    best = float(np.min(_dense_grid(small)))
    assert np.isfinite(best)
    assert sized.feasible
    assert sized.objective <= best * 1.01
    assert sized.objective < sized.objective_baseline


def test_polish_leaves_no_better_exact_neighbour(small, sized):
    """After rounding, `size` polishes on the exact model: no neighbour of the chosen
    design (bandwidth x (1 +- 0.5%), batch +- 1) meets the budgets at a lower exact
    $/Mtoken. (Before the polish the chosen bandwidth sat ~1% off the exact optimum, on
    the smooth max's side of the compute/memory kink.)"""
    bw, batch = sized.chosen["memory_bandwidth"], sized.chosen["batch"]
    for w, b in ((bw * 1.005, batch), (bw / 1.005, batch), (bw, batch + 1), (bw, batch - 1)):
        d = diffhw.set_values(small, {"hardware.memory_bandwidth_bytes_per_s": w, "workload.batch": b})
        v = diffhw.design_values(d, 0)
        ok = v["tpot_s"] <= 0.012 and v["peak_power_w"] <= 800 and v["memory_margin"] >= 0
        assert not ok or float(v["usd_per_million_tokens"]) >= sized.objective * (1 - 1e-6)


def test_lbfgs_reaches_the_same_optimum_with_counted_line_search(small, sized):
    """method="lbfgs": L-BFGS with a zoom line search as the inner optimiser. Few steps
    reach Adam's optimum (itself within 1% of the dense grid, above); every line-search
    trial is counted, and steps that only repeat a settled point are not."""
    r = size(small, VARIABLES, "usd_per_million_tokens", BUDGETS, starts=1, outer_steps=2, inner_steps=10,
             method="lbfgs")
    assert r.feasible
    assert r.objective <= sized.objective * 1.01
    steps = 2 * 10 + 20  # outer x inner + restoration
    assert 0 < r.evaluations <= steps * 11
    v = eqx.filter_jit(diffhw.design_values)(r.design, 0)
    assert float(v["tpot_s"]) <= 0.012 and float(v["peak_power_w"]) <= 800


def test_returned_design_meets_every_budget_exactly(sized):
    v = eqx.filter_jit(diffhw.design_values)(sized.design, 0)
    assert float(v["tpot_s"]) <= 0.012
    assert float(v["peak_power_w"]) <= 800
    assert float(v["memory_margin"]) >= 0
    assert float(sized.design.workload.batch) == round(float(sized.design.workload.batch))
    assert all(m >= 0 for m in sized.margins.values())
    assert set(sized.margins) == {"memory_margin >= 0", "tpot_s <= 0.012", "peak_power_w <= 800"}
    # History: one row per start, objective and violation finite.
    h = sized.history
    assert h["objective"].shape[0] == 4 and np.all(np.isfinite(h["objective"]))
    assert h["values"].shape[-1] == 2
    # a start stops once settled (feasible, its best flat over a block of steps) or losing
    # (2% behind the starts before it): the steps it skips are not counted, and its
    # history repeats its last step (flat, finite) to the end
    full = 4 * (6 * 80 + 40)
    assert 2 * 80 <= sized.evaluations < full
    stopped = [s for s in range(4) if h["objective"][s, -1] == h["objective"][s, -2] == h["objective"][s, -100]]
    assert stopped


def test_stopping_keeps_the_best_start(small):
    """The stopping rule (`_search._FLAT`, `_PRUNE`, `_MIN_BLOCKS`): with it, a search
    whose starts all run to the end finds the same design (the best start is never the
    one cut short). The rule is a static field of the search's spec, so the never-stop
    search is its own program."""
    from diffhw._tools._sizing import _size

    kw = dict(starts=3, outer_steps=4, inner_steps=40)
    stopped = size(small, VARIABLES, "usd_per_million_tokens", BUDGETS, **kw)
    real = _size._Spec

    def never_stop(*a, **k):
        return real(*a, **k, stop=(-1.0, float("inf"), 0))

    _size._Spec = never_stop
    try:
        full = size(small, VARIABLES, "usd_per_million_tokens", BUDGETS, **kw)
    finally:
        _size._Spec = real
    assert full.evaluations == 3 * (4 * 40 + 20)  # outer x inner + restoration (inner / 2)
    assert stopped.evaluations < full.evaluations
    assert stopped.objective == pytest.approx(full.objective, rel=1e-3)


def test_integer_variables_round_to_valid_values(small):
    """Chips (tp) and whole HBM stacks sized end to end: the chosen degree divides the
    heads, stacks are whole (capacity and bandwidth move together, per stack as in the
    baseline), and the design is exact-feasible."""
    stacks = variable("memory_stacks", 1, 12)
    assert stacks.integer and stacks.count
    r = size(small, [variable("tp", 1, 16), stacks, variable("batch", 1, 128)], "tokens_per_s_per_usd",
             ["tpot_s<=0.008"], starts=2, outer_steps=4, inner_steps=60)
    tp = float(r.design.parallelism.tp)
    assert tp in (1.0, 2.0, 4.0, 8.0, 16.0)
    diffhw.validate_parallelism(small.model, r.design.parallelism)
    n = r.chosen["memory_stacks"]
    assert n == round(n) and r.baseline["memory_stacks"] == 4.0  # H100: 3.35 TB/s of ~0.82 TB/s HBM3 stacks
    hw, base = r.design.hardware, small.hardware
    assert float(hw.memory_capacity_bytes) == pytest.approx(float(base.memory_capacity_bytes) * n / 4)
    assert float(hw.memory_bandwidth_bytes_per_s) == pytest.approx(float(base.memory_bandwidth_bytes_per_s) * n / 4)
    assert r.feasible and float(eqx.filter_jit(diffhw.design_values)(r.design, 0)["tpot_s"]) <= 0.008


def test_tied_moe_degrees_round_to_valid_pairs():
    """tp and ep tied (one 'chips' variable) on an MoE: only values valid for both."""
    from diffhw._tools._sizing._rounding import _allowed, _neighbours, _valid

    d = diffhw.from_presets("h100-sxm", "mixtral-8x7b", chips=2, ep=2, batch=8)
    chips = variable("chips", 1, 48, paths=("parallelism.tp", "parallelism.ep"))
    allowed = _allowed((d,), chips, ({},))
    assert list(allowed) == [1.0, 2.0, 4.0, 8.0]  # divide 32 heads and 8 experts
    assert list(_neighbours(5.3, allowed)) == [2.0, 4.0, 8.0]
    assert [_valid(d, 0, (chips,), [k], ({},)) for k in (2.0, 3.0, 8.0)] == [True, False, True]


def test_infeasible_budget_is_reported_not_nan(small):
    r = size(small, VARIABLES, "usd_per_million_tokens", ["tpot_s<=0.012", "peak_power_w<=50"], **QUICK)
    assert not r.feasible
    assert any("peak_power_w <= 50" in line and "%" in line for line in r.violations)
    assert all(np.isfinite(v) for v in r.metrics.values())


@pytest.mark.parametrize("call, field", [
    (lambda d: size(d, [], "tpot_s"), "variables"),
    (lambda d: size(d, [variable("memory_bandwidth", 1e12, 2e12)], "tpot_z"), "objective metric"),
    (lambda d: size(d, [variable("memory_bandwidth", 1e12, 2e12)], "tpot_s", ["area<=3"]), "constraint metric"),
    (lambda d: size(d, [variable("hardware.bandwidth", 1, 2)], "tpot_s"), "design path"),
    (lambda d: variable("memory_bandwidth", 2e12, 1e12), "bounds"),
    (lambda d: variable("memory_bandwidth", -1, 1e12), "bounds"),
    (lambda d: constraint("tpot_s<0.1"), "constraint"),
    (lambda d: size(d, [variable("memory_bandwidth", 1e12, 2e12)], "tpot_s", method="newton"), "method"),
    (lambda d: objective_terms("tpot_s:up"), "objective"),
    (lambda d: objective_terms("memory_margin"), "objective"),
])
def test_bad_input_names_the_field(small, call, field):
    with pytest.raises(InputError) as e:
        call(small)
    assert field in str(e.value)


def test_constraint_and_objective_parsing():
    assert constraint("peak_power_w <= 1000") == Constraint("peak_power_w", upper=1000.0)
    assert constraint("memory_margin>=0") == Constraint("memory_margin", lower=0.0)
    assert objective_terms("tokens_per_s_per_watt") == (("tokens_per_s_per_watt", 1.0, -1.0),)
    assert objective_terms({"tpot_s": 1, "usd_per_million_tokens": 2})[1] == ("usd_per_million_tokens", 2.0, 1.0)
    assert variable("compute", 0.5, 2).scale and not variable("compute", 0.5, 2).integer
    assert variable("parallelism.tp", 1, 8).integer


def test_cli_size_json(capsys):
    rc = main(["size", "--serving", "off", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--chips", "1",
               "--ep", "1", "--precision", "bf16", "--input-tokens", "1024", "--output-tokens", "128", "--batch", "8",
               "--vary", "memory_bandwidth=1e12:1e13", "--vary", "batch=1:128", "--starts", "4", "--steps", "80",
               "--outer", "6", "--tpot-slo-ms", "15", "--area-budget-mm2", "0", "--power-budget-w", "600", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["feasible"] is True
    assert [v["name"] for v in d["variables"]] == ["memory_bandwidth", "batch"]
    assert {c["constraint"] for c in d["constraints"]} == {"memory_margin >= 0", "tpot_s <= 0.015",
                                                           "peak_power_w <= 600"}
    assert d["metrics"]["tpot_s"] <= 0.015 and d["objective"]["chosen"] <= d["objective"]["baseline"]
    assert d["sensitivities"] and len(d["history"]["objective"]) == 6 * 80 + 40


def test_cli_size_infeasible_exits_2(capsys):
    rc = main(["size", "--serving", "off", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--chips", "1",
               "--ep", "1", "--precision", "bf16", "--vary", "memory_bandwidth=1e12:1e13", "--vary", "batch=1:128",
               "--starts", "4", "--steps", "80", "--outer", "6", "--tpot-slo-ms", "15", "--area-budget-mm2", "0",
               "--power-budget-w", "40"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert "INFEASIBLE" in out
    assert err.count("\n") == 1 and "peak_power_w <= 40" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, word", [
    (["size", "--vary", "memory_bandwidth"], "--vary"),
    (["size", "--vary", "memory_bandwidth=a:b"], "--vary"),
    (["size", "--vary", "nonsense=1:2"], "design path"),
    (["size", "--objective", "tpot_s*x"], "--objective"),
    (["size", "--constraint", "watts<=3"], "constraint metric"),
    (["size", "--power-budget-w", "-5"], "--power-budget-w"),
])
def test_cli_size_bad_input(capsys, argv, word):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert word in err and err.count("\n") == 1


def test_kv_placement_in_hbf_is_limited_by_wear_out():
    """Ma & Patterson: HBF suits weights, not the KV cache (limited write endurance).
    Sizing the KV share in HBF under a 5-year lifetime: the wear-out margin binds."""
    d = diffhw.from_presets("b200-hbf", "llama-3.1-8b", chips=1, batch=64, input_tokens=4096, output_tokens=512)
    r = size(d, [variable("placement.kv_cache[1]", 1e-3, 1.0), variable("batch", 1, 1024)],
             "usd_per_million_tokens", ["tier_lifetime_margin>=0", "tpot_s<=0.05"],
             starts=3, outer_steps=6, inner_steps=80)
    assert r.feasible and r.objective < r.objective_baseline
    share = r.chosen["placement.kv_cache[1]"]
    assert 1e-3 < share < 0.5
    assert 0 <= r.margins["tier_lifetime_margin >= 0"] < 0.05  # binds
    values = eqx.filter_jit(diffhw.design_values)
    worse = diffhw.set_values(r.design, {"placement.kv_cache[1]": min(2 * share, 1.0)})
    assert float(values(worse, 0)["tier_lifetime_margin"]) < 0


# ----------------------------------------------------------------------------- mixes

MIX_SHARES = (0.7, 0.3)


@pytest.fixture(scope="module")
def mix(small):
    """Two workloads on one chip: Llama-3.1-8B at 1K and at 8K context."""
    long = diffhw.from_presets("h100-sxm", "llama-3.1-8b", chips=1, batch=16, input_tokens=8192, output_tokens=512)
    return (small, long)


@pytest.fixture(scope="module")
def mix_sized(mix):
    vs = (variable("memory_bandwidth", 5e11, 1e13), variable("batch", 1, 256, workload=0),
          variable("batch", 1, 256, workload=1))
    return size(list(mix), vs, "usd_per_million_tokens", BUDGETS, shares=MIX_SHARES, **QUICK)


def test_mix_is_within_1pct_of_dense_grid(mix, mix_sized):
    """A shared memory bandwidth and a batch per workload, fleet $/Mtoken = the
    share-weighted mean: against an exhaustive grid (400 bandwidths, every whole batch
    of each workload, the best feasible batch per workload at each bandwidth)."""
    fleet = sum(p * _dense_grid(d).min(axis=1) for p, d in zip(MIX_SHARES, mix, strict=True))
    best = float(np.min(fleet))
    r = mix_sized
    assert np.isfinite(best) and r.feasible
    assert r.objective <= best * 1.01
    assert [v.name for v in r.variables] == ["memory_bandwidth", "batch@0", "batch@1"]
    assert r.shares == pytest.approx(MIX_SHARES)
    # the reported objective is the fleet's: each workload's exact $/Mtoken, weighted
    usd = [m["usd_per_million_tokens"] for m in r.workload_metrics]
    assert r.objective == pytest.approx(sum(p * u for p, u in zip(MIX_SHARES, usd, strict=True)), rel=1e-5)


def test_mix_designs_share_the_hardware_and_meet_every_budget(mix_sized):
    r = mix_sized
    assert len(r.designs) == 2 and r.design is r.designs[0]
    values = eqx.filter_jit(diffhw.design_values)
    for i, d in enumerate(r.designs):
        assert float(d.hardware.memory_bandwidth_bytes_per_s) == pytest.approx(r.chosen["memory_bandwidth"])
        assert float(d.workload.batch) == r.chosen[f"batch@{i}"] == round(r.chosen[f"batch@{i}"])
        v = values(d, 0)
        assert float(v["tpot_s"]) <= 0.012 and float(v["peak_power_w"]) <= 800 and float(v["memory_margin"]) >= 0
        assert r.margins[f"tpot_s <= 0.012 [@{i}]"] >= 0
    # the long-context workload fits fewer requests in the same memory
    assert r.chosen["batch@1"] < r.chosen["batch@0"]


def test_mix_of_one_design_is_the_single_design(small, sized):
    r = size([small], VARIABLES, "usd_per_million_tokens", BUDGETS, shares=[3.0], **QUICK)
    assert r.chosen == sized.chosen and r.objective == pytest.approx(sized.objective)
    assert sized.designs == (sized.design,) and sized.shares == (1.0,)


@pytest.mark.parametrize("kwargs, field", [
    (dict(shares=(1.0,)), "shares"),
    (dict(shares=(1.0, -1.0)), "shares"),
    (dict(variables=[variable("batch", 1, 8, workload=2)]), "workload"),
    (dict(design=[]), "design"),
])
def test_mix_bad_input_names_the_field(mix, kwargs, field):
    args = dict(design=list(mix), variables=[variable("memory_bandwidth", 1e12, 2e12)], objective="tpot_s")
    args.update(kwargs)
    with pytest.raises(InputError) as e:
        size(**args)
    assert field in str(e.value)
    with pytest.raises(InputError, match="workload"):
        variable("batch", 1, 8, workload=-1)


MIX_ARGV = ["size", "--serving", "off", "--hardware", "h100-sxm", "--chips", "1", "--ep", "1", "--precision", "bf16",
            "--vary", "memory_bandwidth=5e11:1e13", "--vary", "batch=1:256", "--starts", "4",
            "--outer", "6", "--tpot-slo-ms", "12", "--area-budget-mm2", "0", "--power-budget-w", "800",
            "--workload", "model=llama-3.1-8b,input-tokens=1024,output-tokens=256,share=0.7",
            "--workload", "model=llama-3.1-8b,input-tokens=8192,output-tokens=512,share=0.3"]


def test_cli_size_mix_json(capsys, mix_sized):
    """`diffhw size --workload ... --workload ...`: the same mix as `mix_sized` from the
    CLI (batch becomes one variable per workload, bandwidth is shared)."""
    assert main([*MIX_ARGV, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["feasible"] is True and d["model"] == "llama-3.1-8b + llama-3.1-8b"
    assert [v["name"] for v in d["variables"]] == ["memory_bandwidth", "batch@0", "batch@1"]
    assert [w["share"] for w in d["workloads"]] == pytest.approx([0.7, 0.3])
    assert d["objective"]["chosen"] == pytest.approx(mix_sized.objective, rel=0.01)
    assert d["metrics"] == d["workloads"][0]["metrics"]
    assert all(w["metrics"]["tpot_s"] <= 0.012 for w in d["workloads"])
    assert "tpot_s <= 0.012 [@1]" in {c["constraint"] for c in d["constraints"]}
    assert d["sensitivities"] and all(np.isfinite(e) for e in d["sensitivities"].values())


def test_mix_elasticity_matches_finite_difference(mix_sized):
    """The fleet objective's elasticity to the shared memory bandwidth (each workload's
    elasticity, weighted) against a central difference of the share-weighted $/Mtoken."""
    from diffhw._cli._size import mix_elasticities

    path = "hardware.memory_bandwidth_bytes_per_s"
    e = mix_elasticities(mix_sized)[path]
    values = eqx.filter_jit(diffhw.design_values)

    def fleet(f):
        return sum(p * float(values(diffhw.set_values(d, {path: diffhw.get_value(d, path) * f}))
                             ["usd_per_million_tokens"]) for p, d in zip(MIX_SHARES, mix_sized.designs, strict=True))

    h = 1e-3
    fd = (np.log(fleet(np.exp(h))) - np.log(fleet(np.exp(-h)))) / (2 * h)
    assert abs(e) > 0.01 and e == pytest.approx(fd, rel=0.02, abs=1e-3)


@pytest.mark.parametrize("spec, word", [
    ("model=llama-3.1-8b,inputs=3", "--workload key"),
    ("model=llama-3.1-8b,share=-1", "--workload share"),
    ("model=llama-3.1-8b,batch=many", "--workload batch"),
    ("llama-3.1-8b", "--workload"),
])
def test_cli_size_mix_bad_input(capsys, spec, word):
    assert main(["size", "--workload", spec]) == 2
    err = capsys.readouterr().err
    assert word in err and err.count("\n") == 1


def test_grouped_mix_matches_its_designs_one_by_one(mix, sized, mix_sized):
    """Designs of one structure (one model's traffic classes) are evaluated as one
    vmapped group in `size`'s search and exact re-check: the same metrics and margins as
    each design evaluated alone (the programs `sized` and `mix_sized` compiled), and
    designs of several groups come back in the mix's order."""
    from diffhw._jit import device_floats
    from diffhw._tools._sizing import _search
    from diffhw._tools._sizing._rounding import _BLOCK
    from diffhw._tools._sizing._size import _check_problem

    vs = (variable("memory_bandwidth", 5e11, 1e13), variable("batch", 1, 256, workload=0),
          variable("batch", 1, 256, workload=1))
    pb = _check_problem(list(mix), vs, "usd_per_million_tokens", BUDGETS, MIX_SHARES, "adam", 1, 1, 1)
    assert [g.members for g in pb.groups] == [(0, 1)]
    rng = np.random.default_rng(0)
    n = _BLOCK  # a block of the exact re-check: the programs `sized` and `mix_sized` compiled
    rows = np.stack([np.geomspace(5e11, 1e13, n), rng.integers(1, 257, n), rng.integers(1, 257, n)], axis=1)
    vals, margins = _search._exact(pb.groups, pb.group_bases, pb.bounds, pb.group_leaves, pb.limits,
                                   device_floats(rows))
    margins = np.asarray(margins).reshape(n, 2, -1)
    for d in (0, 1):
        one = _check_problem(mix[d], VARIABLES, "usd_per_million_tokens", BUDGETS, None, "adam", 1, 1, 1)
        alone, alone_margins = _search._exact(one.groups, one.group_bases, one.bounds, one.group_leaves,
                                              one.limits, device_floats(rows[:, [0, 1 + d]]))
        for k, v in alone[0].items():
            np.testing.assert_allclose(np.asarray(vals[0][k])[:, d], v, rtol=1e-5, err_msg=k)
        np.testing.assert_allclose(margins[:, d], alone_margins, rtol=1e-5, atol=1e-6)
    # two groups, (0, 2) and (1,): objectives and margins in the mix's order
    groups = (_search._Group((0, 2), ()), _search._Group((1,), ()))
    obj, marg = _search._per_design(groups, ({"m": jnp.asarray([1.0, 3.0])}, {"m": jnp.asarray(2.0)}),
                                    (("m", 1.0, 1.0),), (("m", 1.0, True),), jnp.asarray([10.0]))
    np.testing.assert_allclose(np.exp(np.asarray(obj)), [1.0, 2.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(marg), np.log(10.0 / np.asarray([1.0, 2.0, 3.0])), rtol=1e-6)
