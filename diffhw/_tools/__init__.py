"""The tools that use evaluation: sensitivity (elasticities, tornado, crossovers,
curvature), sweeps over millions of designs (with Pareto fronts), gradient sizing under
budgets (`_sizing/`), and calibration of a `Profile` to measurements."""
