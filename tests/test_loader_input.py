"""Every file loader refuses bad input with one `InputError` naming the file, the field,
the value and what is allowed, and raises nothing else, whatever the file holds.

Loading only (no jit, no evaluate): the whole module runs in a few seconds.
"""

import copy
import json
import math
import random
import re

import jax
import jax.numpy as jnp
import pytest

from diffhw._errors import InputError
from diffhw._io import _technology
from diffhw._io._files import DATA, read_hardware_toml, read_toml
from diffhw._io._hardware import BOUNDS, load_hardware
from diffhw._io._measurements import load_points
from diffhw._io._profiles import load_profile
from diffhw._io._technology import load_technology, preset_chain, technology_for

NEAR = ('[near_memory]\nflop_tflops = 1\npj_per_flop = 1\nbandwidth_multiple = 2\npj_per_bit = 1\n'
        'shard_mb = 32\n')
TIER = '[[tiers]]\nname = "hbf"\ntechnology = "HBF"\ndevices = 8\n'


def _field(name):
    """`match` for an `InputError` about field `name`: the message reads ``... name = value``."""
    return rf"(\]: |: |^){re.escape(name)} = "


def _write(tmp_path, text, name="chip.toml", mode="w"):
    f = tmp_path / name
    if mode == "wb":
        f.write_bytes(text)
    else:
        f.write_text(text)
    return str(f)


def _load(path):
    """Both hardware loaders: the model's `Hardware` and the file's `Technology`."""
    load_hardware(path)
    technology_for(path)


# ------------------------------------------------------------------------ wrong types
WRONG_TYPES = [
    ('[memory]\ntype = 5\n', "type"),
    ('[physical]\nprocess = 5\n', "process"),
    ('[physical]\nprocess = ["TSMC 4N"]\n', "process"),
    (NEAR + 'capacity_penalty = "x"\n', "capacity_penalty"),
    (NEAR + 'tier = ["main"]\n', "tier"),
    (NEAR + 'name = 5\n', "name"),
    ('name = 5\n', "name"),
    ('description = [1]\n', "description"),
    ('vendor = {a = 1}\n', "vendor"),
    ('profile = 5\n', "profile"),
    ('default_chips = 2.5\n', "default_chips"),
    ('default_chips = "8"\n', "default_chips"),
    ('compute = 5\n', "compute"),
    ('[memory]\ncapacity_gb = "80"\n', "capacity_gb"),
    ('[compute]\nbf16_tflops = true\n', "bf16_tflops"),
    ('[compute]\nbf16_tflops = 1979-05-27\n', "bf16_tflops"),
    ('[[tiers]]\nname = 5\ntechnology = "HBF"\ndevices = 8\n', "name"),
    ('[[tiers]]\nname = "x"\ntechnology = 5\ndevices = 8\n', "technology"),
    ('[[tiers]]\nname = "x"\ntechnology = ["HBF"]\ndevices = 8\n', "technology"),
    ('[[tiers]]\nname = "x"\ntechnology = "HBF"\ndevices = "8"\n', "devices"),
    ('tier_access = ["parallel"]\n', "tier_access"),
    ('tier_access = 1\n', "tier_access"),
    ('[network]\ntopology = ["switch"]\n', "topology"),
    ('[network]\nalgorithm = ["ring"]\n', "algorithm"),
    ('[network]\npacket_sram_fraction = {}\n', "packet_sram_fraction"),
    ('[network]\npacket_sram_fraction = ""\n', "packet_sram_fraction"),
    (TIER + '[placement]\nweights = ["a", "b"]\n', "weights[0]"),
    ('tiers = 5\n', "tiers"),
    ('tiers = [5]\n', "#1"),
    ('placement = [1]\n', "[placement]"),
    ('near_memory = 5\n', "[near_memory]"),
]


@pytest.mark.parametrize("text, field", WRONG_TYPES, ids=[f"{i}-{f}" for i, (_, f) in enumerate(WRONG_TYPES)])
def test_wrong_types_name_the_file_and_field(tmp_path, text, field):
    path = _write(tmp_path, 'based_on = "h100-sxm"\n' + text)
    with pytest.raises(InputError, match=_field(field) if not field.startswith(("[", "#")) else re.escape(field)) as e:
        _load(path)
    assert path in str(e.value)


