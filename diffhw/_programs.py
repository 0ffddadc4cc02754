"""A cache of whole compiled programs on disk: a second process skips tracing too.

JAX's persistent compilation cache keeps XLA's output, but every process still traces
and lowers each program before it can look the output up, and for diffhw's programs
(thousands of scalar operations) tracing is half the time to an answer. This cache
keeps the compiled executable of each entry point per structure
(`jax.experimental.serialize_executable`), so a later process with the same structure
loads it and neither traces, lowers nor compiles.

It is off unless turned on: the command line turns it on (`diffhw._cli._cache`), a
notebook or script with `enable_program_cache`. While it is on, every top-level call of
a diffhw entry point (`diffhw._jit.filter_jit`) is looked up by a key over:

- the function (module and qualified name; a local function is never cached);
- the arguments' whole static structure: every pytree node's type and static data
  (model and hardware names, layer kinds, counts, ...), every non-array leaf's value
  (Python numbers included: `eqx.filter_jit` treats them as static), and every array
  leaf's shape, dtype and weak type;
- a hash of the source of every diffhw module, the versions of Python, jax, jaxlib,
  equinox, optax and numpy, the JAX options that change what a trace produces (64-bit
  mode, matmul precision, promotion rules), the backend's platform and version, its
  devices, the CPU's model and instruction-set flags, and the XLA options of the call.

A value it cannot describe exactly (an object whose text names a memory address, a
callable, an unknown type) makes the call uncacheable: it runs as a plain `jit`, as
does a program with a host callback or side effect (e.g. the value checks of a traced
call) or an output with a non-array leaf. The files are
pickles holding executables: the folder must be one only its user writes, as for
JAX's own cache. The folder is kept under `MAX_BYTES`, the least recently used files
removed first.
"""

import concurrent.futures
import contextlib
import dataclasses
import enum
import functools
import hashlib
import itertools
import os
import pickle
import platform
import queue
import sys
import tempfile
import threading

import equinox
import jax
import jaxlib
import numpy as np
import optax
from jax._src import compilation_cache as _jax_cache
from jax.experimental import serialize_executable

#: Format of the files; a change makes old files unreadable (they are ignored).
FORMAT = 1
#: The folder's size limit (bytes).
MAX_BYTES = 1 << 30

_state = {"dir": None}
_lock = threading.Lock()
#: key -> (jitted call of the deserialised program, output skeleton), or None when the
#: program is uncacheable (it then runs as a plain jit).
_loaded: dict = {}


class _Uncacheable(Exception):
    pass


#: Background threads that compile the programs `prepare` announces, in the order
#: announced. Tracing holds Python's lock, XLA's compilation does not: on two cores one
#: program compiles while others are traced. Two threads finished the main job 0.5-4 s
#: sooner than one (2-core CPU; the caller's thread traces too), and three 1.0-1.3 s
#: sooner than two (`diffhw size` cold 10.1-10.2 -> 8.9-9.3 s): with two, both threads
#: were busy in XLA compiling the search and the sensitivities, so the last program
#: (`serve`'s check) waited 1.6 s to start tracing although its turn had come.
THREADS = 3
_pool: list = []


class _Pool:
    """`THREADS` daemon threads running submitted calls as `Future`s. Daemon threads, not
    a `ThreadPoolExecutor`, whose threads the interpreter joins at exit: a command that
    stops early (an error, Ctrl-C) must not wait for programs it no longer needs."""

    def __init__(self, n):
        self.jobs = queue.SimpleQueue()
        for i in range(n):
            threading.Thread(target=self._work, name=f"diffhw-compile-{i}", daemon=True).start()

    def submit(self, fn, *args) -> concurrent.futures.Future:
        future = concurrent.futures.Future()
        self.jobs.put((future, fn, args))
        return future

    def _work(self):
        while True:
            future, fn, args = self.jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - handed to the caller, who re-runs the call itself
                future.set_exception(e)


def _executor() -> _Pool:
    with _lock:
        if not _pool:
            _pool.append(_Pool(THREADS))
        return _pool[0]


def prepare(fun, options, args, kwargs) -> None:
    """Start loading or compiling the program of ``fun(*args, **kwargs)`` in the
    background (only the arguments' structure, shapes and dtypes matter, not their
    values); a later `call` with the same key waits for it instead of compiling. Does
    nothing while the cache is off, for an uncacheable call or one already known."""
    folder = _state["dir"]
    if folder is None:
        return
    try:
        key, leaves, treedef, _, where = _key(fun, options, args, kwargs)
    except _Uncacheable:
        return
    pool = _executor()
    with _lock:
        if key in _loaded:
            return
        turn = _Turn(next(_tickets))
        _loaded[key] = pool.submit(_in_turn, turn, folder, key, fun, options, leaves, treedef, where)


