"""How diffhw compiles its programs: `filter_jit`, Equinox's semantics with the XLA
options below, a cheaper dispatch at the top level (`_Dispatch`), and the on-disk
program cache when it is on (`diffhw._programs`).

diffhw's programs are thousands of scalar operations (one per term of the cost model),
not large array kernels, so XLA's compile time, not its run time, is what a user waits
for. On CPU two XLA options halve it (`python benchmarks/compile.py`; the main job's
XLA compile time 26.6 s -> 12.9 s, results unchanged):

- ``xla_cpu_use_fusion_emitters=False``: XLA's classic elemental emitters instead of
  its newer MLIR fusion emitters, which compile these programs about 1.6x slower and
  run them no faster (same results bit for bit).
- ``xla_backend_optimization_level=0``: no LLVM optimisation of the generated code.
  Compiles about 1.3x faster; a wide `vmap` runs up to 1.8x slower, so programs that
  evaluate many designs per call (sweep chunks) keep the default level
  (``throughput=True``).

Both are XLA debug options (``xla/debug_options_flags.cc``), used only when JAX's
default backend is the CPU (untested on GPUs and TPUs, where the optimisation level
would also slow the kernels). They apply when diffhw's entry point is called at the
top level (eagerly, as a script or a notebook cell does). Called inside a user's
`jax.jit`, `grad` or `vmap`, it compiles as part of the user's program, with the user's
options (JAX accepts compile options only on a top-level `jit`).
"""

import contextlib
import functools

import equinox as eqx
import jax
import numpy as np
from jax._src import core as _jax_core

from . import _programs

#: XLA compile options of diffhw's entry points.
COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 0}

#: The same for programs that evaluate many designs per call.
THROUGHPUT_OPTIONS = {"xla_cpu_use_fusion_emitters": False}

# JAX's own test for "no trace is active" (private; without it the options are never used).
_at_top_level = getattr(_jax_core, "trace_state_clean", lambda: False)


@functools.cache
def _on_cpu() -> bool:
    # At the first call, not on import: importing diffhw must not start JAX's backend.
    return jax.default_backend() == "cpu"


def filter_jit(fun=None, *, throughput=False, packed=False, **jitkwargs):
    """`eqx.filter_jit` with `COMPILER_OPTIONS` (`THROUGHPUT_OPTIONS` if `throughput`)
    at the top level; usable as ``@filter_jit`` or ``filter_jit(f, throughput=True)``.

    With `packed`, a top-level call's program returns its outputs packed into one vector
    per dtype and the call returns them as read-only NumPy arrays (`_FlatProgram`)."""
    if fun is None:
        return lambda f: filter_jit(f, throughput=throughput, packed=packed, **jitkwargs)
    options = THROUGHPUT_OPTIONS if throughput else COMPILER_OPTIONS
    plain = eqx.filter_jit(fun, **jitkwargs)
    tuned = eqx.filter_jit(fun, compiler_options=dict(options), **jitkwargs)

    # A local function's name is not unique in its module: never cached on disk.
    cacheable = "<" not in fun.__qualname__ and not jitkwargs
    fast = _Dispatch(fun, packed) if not jitkwargs else None

    @functools.wraps(fun)
    def call(*args, **kwargs):
        if not _at_top_level():
            return plain(*args, **kwargs)
        jitted, opts = (tuned, options) if _on_cpu() else (plain, {})
        if cacheable and _programs.program_cache_dir() is not None:
            return _programs.call(fun, jitted, opts, args, kwargs)
        if fast is not None:
            # anything it cannot do (an unhashable static leaf) or any error: Equinox's
            # path, which raises errors with its messages (e.g. `eqx.error_if`'s)
            with contextlib.suppress(Exception):
                return fast(opts, args, kwargs)
        return jitted(*args, **kwargs)

    def prepare(*args, **kwargs):
        """Start compiling this call's program in a background thread (`_programs.prepare`:
        only while the program cache is on; otherwise nothing): a caller that knows its
        next programs announces them, and one compiles while the next is traced."""
        if cacheable and _at_top_level() and _programs.program_cache_dir() is not None:
            _programs.prepare(fun, options if _on_cpu() else {}, args, kwargs)

    call.prepare = prepare
    return call