@pytest.mark.parametrize("text, field", [
    ('[memory]\ntype = 5\n', "type"),
    ('[physical]\nprocess = 5\n', "process"),
    ('physical = 5\n', "physical"),
    ('memory = [1]\n', "memory"),
])
def test_technology_for_checks_what_it_reads(tmp_path, text, field):
    """`technology_for` reads the file by itself (without `load_hardware`)."""
    path = _write(tmp_path, 'based_on = "h100-sxm"\n' + text)
    with pytest.raises(InputError, match=_field(field)):
        technology_for(path)


@pytest.mark.parametrize("based_on, allowed", [
    ("5", "in quotes"),
    ("[\"h100-sxm\"]", "in quotes"),
    ('"h100-sxn"', "did you mean h100-sxm"),
    ('"no/such/file.toml"', "an existing file"),
])
def test_bad_based_on(tmp_path, based_on, allowed):
    path = _write(tmp_path, f"based_on = {based_on}\n")
    for f in (_load, preset_chain):
        with pytest.raises(InputError, match=_field("based_on")) as e:
            f(path)
        assert allowed in str(e.value)


def test_based_on_cycles_and_long_chains_are_refused(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(f'based_on = "{b}"\n')
    b.write_text(f'based_on = "{a}"\n')
    with pytest.raises(InputError, match="come back") as e:
        _load(str(a))
    assert "a -> b -> a" in str(e.value)
    assert preset_chain(str(a)) == ["", str(b), "", str(a)]  # stops at the cycle
    self_ = tmp_path / "self.toml"
    self_.write_text(f'based_on = "{self_}"\n')
    with pytest.raises(InputError, match="come back"):
        _load(str(self_))
    prev = "h100-sxm"
    for i in range(7):
        f = tmp_path / f"c{i}.toml"
        f.write_text(f'based_on = "{prev}"\nname = "c{i}"\n')
        prev = str(f)
    with pytest.raises(InputError, match="at most 5 files"):
        _load(prev)
    assert len(preset_chain(prev)) <= 12
    assert load_hardware(str(tmp_path / "c3.toml")).name == "c3"  # 5 files: fine


# ---------------------------------------------------------------------- physical ranges
def _head(field):
    """The table header (and the other required keys) a `BOUNDS` field goes under."""
    if field.endswith(("_tflops", "_tops")) and field != "flop_tflops" or field == "matmul_efficiency":
        return "[compute]\n"
    if field in ("capacity_gb", "bandwidth_tb_s", "sram_mb"):
        return "[memory]\n"
    if field == "tdp_w":
        return "[power]\n"
    if field in ("die_area_mm2", "transistors_billion", "launch_price_usd"):
        return "[physical]\n"
    if field == "default_chips":
        return ""
    if field in ("domain_chips", "nic_gb_s", "latency_us"):
        return "[scale_out]\n" + ("" if field == "nic_gb_s" else "nic_gb_s = 50.0\n")
    if field in ("devices", "prefetch_buffer_mb", "buffered_append_fraction", "endurance_cycles"):
        return '[[tiers]]\nname = "hbf"\ntechnology = "HBF"\n' + ("" if field == "devices" else "devices = 8\n")
    if field.endswith("_us") or field in ("link_bandwidth_gb_s", "switch_radix", "torus_dims"):
        return "[network]\n"
    required = {"flop_tflops": 1, "pj_per_flop": 1, "bandwidth_multiple": 2, "pj_per_bit": 1, "shard_mb": 32}
    return "[near_memory]\n" + "".join(f"{k} = {v}\n" for k, v in required.items() if k != field)


RANGE_CASES = [(f, v) for f, (lo, hi, _) in BOUNDS.items()
               for v in ([hi * 10] + ([lo / 10] if lo > 0 else []))]


@pytest.mark.parametrize("field, value", RANGE_CASES, ids=[f"{f}={v:g}" for f, v in RANGE_CASES])
def test_values_outside_the_physical_range_are_refused(tmp_path, field, value):
    v = int(value) if field in ("default_chips", "domain_chips") else value
    path = _write(tmp_path, f'based_on = "h100-sxm"\n{_head(field)}{field} = {v!r}\n')
    with pytest.raises(InputError, match=_field(field)) as e:
        load_hardware(path)
    assert "physical range" in str(e.value) or "whole number" in str(e.value)
    assert f"{BOUNDS[field][1]:g}" in str(e.value)


@pytest.mark.parametrize("field", sorted(BOUNDS))
def test_the_range_ends_themselves_load(tmp_path, field):
    lo, hi, _ = BOUNDS[field]
    for v in (lo, hi):
        v = int(v) if field in ("default_chips", "domain_chips") else v
        load_hardware(_write(tmp_path, f'based_on = "h100-sxm"\n{_head(field)}{field} = {v!r}\n'))


def test_shipped_presets_are_well_inside_the_ranges():
    """Every shipped number is at least 10x inside its bound (the headroom the ranges promise);
    a share's upper bound is 1 itself."""
    for f in (DATA / "hardware").iterdir():
        d = read_toml(f)
        for table in [d] + [v for v in d.values() if isinstance(v, dict)] + d.get("tiers", []):
            for k, v in table.items():
                if k in BOUNDS and isinstance(v, (int, float)):
                    lo, hi, _ = BOUNDS[k]
                    assert (v <= hi / 10 or hi == 1.0) and (v == 0 or v >= lo), (f.name, k, v)


@pytest.mark.parametrize("key, value", [
    ("step_overhead_s", "100.0"),
    ("layer_overhead_s", "11.0"),
    ("collective_latency_s", "1e3"),
    ("max_batched_tokens", "1e13"),
    ("max_batched_tokens", "0.5"),
    ("compute_half_rows", "1e7"),
    ("compute_efficiency", "nan"),
    ("memory_utilization", "inf"),
    ("bandwidth_efficiency", '"0.8"'),
    ("sequence_overhead_s", "-1e-3"),
])
def test_profile_values_out_of_range(tmp_path, key, value):
    text = (DATA / "profiles" / "default.toml").read_text()
    text, n = re.subn(rf"^{key} = \S+", f"{key} = {value}", text, flags=re.MULTILINE)
    assert n == 1
    with pytest.raises(InputError, match=_field(key)):
        load_profile(_write(tmp_path, text, "prof.toml"))


@pytest.mark.parametrize("text, field", [
    ('name = 5\n[values]\n', "name"),
    ('description = 5\n[values]\n', "description"),
    ('values = 5\n', "values"),
    ('values = [1, 2]\n', "values"),
    ('[values]\nstep_overhead = 1\n', "key"),
])
def test_bad_profile_files(tmp_path, text, field):
    with pytest.raises(InputError, match=re.escape(field)):
        load_profile(_write(tmp_path, text, "prof.toml"))


def test_profile_overrides_are_checked():
    with pytest.raises(InputError, match=_field("step_overhead_s")):
        load_profile("default", overrides={"step_overhead_s": 1e3})
    with pytest.raises(InputError, match="key"):
        load_profile("default", overrides={1: 2.0, "a": 1.0})
    with pytest.raises(InputError, match="overrides"):
        load_profile("default", overrides=[("step_overhead_s", 1.0)])
    assert float(load_profile("default", overrides={"max_batched_tokens": 1e9}).max_batched_tokens) == 1e9


# ------------------------------------------------------------------ technology overrides
@pytest.mark.parametrize("key, value", [
    ("pue", 0.5),
    ("pue", float("nan")),
    ("lifetime_s", 0.0),
    ("lifetime_s", -1.0),
    ("static_fraction", 1.5),
    ("network_capex_fraction", 1.0),
    ("electricity_usd_per_j", -1e-9),
    ("electricity_usd_per_j", float("inf")),
    ("wafer_usd", "17000"),
    ("wafer_usd", None),
    ("wafer_usd", True),
    ("wafer_usd", [1, "a"]),
    ("wafer_usd", {"a": 1}),
    ("wafer_usd", 10**400),
    ("wafer_usd", jnp.asarray([1.0, -1.0])),
])
def test_technology_overrides_are_checked(key, value):
    for f in (lambda o: load_technology("N4", "HBM3", overrides=o), lambda o: technology_for("h100-sxm", o)):
        with pytest.raises(InputError, match=re.escape(key)):
            f({key: value})


def test_technology_overrides_that_are_fine_pass_unchanged():
    with pytest.raises(InputError, match="a Technology field"):
        technology_for("h100-sxm", {"pue_": 1.2})
    with pytest.raises(InputError, match="mapping"):
        technology_for("h100-sxm", [("pue", 1.2)])
    t = technology_for("h100-sxm", {"pue": 1.2, "lifetime_s": jnp.asarray(1e8), "upkeep_fraction_per_year": 0})
    assert float(t.pue) == 1.2 and float(t.lifetime_s) == 1e8
    # traced values (grad, vmap, jit) pass through unchecked
    jaxpr = jax.make_jaxpr(lambda p: technology_for("h100-sxm", {"pue": p, "network_capex_fraction": p}).pue)(1.2)
    assert jaxpr is not None


# ---------------------------------------------------------------- files that are not TOML
@pytest.mark.parametrize("content", [
    b"",
    b"\xff\xfe\x00\x01binary\x00",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"name = \"\xc3\x28\"\n",
    b"x = " + b"[" * 5000 + b"]" * 5000,
    b"x = " + b"[" * 40 + b"]" * 40,
    b"x = " + b"{a = " * 400 + b"1" + b"}" * 400,
    b"x = " + b"9" * 5000,
    b"x = 99999999999999999999999",
    b"[compute]\nbf16_tflops = 1e400\n",
    b"name = 'x'\n" * 3,
    b"\x00" * 100,
])
def test_any_bytes_give_an_input_error(tmp_path, content):
    path = _write(tmp_path, content, mode="wb")
    for f in (load_hardware, load_profile):
        with pytest.raises(InputError, match=re.escape(path)):
            f(path)
    for f in (technology_for, preset_chain, read_hardware_toml):  # these need no numbers: {} is a file to them
        try:
            f(path)
        except InputError as e:
            assert path in str(e)


@pytest.mark.parametrize("name", ["~nosuchuser123/x.toml", "~nosuchuser123", "a" * 5000, "a" * 5000 + ".toml",
                                  "a\x00b", "a\x00b.toml", "", " ", "/", ".", 5, None])
def test_odd_names_give_an_input_error(name):
    for f in (load_hardware, technology_for, load_profile):
        with pytest.raises(InputError):
            f(name)


def test_loading_executes_nothing(tmp_path):
    """A file's text is data: nothing in it is run, imported or expanded."""
    marker = tmp_path / "ran"
    evil = f"__import__('os').system('touch {marker}')"
    path = _write(tmp_path, f'based_on = "h100-sxm"\nname = "{evil}"\ndescription = "$(touch {marker}) `id`"\n'
                  f'[physical]\nprocess = "{evil}"\n')
    hw = load_hardware(path)
    technology_for(path)
    assert hw.name == evil and not marker.exists()


# ------------------------------------------------------------------- random mutations
def _toml(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(x)}" for k, x in v.items()) + "}"