_tickets = itertools.count()


class _Turn:
    """A background program's turn to trace: programs are traced one at a time, in the
    order `prepare` announced them (the first is needed first); each lets the next
    trace once its own is lowered, while XLA compiles it."""

    _now = [0]
    _cond = threading.Condition()

    def __init__(self, ticket):
        self.ticket, self.done = ticket, False

    def wait(self):
        with self._cond:
            self._cond.wait_for(lambda: self._now[0] >= self.ticket)

    def release(self):
        if not self.done:
            self.done = True
            with self._cond:
                self._now[0] += 1
                self._cond.notify_all()


def _in_turn(turn, *args):
    turn.wait()
    try:
        return _load_or_compile(*args, turn=turn)
    finally:
        turn.release()


def enable_program_cache(path) -> str | None:
    """Keep diffhw's traced programs in the folder `path` (created if missing), or stop
    with ``None``. Returns the folder. See the module docstring for what the key covers.

    Pair it with JAX's persistent compilation cache (``jax.config.update(
    "jax_compilation_cache_dir", ...)``), which keeps what XLA compiles from them; the
    ``diffhw`` command line turns both on."""
    with _lock:
        _loaded.clear()
        if path is None or path == "":
            _state["dir"] = None
            return None
        path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        os.makedirs(path, exist_ok=True)
        _state["dir"] = path
        return path


def program_cache_dir() -> str | None:
    """The folder `enable_program_cache` set, or None while the cache is off."""
    return _state["dir"]


