"""Rounding in `size`: whole-number candidates near the relaxed optimum (chips, parallel
degrees, batch, memory stacks), filtered to valid parallelisms and re-checked exactly."""

import itertools
import types

import jax
import numpy as np

from ..._errors import InputError
from ..._jit import device_floats
from ..._workload._workload import validate_parallelism
from ._problem import Variable, _applies
from ._search import _exact

_MAX_COMBINATIONS = 4096
#: A mix's per-design rounding also tries whole values up to this factor from the
#: relaxed one (cheap there: the designs' candidates are evaluated side by side).
_FAR = 4.0



def _allowed(designs, v: Variable, base_leaves):
    """Whole values a variable may take: its choices, else the integers in its bounds that
    make a valid design (parallel degrees are checked against each model it sets)."""
    values = v.choices or tuple(float(k) for k in range(int(np.ceil(v.lower)), int(np.floor(v.upper)) + 1))
    if not values:
        raise InputError(f"variable {v.name}: bounds", f"{v.lower:g}:{v.upper:g}", "a range holding a whole number")
    if any(p.startswith("parallelism.") for p in v.paths) and len(values) <= 4096:
        ok = [k for k in values if all(_valid(d, i, (v,), [k], base_leaves) for i, d in enumerate(designs)
                                       if _applies(v, i))]
        if not ok:
            raise InputError(f"variable {v.name}", f"{v.lower:g}:{v.upper:g}",
                             "bounds that hold a parallel degree valid for the model")
        values = tuple(ok)
    return np.asarray(values, dtype=float)


def _neighbours(x, allowed, k=2):
    """Up to `k` allowed values on each side of `x`."""
    below = allowed[allowed <= x][-k:]
    above = allowed[allowed > x][:k]
    return np.concatenate([below, above])


def _rounding_candidates(x, allowed, n_vars, wide=12, spread=0.35, far=None):
    """Whole-number designs near a relaxed point `x`: every combination of the two
    allowed values on either side of each whole-number variable, plus, one variable at
    a time, up to `wide` allowed values within ``x * (1 +- spread)`` (so when rounding
    one variable tightens a budget, another can give back more than two steps, e.g. a
    smaller batch for one HBM stack fewer) and, given `far`, up to `wide` more spaced
    evenly in log from ``x / far`` to ``x * far`` (e.g. the batch that suits a
    neighbouring chip count). Continuous variables keep their values."""
    near = [_neighbours(x[i], allowed[i]) if i in allowed else np.asarray([x[i]]) for i in range(n_vars)]
    if int(np.prod([len(o) for o in near])) > _MAX_COMBINATIONS:
        near = [_neighbours(x[i], allowed[i], k=1) if i in allowed else o for i, o in enumerate(near)]
    out = list(itertools.product(*near))
    for i in allowed:
        a = allowed[i]
        band = a[(a >= x[i] * (1 - spread)) & (a <= x[i] * (1 + spread))]
        if len(band) > wide:
            band = band[np.unique(np.linspace(0, len(band) - 1, wide).round().astype(int))]
        if far is not None:
            targets = x[i] * np.geomspace(1.0 / far, far, wide)
            band = np.union1d(band, a[np.abs(np.log(a[None, :] / targets[:, None])).argmin(axis=1)])
        options = [*near[:i], band, *near[i + 1:]]
        if len(band) and int(np.prod([len(o) for o in options])) <= _MAX_COMBINATIONS:
            out.extend(itertools.product(*options))
    return out


#: Rows per call of the exact re-check (`_block`).
_BLOCK = 64

#: The same for designs with a serving goal: a row costs ~1 ms there (CPU; the largest
#: rate under the limits is a root found per row), padding rows included, and `_polish`
#: checks a few rows a round (two per continuous variable), so 64-row blocks ran its
#: rounds 3x slower. Without serving a row is cheap and fewer, larger calls win (16-row
#: blocks made test_sizing's integer roundings ~1.5 s slower). On the main job (a goal at
#: load "batch": no root per row) 16- and 64-row blocks cost the same (0.38 / 0.39 s over
#: its 24 calls, warm).
_SERVING_BLOCK = 16


def _block(designs) -> int:
    """Rows per call of the exact re-check of `designs` (one size for a whole run: one
    compiled program)."""
    return _SERVING_BLOCK if any(d.serving is not None for d in designs) else _BLOCK