def _dump(d):
    """A TOML document for `d` (tables, arrays of tables, inline values)."""
    head, tail = [], []
    for k, v in d.items():
        key = json.dumps(k)
        if isinstance(v, dict):
            tail.append(f"[{key}]\n" + "".join(f"{json.dumps(a)} = {_toml(b)}\n" for a, b in v.items()))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tail += [f"[[{key}]]\n" + "".join(f"{json.dumps(a)} = {_toml(b)}\n" for a, b in x.items()) for x in v]
        else:
            head.append(f"{key} = {_toml(v)}\n")
    return "".join(head) + "\n".join(tail)


REPLACEMENTS = ["x", 5, True, [1, "a"], {"a": 1}, -1, 0, 1e300, 1e-300, float("nan"), float("inf")]


def _paths(d, prefix=()):
    """Every (container, key) of `d`, tables and lists included."""
    items = d.items() if isinstance(d, dict) else enumerate(d)
    for k, v in items:
        yield prefix + (k,)
        if isinstance(v, (dict, list)):
            yield from _paths(v, prefix + (k,))


def _mutate(d, rng):
    d = copy.deepcopy(d)
    path = rng.choice(list(_paths(d)))
    parent = d
    for k in path[:-1]:
        parent = parent[k]
    if rng.random() < 0.15:
        del parent[path[-1]]  # a missing key (or list element)
        what = f"del {path}"
    else:
        parent[path[-1]] = rng.choice(REPLACEMENTS)
        what = f"{path} = {parent[path[-1]]!r}"
    return d, what


