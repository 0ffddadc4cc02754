"""Run every claim experiment and write ``DIR/summary.json`` plus the figures.

    python experiments/run.py [--quick] [--out DIR] [--only 1,6,14] [--readme]

``summary.json`` is a list, one entry per claim, sorted by claim number:
``{"claim": N, "title": ..., "status": "reproduced" | "partial" | "contradicted",
"paper": ..., "diffhw": ..., "figure": "file.png" or null, "seconds": ...}`` (plus
``"data"``, numbers the experiment chose to keep). An experiment that raises is reported
with status ``"error"`` and the exit status is 1; the others still run. ``--readme``
rewrites the generated part of ``experiments/README.md`` (between its ``summary`` markers)
from the summary: a table of all claims, then each claim's evidence with its figure.

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

import _common  # the folder is put on the path first


def modules():
    """The claim modules, by claim number."""
    found = {}
    for f in sorted(HERE.glob("claim_*.py")):
        m = importlib.import_module(f.stem)
        found.setdefault(m.CLAIM, []).append(m)
    return found


README = HERE / "README.md"
START, END = "<!-- summary:start -->", "<!-- summary:end -->"


def _cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def readme_section(entries, figures):
    """The generated part of experiments/README.md: the table, then one section a claim.
    `figures` is the folder the PNGs were written to, as the README links it."""
    lines = ["| # | claim | status | paper | diffhw | figure |", "|---|---|---|---|---|---|"]
    for e in entries:
        fig = f"[{e['figure']}]({figures}/{e['figure']})" if e.get("figure") else "-"
        lines.append(f"| {e['claim']} | {_cell(e['title'])} | **{e['status']}** | {_cell(e['paper'])} "
                     f"| {_cell(e['diffhw'])} | {fig} |")
    for e in entries:
        lines += ["", f"### Claim {e['claim']}: {e['title']}", "",
                  (f"*Status: **{e['status']}**.* Run it alone: `python experiments/{e.get('module', 'run.py')}`"
                   f" ({e.get('seconds', 0):.0f} s in this run)."), "",
                  f"- Paper: {' '.join(str(e['paper']).split())}",
                  f"- diffhw: {' '.join(str(e['diffhw']).split())}"]
        if e.get("figure"):
            lines += ["", f"![claim {e['claim']}]({figures}/{e['figure']})"]
    return "\n".join(lines)


def write_readme(entries, figures="figures"):
    text = README.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{README}: the markers {START} and {END} are missing")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(head + START + "\n" + readme_section(entries, figures) + "\n" + END + tail)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer points per experiment (the test runs this)")
    p.add_argument("--out", default=str(_common.FIGURES), help="folder for summary.json and figures")
    p.add_argument("--only", default="", help="comma-separated claim numbers (default: all)")
    p.add_argument("--readme", action="store_true",
                   help="rewrite experiments/README.md's generated part (needs every claim and the default --out)")
    a = p.parse_args(argv)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    only = {int(x) for x in a.only.split(",") if x.strip()}
    if a.readme and (only or out.resolve() != _common.FIGURES):
        p.error("--readme needs every claim (no --only) written to the default --out")
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
            entry["module"] = pathlib.Path(m.__file__).name
            entries.append(entry)
            print(f"--- claim {claim}: {entry['status']} ({entry['seconds']:.1f} s)\n")
    with open(out / "summary.json", "w") as f:
        json.dump(entries, f, indent=1, allow_nan=False)
    counts = {}
    for e in entries:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    if a.readme and not failed:
        write_readme(entries)
    print("summary: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
          + f"; {out / 'summary.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