class _Checker:
    """Rounds relaxed points to whole-number designs and evaluates them exactly.

    One design (or a mix whose whole-number variables are all shared): every
    combination near the relaxed point (`_rounding_candidates`). A mix with per-design
    whole-number variables: each design's own candidates only change that design's
    metrics, so they are evaluated side by side (row ``j`` holds every design's ``j``-th
    candidate), each design keeps its best (feasible first), and the combinations that
    result, one per candidate of the shared variables, are evaluated once more; the
    count of evaluated rows is `evaluated`."""

    def __init__(self, designs, variables, bounds, base_leaves, groups, group_bases, group_leaves, limits, terms,
                 log_shares, allowed):
        self.designs, self.variables, self.bounds, self.base_leaves = designs, variables, bounds, base_leaves
        self.block = _block(designs)
        # the exact re-check evaluates the designs in groups (`_search._groups`)
        self.groups, self.group_bases, self.group_leaves = groups, group_bases, group_leaves
        self.limits, self.terms = limits, terms
        self.log_shares, self.evaluated = log_shares, 0
        self.allowed = allowed  # `_allowed` of each whole-number variable, by index
        self.shared = {i: a for i, a in self.allowed.items() if variables[i].workload is None}
        self.own = [{i: a for i, a in self.allowed.items() if variables[i].workload == w}
                    for w in range(len(designs))]

    def valid(self, rows):
        """(rows, designs): whether each design's parallel degrees fit its model."""
        if not any(p.startswith("parallelism.") for v in self.variables for p in v.paths):
            return np.ones((len(rows), len(self.designs)), dtype=bool)
        return np.asarray([[_valid(d, i, self.variables, row, self.base_leaves) for i, d in enumerate(self.designs)]
                           for row in rows])

    def evaluate(self, rows, count=True):
        """Exact metrics (per design), margins (all designs), per-design objectives and
        the mix objective of `rows` (counted in `evaluated` if `count`)."""
        rows = np.asarray(rows, dtype=float)
        n = len(rows)
        # In blocks of `self.block` rows: one compiled program for every call of a run (the
        # baseline, the relaxed point and the candidates).
        block = self.block
        padded = np.concatenate([rows, np.repeat(rows[:1], -n % block, axis=0)])
        blocks = jax.device_get([_exact(self.groups, self.group_bases, self.bounds, self.group_leaves, self.limits,
                                        device_floats(padded[i:i + block])) for i in range(0, len(padded), block)])
        if count:
            self.evaluated += n
        # per design, in the mix's order: a group of several holds its members on axis 1
        vals = [None] * len(self.designs)
        for g, group in enumerate(self.groups):
            for j, d in enumerate(group.members):
                vals[d] = {k: np.concatenate([np.asarray(b[0][g][k]) for b in blocks])[:n]
                           if len(group.members) == 1 else
                           np.concatenate([np.asarray(b[0][g][k])[:, j] for b in blocks])[:n]
                           for k in blocks[0][0][g]}
        margins = np.concatenate([np.asarray(b[1]) for b in blocks])
        per = np.stack([sum(w * s * np.log(np.maximum(v[m], 1e-300)) for m, w, s in self.terms) for v in vals], 1)
        mix = np.logaddexp.reduce(per + self.log_shares[None, :], axis=1)
        return vals, margins[:n], per, mix

    def round(self, points):
        """Rounded candidates near the relaxed `points`, evaluated exactly: (rows,
        metrics per design, margins, mix objective)."""
        n_v = len(self.variables)
        if not any(self.own):
            return self._final([c for x in points for c in _rounding_candidates(x, self.allowed, n_v)])
        # Per design: rows over the shared candidates, each design's own side by side.
        own_idx = [[i for i, v in enumerate(self.variables) if v.workload == w] for w in range(len(self.designs))]
        blocks, rows = [], []
        for x in points:
            for sx in np.unique(np.asarray(_rounding_candidates(x, self.shared, n_v), dtype=float), axis=0):
                own = [np.asarray(_rounding_candidates(sx, a, n_v, far=_FAR), dtype=float) if a else sx[None]
                       for a in self.own]
                k = max(len(o) for o in own)
                block = np.stack([sx] * k)
                for o, idx in zip(own, own_idx, strict=True):
                    block[:, idx] = o[np.arange(k) % len(o)][:, idx]
                blocks.append((len(rows), k, sx))
                rows.extend(block)
        rows = np.asarray(rows)
        valid = self.valid(rows)
        _, margins, per, _ = self.evaluate(rows)
        m = margins.reshape(len(rows), len(self.designs), len(self.bounds))
        combined = []
        for start, k, sx in blocks:
            row, sl = sx.copy(), slice(start, start + k)
            for w, idx in enumerate(own_idx):
                ok = valid[sl, w] & np.all(m[sl, w] >= 0.0, axis=1) & np.isfinite(per[sl, w])
                if ok.any():
                    j = int(np.argmin(np.where(ok, per[sl, w], np.inf)))
                else:  # the least violating (a valid parallelism first)
                    j = int(np.argmin(np.sum(np.maximum(-m[sl, w], 0.0), axis=1) + 1e9 * ~valid[sl, w]))
                row[idx] = rows[start + j, idx]
            combined.append(row)
        return self._final(combined)

    def _final(self, cands):
        """The distinct `cands` whose parallel degrees fit every model, evaluated."""
        cands = np.unique(np.asarray(cands, dtype=float), axis=0)
        cands = cands[self.valid(cands).all(axis=1)]
        if not len(cands):
            raise InputError("variables", [v.name for v in self.variables],
                             "bounds whose whole values give a valid parallelism for every model")
        vals, margins, _, mix = self.evaluate(cands)
        return cands, vals, margins, mix


#: The parallel degrees of a `Parallelism`.
_DEGREES = ("tp", "pp", "dp", "ep")


def _valid(design, index, variables, x, base_leaves):
    """Whether the parallel degrees of `design` (design `index` of a mix) with
    `variables` at `x` fit its model. Plain floats, outside JAX: a rounding pass checks
    hundreds of candidates, and setting them into the design op by op took seconds."""
    degrees = {n: float(getattr(design.parallelism, n)) for n in _DEGREES}
    for i, v in enumerate(variables):
        if not _applies(v, index):
            continue
        for p in v.paths:
            if p.startswith("parallelism."):
                # as `_search._set` sets it, at the leaf's dtype
                value = float(x[i]) * float(base_leaves[index][p]) if v.scale else float(x[i])
                name = p.removeprefix("parallelism.")
                degrees[name] = float(np.asarray(value, np.asarray(getattr(design.parallelism, name)).dtype))
    try:
        validate_parallelism(design.model, types.SimpleNamespace(**degrees))
    except InputError:
        return False
    return True