def test_random_mutations_of_shipped_presets_raise_only_input_errors(tmp_path, monkeypatch):
    """Seeded random damage to shipped presets (a plain, a tiered and a near-memory one,
    the last two `based_on` another): each load either works or raises `InputError`."""
    # the technology rows themselves are not mutated: memoise their conversion to keep this fast
    cache, real = {}, _technology.load_technology

    def memo(node="N4", memory="HBM3", overrides=None, architecture=""):
        if overrides:
            return real(node, memory, overrides, architecture)
        key = (node, memory, architecture)
        if key not in cache:
            cache[key] = real(node, memory, None, architecture)
        return cache[key]

    monkeypatch.setattr(_technology, "load_technology", memo)
    rng = random.Random(0)
    bases = {n: read_toml(DATA / "hardware" / f"{n}.toml") for n in ("h100-sxm", "b200-hbf", "b200-hbm4-pnm")}
    ok = refused = 0
    for i in range(200):
        name = rng.choice(sorted(bases))
        d, what = _mutate(bases[name], rng)
        path = _write(tmp_path, _dump(d), f"m{i}.toml")
        for f in (load_hardware, technology_for):
            try:
                f(path)
                ok += 1
            except InputError as e:
                assert path in str(e) or "profile" in e.field, (name, what, str(e))
                refused += 1
            except Exception as e:  # noqa: BLE001 - the point of the test
                pytest.fail(f"{name}: {what}: {f.__name__} raised {type(e).__name__}: {e}")
    assert ok > 50 and refused > 50