@functools.cache
def _environment() -> str:
    """What every key shares: diffhw's source, the library versions, JAX's options, the
    devices."""
    h = hashlib.sha256()
    root = os.path.dirname(os.path.abspath(__file__))
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                full = os.path.join(folder, name)
                h.update(os.path.relpath(full, root).encode())
                with open(full, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    versions = (sys.version, jax.__version__, jaxlib.__version__, equinox.__version__, optax.__version__,
                np.__version__)
    devices = tuple((d.platform, d.device_kind) for d in jax.devices())
    platform_version = getattr(jax.devices()[0].client, "platform_version", "")
    h.update(repr((FORMAT, versions, devices, platform_version, _cpu())).encode())
    return h.hexdigest()


def _cpu() -> str:
    """The CPU's model and instruction-set flags (an executable compiled for the CPU
    uses the host's instructions)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags", "Features", "CPU part"))]
        return repr(sorted(set(lines)))
    except OSError:
        return repr((platform.machine(), platform.processor()))


def _options() -> tuple:
    """JAX options that change what tracing produces (read per call: a user may change
    them between calls)."""
    c = jax.config
    names = ("jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_rank_promotion",
             "jax_numpy_dtype_promotion", "jax_default_prng_impl", "jax_enable_checks")
    return tuple((n, repr(getattr(c, n, None))) for n in names)


_SCALARS = (bool, int, float, complex, str, bytes, type(None))


def _canon(x, out: list) -> None:
    """Append an exact, process-independent description of a static value to `out`."""
    if isinstance(x, _SCALARS):
        out.append((type(x).__name__, repr(x)))
    elif isinstance(x, (tuple, list, frozenset)):
        items = sorted(x, key=repr) if isinstance(x, frozenset) else x
        out.append((type(x).__name__, len(items)))
        for v in items:
            _canon(v, out)
    elif isinstance(x, dict):
        out.append(("dict", len(x)))
        for k in sorted(x, key=repr):
            _canon(k, out)
            _canon(x[k], out)
    elif isinstance(x, enum.Enum):
        out.append(("enum", type(x).__module__, type(x).__qualname__, x.name))
    elif isinstance(x, type):
        out.append(("type", x.__module__, x.__qualname__))
    elif dataclasses.is_dataclass(x) and not isinstance(x, type) and not hasattr(x, "__jax_array__"):
        out.append(("dataclass", type(x).__module__, type(x).__qualname__))
        for f in dataclasses.fields(x):
            out.append(f.name)
            _canon(getattr(x, f.name), out)
    elif hasattr(x, "dtype") and hasattr(x, "shape") and not isinstance(x, jax.Array):
        a = np.asarray(x)  # a NumPy scalar or array held as static data
        out.append(("numpy", str(a.dtype), a.shape, hashlib.sha256(a.tobytes()).hexdigest()))
    else:
        text = repr(x)
        # An object without a value-based repr (the default names its address), or a
        # callable (its code is not in its repr), is not described exactly.
        if " at 0x" in text or callable(x):
            raise _Uncacheable(type(x).__qualname__)
        out.append(("object", type(x).__module__, type(x).__qualname__, text))


def _treedef(t, out: list) -> None:
    node = t.node_data()
    if node is None:
        out.append("*")
        return
    kind, data = node
    out.append(("node", kind.__module__, kind.__qualname__))
    _canon(data, out)
    children = t.children()
    out.append(len(children))
    for c in children:
        _treedef(c, out)


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def _key(fun, options, args, kwargs):
    """The key of a call and its array leaves (in order), or raise `_Uncacheable`."""
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
    desc = [("fun", fun.__module__, fun.__qualname__), ("xla", tuple(sorted(options.items()))), _options()]
    _treedef(treedef, desc)
    dynamic, where = [], []
    for i, leaf in enumerate(leaves):
        if _is_array(leaf):
            # NumPy leaves in JAX's dtype (float64 becomes float32 unless in 64-bit
            # mode), as `jit` passes them
            a = leaf if isinstance(leaf, jax.Array) else np.asarray(leaf, jax.dtypes.canonicalize_dtype(leaf.dtype))
            desc.append(("array", tuple(a.shape), str(a.dtype), bool(getattr(a, "weak_type", False))))
            dynamic.append(a)
            where.append(i)
        else:
            _canon(leaf, desc)
    h = hashlib.sha256(_environment().encode())
    h.update(repr(desc).encode())
    return h.hexdigest(), leaves, treedef, dynamic, where


class _Index:
    """A stand-in leaf of an output skeleton: the position of the array it stands for."""

    def __init__(self, i):
        self.i = i

    def __reduce__(self):
        return (_Index, (self.i,))


def rebuild(treedef, leaves, where, arrays):
    """``(args, kwargs)`` from their flattened `leaves` with the array leaves at
    positions `where` replaced by `arrays` (a flat program's inputs)."""
    full = list(leaves)
    for i, a in zip(where, arrays, strict=True):
        full[i] = a
    return jax.tree_util.tree_unflatten(treedef, full)


def _compile(fun, options, leaves, treedef, where, turn=None):
    """Trace, lower and compile `fun` at these arguments (array leaves as inputs, the
    rest held fixed). Returns (compiled, output skeleton) or raises `_Uncacheable`."""
    fixed = list(leaves)
    holder = {}

    def flat(*arrays):
        args, kwargs = rebuild(treedef, fixed, where, arrays)
        out = fun(*args, **kwargs)
        out_leaves, out_tree = jax.tree_util.tree_flatten(out)
        if not all(isinstance(v, jax.Array) for v in out_leaves):
            raise _Uncacheable("an output leaf is not an array")
        holder["tree"] = out_tree
        return out_leaves

    flat.__name__ = flat.__qualname__ = getattr(fun, "__name__", "flat")  # JAX's logs name it
    arrays = [leaves[i] for i in where]
    with _past_jax_cache():
        lowered = jax.jit(flat, compiler_options=dict(options) if options else None).lower(*arrays)
        if turn is not None:
            turn.release()  # the next program traces while this one compiles
        compiled = lowered.compile()
    out_tree = holder["tree"]
    skeleton = jax.tree_util.tree_unflatten(out_tree, [_Index(i) for i in range(out_tree.num_leaves)])
    # The skeleton must come back from a pickle as the same structure (e.g. the
    # output's Equinox modules), or the program is not cached.
    back = pickle.loads(pickle.dumps(skeleton))
    back_leaves, back_tree = jax.tree_util.tree_flatten(back, is_leaf=_is_index)
    d1, d2 = [], []
    _treedef(out_tree, d1)
    _treedef(back_tree, d2)
    if d1 != d2 or [v.i for v in back_leaves] != list(range(out_tree.num_leaves)):
        raise _Uncacheable("the output's structure does not survive a pickle")
    return compiled, skeleton


_past = threading.local()
#: JAX's own `compilation_cache.is_cache_used` (None in a JAX without it).
_JAX_IS_CACHE_USED = getattr(_jax_cache, "is_cache_used", None)


def _is_cache_used(backend):
    """JAX's `is_cache_used`, but False in a thread inside `_past_jax_cache`."""
    if getattr(_past, "on", False):
        return False
    return _JAX_IS_CACHE_USED(backend)


@contextlib.contextmanager
def _past_jax_cache():
    """Compile afresh in this thread, neither reading nor writing JAX's persistent
    compilation cache: an executable loaded from it serialises without its code
    ("Function ... not found" when the copy runs). JAX asks its (private)
    `compilation_cache.is_cache_used` per compilation; diffhw's replacement answers
    False in this thread only, so programs compiled meanwhile in other threads still
    use JAX's cache."""
    if not callable(_JAX_IS_CACHE_USED):
        raise _Uncacheable("this JAX's cache switch is unknown")
    if _jax_cache.is_cache_used is not _is_cache_used:
        _jax_cache.is_cache_used = _is_cache_used
    _past.on = True
    try:
        yield
    finally:
        _past.on = False


def _is_index(v):
    return isinstance(v, _Index)


def _runner(compiled, skeleton):
    tree = jax.tree_util.tree_structure(skeleton, is_leaf=_is_index)

    def run(arrays):
        return jax.tree_util.tree_unflatten(tree, compiled(*arrays))

    return run


def _write(path, blob):
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)  # whole files only: a reader never sees half of one
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def call(fun, jitted, options, args, kwargs):
    """Run `fun(*args, **kwargs)` with its program from the cache (loaded, or compiled
    and kept), or with `jitted` when the cache is off or the call is uncacheable."""
    folder = _state["dir"]
    if folder is None:
        return jitted(*args, **kwargs)
    try:
        key, leaves, treedef, dynamic, where = _key(fun, options, args, kwargs)
    except _Uncacheable:
        return jitted(*args, **kwargs)
    run = _loaded.get(key, False)
    if isinstance(run, concurrent.futures.Future):
        try:
            run = run.result()
        except Exception:  # noqa: BLE001 - e.g. a trace error: the plain jit raises it here, as uncached
            run = None
        _loaded[key] = run
    if run is None:
        return jitted(*args, **kwargs)
    if run is False:
        run = _load_or_compile(folder, key, fun, options, leaves, treedef, where)
        _loaded[key] = run
        if run is None:
            return jitted(*args, **kwargs)
    try:
        return run(dynamic)
    except Exception:
        if not getattr(run, "from_disk", False):
            raise
        # A loaded program that does not run here: drop it, and run as a plain jit.
        _loaded[key] = None
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, key + ".program"))
        return jitted(*args, **kwargs)


