"""What every experiment shares: the result record, a printed table and figure saving.

Each ``claim_NN_*.py`` module in this folder reproduces one of the paper's 17 claims
(``PAPER.md``, "Claims a cost model should let anyone reproduce") and defines

- ``CLAIM`` (its number) and ``TITLE`` (one line),
- ``run(quick: bool, out: pathlib.Path) -> dict``: computes, prints a short table (the
  paper's figure beside ours, with units), writes its figure into `out` when a picture
  says more, and returns `result(...)`,

using only public diffhw names. ``python experiments/claim_NN_*.py [--quick] [--out DIR]``
runs one; ``python experiments/run.py`` runs them all.
"""

import argparse
import os
import pathlib
import sys

STATUSES = ("reproduced", "partial", "contradicted")


def result(claim, title, status, paper, ours, figure=None, **extra):
    """The summary entry of one claim. `paper` and `ours` are one or two sentences each,
    with numbers and units: what the paper says, and what diffhw finds. `figure` is the
    file name (inside the output folder) or None. Extra keys (numbers a test or a reader
    may want) are kept under ``"data"``."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r}: expected one of {', '.join(STATUSES)}")
    entry = {"claim": int(claim), "title": str(title), "status": status, "paper": str(paper),
             "diffhw": str(ours), "figure": figure}
    if extra:
        entry["data"] = extra
    return entry


def table(headers, rows, title=None):
    """Print `rows` (sequences of cells) under `headers`, columns aligned. Floats are
    printed with 4 significant digits; pre-format a cell as a string to choose."""
    def cell(x):
        if isinstance(x, float):
            return f"{x:.4g}"
        return str(x)
    cells = [[cell(x) for x in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    if title:
        print(title)
    print("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("  " + "  ".join("-" * w for w in widths))
    for r in cells:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print()


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, out, name):
    """Write `fig` as ``out/name`` (PNG, 110 dpi), close it, return `name`."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    pyplot().close(fig)
    return name


def enable_caches():
    """Keep compiled programs on disk between runs, as the ``diffhw`` command line does (a
    script, like the CLI, may set JAX's configuration; the library never does): in
    ``$DIFFHW_CACHE_DIR`` (default ``~/.cache/diffhw/jax``; an empty value turns it off)."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    import diffhw

    path = os.environ.get("DIFFHW_CACHE_DIR")
    if path is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "diffhw", "jax")
    path = os.path.expanduser(path)
    if not path:
        return None
    compilation_cache.set_cache_dir(path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    diffhw.enable_program_cache(os.path.join(path, "programs"))
    compilation_cache.reset_cache()
    return path


FIGURES = pathlib.Path(__file__).resolve().parent / "figures"


def main(module_run, argv=None):
    """Command line of one experiment: ``[--quick] [--out DIR]`` (default ``figures/``
    beside this file)."""
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="fewer points: seconds, not minutes")
    p.add_argument("--out", default=str(FIGURES))
    a = p.parse_args(argv)
    enable_caches()
    entry = module_run(a.quick, pathlib.Path(a.out))
    print(f"claim {entry['claim']}: {entry['status']}")
    return 0


if __name__ == "__main__":
    sys.exit("run a claim_NN_*.py module or run.py")