# ----------------------------------------------------------------- measurement CSV files
HEADER = "hardware,model,metric,value,batch,input_tokens,output_tokens,tp\n"
ROW = "h100-sxm,llama-3.1-8b,tpot_ms,10,1,128,128,1\n"


@pytest.mark.parametrize("content, expect", [
    (b"", "empty"),
    (b"\xff\xfe\x00\x01\x89PNG\x00", "CSV"),
    (b"\x00\x00\x00", "column"),
    (HEADER.encode(), "at least one data row"),
    (b"hardware,model\nh100-sxm,llama-3.1-8b\n", "column = 'metric'"),
    ((HEADER + ROW + ROW.replace(",10,", ",x,")).encode(), "row 2 (line 3), column value = 'x'"),
    ((HEADER + ROW.replace(",10,", ",nan,")).encode(), "column value = 'nan'"),
    ((HEADER + ROW.replace(",10,", ",inf,")).encode(), "column value = 'inf'"),
    ((HEADER + ROW.replace(",10,", ",-3,")).encode(), "column value = '-3'"),
    ((HEADER + ROW.replace(",1,128,", ",1e8,128,")).encode(), "column batch = '1e8'"),
    ((HEADER + ROW.replace(",1,128,", ",0,128,")).encode(), "column batch = '0'"),
    ((HEADER + ROW.replace(",128,128,", ",1e9,128,")).encode(), "column input_tokens = '1e9'"),
    ((HEADER + ROW.replace(",128,1\n", ",1e9,1\n")).encode(), "column output_tokens = '1e9'"),
    ((HEADER + ROW.replace(",128,1\n", ",128,2.5\n")).encode(), "column tp = '2.5'"),
    ((HEADER + ROW.replace(",128,1\n", ",128,1e7\n")).encode(), "column tp = '1e7'"),
    ((HEADER + "\n\n" + ROW.replace("tpot_ms", "tpot")).encode(), "row 1 (line 4), column metric"),
    ((HEADER + ROW.replace("h100-sxm", "~nosuchuser123/x.toml")).encode(), "column hardware"),
    ((HEADER + ROW.replace("h100-sxm", "h100-sxn")).encode(), "did you mean h100-sxm"),
    ((HEADER + ROW + "a,b,c,d,e,f,g,h,i\n").encode(), "row 2"),
    ((HEADER + 'h100-sxm,llama-3.1-8b,tpot_ms,"' + "9" * 200000 + '",1,1,1,1\n').encode(), "CSV"),
])
def test_bad_measurement_files(tmp_path, content, expect):
    path = _write(tmp_path, content, "points.csv", mode="wb")
    with pytest.raises(InputError, match=re.escape(expect)) as e:
        load_points(path)
    assert path in str(e.value)


def test_good_measurement_file_with_a_byte_order_mark(tmp_path):
    path = _write(tmp_path, ("\ufeff" + HEADER + ROW).encode("utf-8"), "points.csv", mode="wb")
    (p,) = load_points(path)
    assert p.value == pytest.approx(0.01) and p.tp == 1


def test_tier_write_path_and_endurance_from_a_file(tmp_path):
    """[[tiers]] may set the write path and the cells' endurance (e.g. TLC-class HBF)."""
    path = _write(tmp_path, 'based_on = "b200-hbf"\n[[tiers]]\nname = "hbf"\ntechnology = "HBF"\ndevices = 8\n'
                            'buffered_append_fraction = 0.25\nendurance_cycles = 3000\n')
    t = load_hardware(path).tiers[0]
    assert float(t.buffered_append_fraction) == 0.25 and float(t.endurance_cycles) == 3000.0
    base = load_hardware("b200-hbf").tiers[0]
    assert float(base.buffered_append_fraction) == 1.0 and float(base.endurance_cycles) == 1e5
