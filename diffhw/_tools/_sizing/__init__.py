"""Gradient-based sizing: choose hardware (and parallelism, batch) that minimises an
objective under budgets, by Optax on the smooth model, then round and re-check exactly.

The method, in four steps:

1. **Bounded log-space variables.** Each `Variable` maps a free real ``z`` to
   ``lower * (upper / lower) ** sigmoid(z)``, so every iterate is inside its bounds and
   steps are relative (a factor, not an amount).
2. **Augmented Lagrangian.** Constraints are dimensionless margins ``g >= 0`` (log of
   limit over value for positive metrics, the value itself for signed margins); the
   Powell-Hestenes-Rockafellar term ``((max(0, lam - mu g))^2 - lam^2) / (2 mu)`` is
   added to the objective's log, an inner `lax.scan` of Adam (or L-BFGS) steps minimises it, the
   outer scan updates ``lam`` and grows ``mu``. Several starts run one after another (`lax.map`).
3. **Rounding.** Whole-number variables (chips, parallel degrees, batch) take the two
   nearest allowed values on each side of the relaxed optimum; every combination is
   re-evaluated *exactly* (``tau = 0``: hard max and min) and checked against every
   budget.
4. **Report.** The relaxed optimum, the chosen integer design, every constraint margin,
   feasibility, and the optimisation history (`SizingResult`).

**Mixes.** Given several designs (workloads served by one hardware design), the shared
variables set every design and a variable with a `workload` index sets one (its batch,
its chips); the objective is the share-weighted mean of the designs' objectives (fleet
$ per token for token shares), every constraint holds for every design, and rounding
uses the structure: a design's own whole-number variables change only its metrics, so
each design's candidates are evaluated side by side and each keeps its best.

**Where each step lives.** `_problem.py`: variables, constraints and the objective;
`_search.py`: the relaxed augmented-Lagrangian search and the exact re-evaluation;
`_rounding.py`: whole-number candidates and their exact check; `_size.py`: `size`, which
runs the steps, and `SizingResult`.
"""
