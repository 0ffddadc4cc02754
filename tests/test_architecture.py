"""The package's layers, read from its own imports: one way down, no circle, no
function-level import of diffhw code, and no physics module that reads a file."""

import ast
from pathlib import Path

import diffhw

ROOT = Path(diffhw.__file__).resolve().parent

#: Layers from the foundation up; a module may import its own layer or those below.
LAYERS = (
    ("diffhw._errors", "diffhw._jit", "diffhw._programs", "diffhw._smooth", "diffhw.units"),  # foundation
    ("diffhw._workload",),  # hardware-free workload algebra
    ("diffhw._hardware",),  # the chip, memory tiers, near memory, network, technology
    ("diffhw._timing",),  # roofline, Decode and Prefill
    ("diffhw._economics",),  # area, energy, cost, carbon
    ("diffhw._evaluation",),  # Metrics, Design, reports
    ("diffhw._serving",),  # serving under load: continuous batching, SLO percentiles
    ("diffhw._io",),  # loaders (files in) and figures (files out)
    ("diffhw._tools",),  # sensitivity, sweep, sizing, calibration
    ("diffhw._cli", "diffhw.presets"),  # interfaces
    ("diffhw",),  # the public API (__init__)
)
PHYSICS = ("diffhw._workload", "diffhw._hardware", "diffhw._timing", "diffhw._economics", "diffhw._evaluation",
           "diffhw._serving")
#: What reads files; physics modules import none of it and never call open().
FILE_MODULES = {"tomllib", "json", "csv", "pathlib", "importlib", "importlib.resources", "io", "os"}
#: Third-party imports a function may defer, and why: matplotlib costs ~1 s to import.
LAZY_OK = {"matplotlib"}


def _modules():
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


MODULES = _modules()


def _imports(name):
    """(module imported, line, at top level) for every import in module `name`."""
    path, is_pkg = MODULES[name]
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    package = name if is_pkg else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            for a in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{mod}.{a.name}"
                found.append((sub if sub in MODULES else mod, node.lineno, id(node) in top))
    return found


def _layer(name):
    best = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    assert best is not None, f"{name} belongs to no layer: add it to LAYERS"
    return best[0]


def _internal(imported):
    return imported == "diffhw" or imported.startswith("diffhw.")


def test_every_module_has_a_layer():
    for name in MODULES:
        _layer(name)


def test_imports_run_one_way_down():
    bad = [f"{name}:{line} imports {mod} (layer {_layer(mod)} above {_layer(name)})"
           for name in MODULES for mod, line, _ in _imports(name)
           if _internal(mod) and _layer(mod) > _layer(name)]
    assert not bad, "\n".join(bad)


def test_no_function_level_imports():
    bad = [f"{name}:{line} imports {mod} inside a function"
           for name in MODULES for mod, line, top in _imports(name)
           if not top and mod.split(".")[0] not in LAZY_OK]
    assert not bad, "\n".join(bad)


def test_no_import_circle():
    graph = {name: {m for m, _, _ in _imports(name) if m in MODULES and m != name} for name in MODULES}
    # A package's __init__ is reached whenever a module inside it is; only the public
    # __init__ re-exports, and nothing imports it back.
    state, cycle = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycle, "import circles: " + "; ".join(" -> ".join(c) for c in cycle)


def test_physics_reads_no_file():
    bad = []
    for name, (path, _) in MODULES.items():
        if not name.startswith(PHYSICS):
            continue
        bad += [f"{name}:{line} imports {mod}" for mod, line, _ in _imports(name)
                if mod in FILE_MODULES or mod.split(".")[0] in FILE_MODULES]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
                bad.append(f"{name}:{node.lineno} calls open()")
    assert not bad, "\n".join(bad)


def test_subpackage_inits_only_document():
    """Layer folders' __init__ files hold a docstring (the layer's one-line story), not code
    that would run on import of any module inside them."""
    for name, (path, is_pkg) in MODULES.items():
        if is_pkg and name.count(".") == 1 and name != "diffhw._cli":
            body = ast.parse(path.read_text()).body
            assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{name}/__init__.py holds code"
