"""Run every claim experiment and write ``DIR/summary.json`` plus the figures.

    python experiments/run.py [--quick] [--out DIR] [--only 1,6,14]

``summary.json`` is a list, one entry per claim, sorted by claim number:
``{"claim": N, "title": ..., "status": "reproduced" | "partial" | "contradicted",
"paper": ..., "diffhw": ..., "figure": "file.png" or null, "seconds": ...}`` (plus
``"data"``, numbers the experiment chose to keep). An experiment that raises is reported
with status ``"error"`` and the exit status is 1; the others still run.

Like the ``diffhw`` command line (an application), this script keeps compiled programs
on disk between runs, in ``$DIFFHW_CACHE_DIR`` (default ``~/.cache/diffhw/jax``; an
empty value turns it off).
"""

import argparse
import importlib
import json
import pathlib
import sys
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402 - the folder is put on the path first


def modules():
    """The claim modules, by claim number."""
    found = {}
    for f in sorted(HERE.glob("claim_*.py")):
        m = importlib.import_module(f.stem)
        found.setdefault(m.CLAIM, []).append(m)
    return found


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer points per experiment (the test runs this)")
    p.add_argument("--out", default=str(_common.FIGURES), help="folder for summary.json and figures")
    p.add_argument("--only", default="", help="comma-separated claim numbers (default: all)")
    a = p.parse_args(argv)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    only = {int(x) for x in a.only.split(",") if x.strip()}
    _common.enable_caches()
    entries, failed = [], False
    for claim, mods in sorted(modules().items()):
        if only and claim not in only:
            continue
        for m in mods:
            print(f"=== claim {claim}: {m.TITLE} ===")
            t0 = time.perf_counter()
            try:
                entry = m.run(a.quick, out)
            except Exception:  # noqa: BLE001 - report it, run the others
                traceback.print_exc()
                failed = True
                entry = {"claim": claim, "title": m.TITLE, "status": "error", "paper": "",
                         "diffhw": traceback.format_exc().strip().splitlines()[-1], "figure": None}
            entry["seconds"] = round(time.perf_counter() - t0, 2)
            entries.append(entry)
            print(f"--- claim {claim}: {entry['status']} ({entry['seconds']:.1f} s)\n")
    with open(out / "summary.json", "w") as f:
        json.dump(entries, f, indent=1, allow_nan=False)
    counts = {}
    for e in entries:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    print("summary: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
          + f"; {out / 'summary.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