_ARRAYS = (jax.Array, np.ndarray, np.generic)
_DYNAMIC = object()  # the stand-in of an array leaf in a key


class _Dispatch:
    """`eqx.filter_jit`'s semantics (array leaves traced, every other leaf static) with
    a cheaper per-call path: the arguments are flattened once, looked up by their tree
    structure and static leaves, and passed to a plain `jax.jit` of a flat function,
    whose C++ dispatch does the rest (shapes, dtypes). `eqx.filter_jit` re-partitions
    and re-hashes the whole pytree on every call: it tripled a warm `diffhw.evaluate`.
    A function whose output has a non-array leaf keeps Equinox's path."""

    def __init__(self, fun, packed=False):
        self.fun = fun
        self.packed = packed
        self.entries = {}

    def __call__(self, options, args, kwargs):
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
        statics = tuple(_DYNAMIC if isinstance(x, _ARRAYS) else x for x in leaves)
        key = (treedef, statics, tuple(options.items()))
        entry = self.entries.get(key)  # TypeError for an unhashable static leaf
        if entry is None:
            entry = _FlatProgram(self.fun, treedef, statics, options, self.packed)
        out = entry(*[x for x, s in zip(leaves, statics, strict=True) if s is _DYNAMIC])
        self.entries[key] = entry  # kept once it has run
        return out


class _FlatProgram:
    """One structure's program: a plain `jax.jit` of `fun` over the array leaves. With
    `packed`, its outputs are one vector per dtype, unpacked here into NumPy views."""

    def __init__(self, fun, treedef, statics, options, packed):
        where = [i for i, s in enumerate(statics) if s is _DYNAMIC]
        # packed: {input signature: (output treedef, [(group, start, stop, shape)])}, one
        # per trace (`jax.jit` traces again for new input shapes or dtypes)
        self.layouts = {}

        def flat(*arrays):
            args, kwargs = _programs.rebuild(treedef, statics, where, arrays)
            out = fun(*args, **kwargs)
            leaves, outdef = jax.tree_util.tree_flatten(out)
            if not all(isinstance(v, jax.Array) for v in leaves):
                raise TypeError("an output leaf is not an array")  # Equinox's path returns it as it is
            if not packed:
                return out
            dtypes = list(dict.fromkeys(v.dtype for v in leaves))
            groups = {d: [] for d in dtypes}
            places, ends = [], dict.fromkeys(dtypes, 0)
            for v in leaves:
                start = ends[v.dtype]
                ends[v.dtype] = start + v.size
                groups[v.dtype].append(v.ravel())
                places.append((dtypes.index(v.dtype), start, ends[v.dtype], v.shape))
            self.layouts[_signature(arrays)] = (outdef, places)
            return [jax.numpy.concatenate(groups[d]) for d in dtypes]

        flat.__name__ = flat.__qualname__ = getattr(fun, "__name__", "flat")  # JAX's logs name it
        self.jitted = jax.jit(flat, compiler_options=dict(options) if options else None)
        self.packed = packed

    def __call__(self, *arrays):
        out = self.jitted(*arrays)
        if not self.packed:
            return out
        groups = [np.asarray(v) for v in out]
        # one trace so far: its layout (the common case, no per-call signature)
        layout = next(iter(self.layouts.values())) if len(self.layouts) == 1 else self.layouts[_signature(arrays)]
        outdef, places = layout
        return jax.tree_util.tree_unflatten(outdef, [groups[g][a:b].reshape(shape) for g, a, b, shape in places])


def _signature(arrays):
    """What `jax.jit` keys a trace on, per array (or tracer) input: shape, dtype, weak type."""
    return tuple((x.shape, x.dtype, bool(getattr(jax.typeof(x), "weak_type", False))) for x in arrays)


def device_floats(x):
    """Host numbers as a JAX array of the default float dtype. `jnp.asarray` of a
    float64 NumPy array under 32-bit JAX converts on the device, and its first use per
    shape compiles a program (so does `jnp.asarray` of a float32 one: a "stage" program,
    ~15 ms per shape); this converts on the host and transfers (`jax.device_put`: no
    program)."""
    return jax.device_put(np.asarray(x, dtype=jax.dtypes.canonicalize_dtype(np.float64)))