def _load_or_compile(folder, key, fun, options, leaves, treedef, where, turn=None):
    path = os.path.join(folder, key + ".program")
    record = _read(path, key)
    if record is not None:
        try:
            compiled = serialize_executable.deserialize_and_load(record["executable"], record["in_tree"],
                                                                 record["out_tree"])
            run = _runner(compiled, record["skeleton"])
            run.from_disk = True
            return run
        except Exception:  # noqa: BLE001, S110 - not loadable here: compile afresh (and replace it)
            pass
    try:
        compiled, skeleton = _compile(fun, options, leaves, treedef, where, turn)
    except _Uncacheable:
        return None
    if not _self_contained(compiled):
        return None  # e.g. the value checks' callback: runs as a plain jit, as it would uncached
    try:
        executable, in_tree, out_tree = serialize_executable.serialize(compiled)
        blob = pickle.dumps({"format": FORMAT, "key": key, "executable": executable, "in_tree": in_tree,
                             "out_tree": out_tree, "skeleton": skeleton})
    except Exception:  # noqa: BLE001 - not serialisable (e.g. a backend without it): run it, keep nothing
        blob = None
    if blob is not None:
        _write(path, blob)
        _trim(folder)
    return _runner(compiled, skeleton)


def _self_contained(compiled) -> bool:
    """Whether the executable needs nothing from this process: no host callback, side
    effect or object kept alive (a loaded copy would lack them)."""
    unloaded = getattr(getattr(compiled, "_executable", None), "_unloaded_executable", None)
    if unloaded is None:
        return False
    return not any(getattr(unloaded, name, True) for name in
                   ("host_callbacks", "keepalive", "ordered_effects", "unordered_effects"))


def _read(path, key):
    try:
        with open(path, "rb") as f:
            record = pickle.load(f)
        os.utime(path)  # recently used: trimmed last
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError, TypeError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("key") != key:
        return None
    return record


def _trim(folder):
    """Remove the least recently used files while the folder holds over `MAX_BYTES`."""
    try:
        files = [(e.stat().st_mtime, e.stat().st_size, e.path) for e in os.scandir(folder)
                 if e.is_file() and e.name.endswith(".program")]
    except OSError:
        return
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= MAX_BYTES:
            break
        with contextlib.suppress(OSError):
            os.unlink(path)
            total -= size
