"""NumPy forward and backward evaluation.

``evaluate`` runs each op's ``numpy`` kernel in topological order; ``grad`` runs the adjoint
nodes that :func:`graphgrad.autodiff.backward` emitted, with the very same kernels.

Feeding values
--------------
* Every ``input``, ``param`` and ``const`` the requested outputs need must be fed; feeding a name
  that is not declared is an error.
* Sizes (``N``, ``K``) bind from the arrays' shapes; a size bound to two values is an error.
  Sizes used only as scalars can be passed with ``sizes={"n": 25}``.
* A vector ``[N]`` may be fed as ``(N,)`` or ``(N, 1)``; a scalar as a number or 0-d array.
* Batching: an ``input`` fed with one extra leading axis (``x`` as ``(B, N)``) evaluates every
  sample. Gradients with respect to unbatched variables sum over the batch; those with respect to
  batched inputs stay per sample. Every gradient has the shape of the value fed.
* dtypes are kept: all-float32 inputs compute in float32, all-float64 in float64; mixing them is an
  error unless ``dtype=`` says which to use. Integers are taken as float64.
* Non-finite values are an error unless ``allow_nonfinite=True``: inputs, and values that an op
  makes from finite operands (``exp`` overflowing, ``log`` of a non-positive number, ``mean`` of
  nothing); the error names the node. With ``allow_nonfinite=True`` results follow IEEE
  arithmetic (``inf``, ``nan``), silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .autodiff import backward, check_of
from .errors import DerivationError, GraphgradError, InputError, NamingError, ShapeError, SizeError
from .graph import Graph, upstream
from .ops import LEAF_KINDS, OPS
from .shapes import fmt, matrix_form, normalize


@dataclass
class Feed:
    """Values prepared for the kernels: matrix forms, bound sizes, batch size and dtype."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    fed_shape: dict[str, tuple[int, ...]] = field(default_factory=dict)
    batched: set[str] = field(default_factory=set)
    sizes: dict[str, int] = field(default_factory=dict)
    batch: int | None = None
    dtype: np.dtype = np.dtype(np.float64)
    allow_nonfinite: bool = False


def _as_array(name: str, v: Any) -> np.ndarray:
    try:
        arr = np.asarray(v)
    except Exception as e:  # ragged lists and the like
        raise InputError(f"the value for {name!r} is not an array: {e}", node=name) from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.integer)
                                   or arr.dtype == np.bool_):
        raise InputError(f"the value for {name!r} has dtype {arr.dtype}, not a real number type",
                         node=name, hint="feed float32 or float64 arrays")
    return arr


def prepare(graph: Graph, inputs: Mapping[str, Any] | None, needed: Iterable[str] | None = None,
            sizes: Mapping[str, int] | None = None, dtype: Any = None,
            allow_nonfinite: bool = False) -> Feed:
    """Check and convert fed values for the leaves in ``needed`` (default: all leaves)."""
    inputs = dict(inputs or {})
    leaves = graph.leaves()
    declared = set(leaves)
    for k in inputs:
        if k not in declared:
            what = f"{k!r} is {graph.describe(k)}, not an input, param or const" if k in graph \
                else f"{k!r} is not a declared name"
            raise InputError(f"unknown input: {what}", node=str(k),
                             hint="feed only: " + ", ".join(leaves))
    if needed is None:
        need = leaves
    else:
        wanted = set(needed)  # (built once: rebuilding it per leaf was quadratic)
        need = [n for n in leaves if n in wanted]
    missing = [n for n in need if n not in inputs]
    if missing:
        raise InputError("missing value" + "s" * (len(missing) > 1) + " for " + ", ".join(missing),
                         node=missing[0], hint="pass them in inputs, e.g. --random SEED on the CLI")
    feed = Feed(allow_nonfinite=allow_nonfinite)
    arrays = {n: _as_array(n, inputs[n]) for n in need}
    floats = {n: a.dtype for n, a in arrays.items() if np.issubdtype(a.dtype, np.floating)}
    if dtype is not None:
        try:
            feed.dtype = np.dtype(dtype)
        except TypeError:
            raise InputError(f"dtype {dtype!r} is not a NumPy dtype", hint="pass np.float64 or np.float32") from None
        if not np.issubdtype(feed.dtype, np.floating):
            raise InputError(f"dtype must be a float type, got {feed.dtype}")
    elif floats:
        kinds = sorted(set(floats.values()), key=str)
        if len(kinds) > 1:
            detail = ", ".join(f"{n} is {d}" for n, d in floats.items())
            raise InputError(f"mixed float types ({detail})",
                             hint="cast them to one type, or pass dtype=np.float64 (or float32)")
        feed.dtype = np.dtype(kinds[0])
    for n, d in (sizes or {}).items():
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0:
            raise SizeError(f"size {n} must be an integer >= 0, got {d!r}", node=str(n),
                            hint="pass sizes={'N': 3}")
        feed.sizes[str(n)] = int(d)
    bound_from: dict[str, str] = {n: "sizes=" for n in feed.sizes}
    for n in need:
        arr = arrays[n].astype(feed.dtype, copy=False)
        shape = normalize(graph.shape(n))
        core, lead = arr.shape, ()
        if arr.ndim == len(shape) + 1 and len(shape) == 1 and arr.shape[-1] == 1 and \
                _fits(shape[0], arr.shape[0], feed.sizes):
            core = (arr.shape[0],)  # a column vector fed as (N, 1)
        elif arr.ndim == len(shape) + 1 or (len(shape) == 1 and arr.ndim == 3 and arr.shape[-1] == 1):
            lead, core = arr.shape[:1], arr.shape[1:len(shape) + 1]
        elif arr.ndim != len(shape):
            raise InputError(f"{n!r} is declared {fmt(shape)} but was fed an array of shape {arr.shape}",
                             **graph.where(n), hint=f"feed shape {_example(shape)}")
        if lead:
            if graph.op(n) != "input":
                raise InputError(f"{graph.op(n)} {n!r} is declared {fmt(shape)} but was fed shape "
                                 f"{arr.shape}; only inputs may carry a batch axis", **graph.where(n),
                                 hint=f"feed shape {_example(shape)}")
            if feed.batch is not None and feed.batch != lead[0]:
                raise InputError(f"batch size {lead[0]} of {n!r} differs from batch size {feed.batch}",
                                 **graph.where(n), hint="feed every batched input with the same B")
            feed.batch = lead[0]
            feed.batched.add(n)
        for d, v in zip(shape, core):
            if isinstance(d, int):
                if d != v:
                    raise InputError(f"{n!r} is declared {fmt(shape)} but was fed shape {arr.shape}",
                                     **graph.where(n), hint=f"feed shape {_example(shape)}")
            elif d in feed.sizes and feed.sizes[d] != v:
                raise SizeError(f"size {d} is bound to two values: {feed.sizes[d]} (from "
                                f"{bound_from[d]}) and {v} (from {n})", **graph.where(n),
                                hint=f"make the shapes agree on {d}")
            else:
                feed.sizes.setdefault(d, v)
                bound_from.setdefault(d, n)
        if not allow_nonfinite and not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise InputError(f"the value for {n!r} is not finite at index {tuple(int(i) for i in bad)}",
                             **graph.where(n), hint="clean the data, or pass allow_nonfinite=True")
        r, c = matrix_form(tuple(core) if core else ())
        feed.values[n] = arr.reshape(lead + (r, c))
        feed.fed_shape[n] = arr.shape
    return feed


def _fits(d: Any, v: int, sizes: Mapping[str, int]) -> bool:
    return d == v if isinstance(d, int) else sizes.get(d, v) == v


def _example(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def run(graph: Graph, feed: Feed, order: Iterable[str]) -> dict[str, np.ndarray]:
    """Run the kernels of ``order`` (a topological order) on ``feed``; returns matrix forms."""
    vals: dict[str, np.ndarray] = {}
    dt = feed.dtype
    for n in order:
        a = graph.attrs(n)
        op = a["op"]
        if op in LEAF_KINDS:
            if n not in feed.values:
                raise InputError(f"missing value for {n}", node=n)
            vals[n] = feed.values[n]
        elif op == "literal":
            vals[n] = np.full((1, 1), a["value"], dtype=dt)
        elif op == "size":
            if n not in feed.sizes:
                raise InputError(f"size {n} is not bound", node=n,
                                 hint=f"feed an array whose shape uses {n}, or pass sizes={{'{n}': ...}}")
            vals[n] = np.full((1, 1), feed.sizes[n], dtype=dt)
        else:
            try:
                with np.errstate(all="ignore"):
                    out = OPS[op].numpy(*(vals[x] for x in a["args"]))
            except ValueError as e:
                raise ShapeError(f"{op} failed on shapes "
                                 f"{', '.join(str(vals[x].shape) for x in a['args'])}: {e}",
                                 **graph.where(n), hint="check the sizes fed") from None
            vals[n] = out if out.dtype == dt else out.astype(dt)
            if not feed.allow_nonfinite and not np.all(np.isfinite(out)):
                raise _nonfinite(graph, n, out, [vals[x] for x in a["args"]], dt)
    return vals


def _nonfinite(graph: Graph, n: str, out: np.ndarray, args: list[np.ndarray], dt: np.dtype) -> InputError:
    """The error for an op that made inf or nan (from finite operands: inputs were checked)."""
    a = graph.attrs(n)
    ext = external(graph, n, out)  # indices as users see them: (i,) for a vector
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(ext))[0])
    what = "nan" if np.isnan(ext[bad]) else "inf"
    owner = a.get("adjoint_of")
    where = f"in the reverse pass (the adjoint of {owner!r}), " if owner else ""
    hints = {"exp": "exp overflows above ~709 (float64) or ~88 (float32)",
             "log": "log needs positive operands", "sqrt": "sqrt needs operands >= 0 (its derivative > 0)",
             "div": "the divisor is 0 somewhere", "pow": "a negative base with a fractional exponent, or 0 to a "
             "negative power", "mean": "mean of an empty array"}
    hint = hints.get(a["op"], f"values too large for {dt}")
    return InputError(f"{where}{a['op']} gave {what} at index {bad} of {graph.describe(n)}", **graph.where(n),
                      hint=f"{hint}; pass allow_nonfinite=True to get IEEE inf/nan instead")


def external(graph: Graph, n: str, v: np.ndarray) -> np.ndarray:
    """A value in the form users expect: scalar -> 0-d (or (B,)), vector -> (N,) (or (B, N))."""
    shape = normalize(graph.shape(n))
    if len(shape) == 0:
        return v[..., 0, 0]
    if len(shape) == 1:
        return v[..., :, 0]
    return v


def evaluate(graph: Graph, inputs: Mapping[str, Any] | None = None, *, outputs: Iterable[str] | None = None,
             sizes: Mapping[str, int] | None = None, dtype: Any = None,
             allow_nonfinite: bool = False) -> dict[str, np.ndarray]:
    """Every named node's value (or just ``outputs``), as NumPy arrays.

    Scalars come back 0-d (``(B,)`` when batched), vectors ``(N,)`` (``(B, N)``).
    """
    check_call(graph, None, inputs)
    outs = check_outputs(graph, outputs)
    needed = _needed(graph, outs)
    feed = prepare(graph, inputs, with_size_binders(graph, needed, sizes or ()), sizes, dtype, allow_nonfinite)
    vals = run(graph, feed, needed)
    return {n: external(graph, n, vals[n]) for n in outs}


def check_outputs(graph: Graph, outputs: Iterable[str] | None) -> list[str]:
    """``outputs`` as a list of node names (default: every named node), each checked."""
    if outputs is None:
        return graph.named_nodes()
    if isinstance(outputs, str):
        outputs = [outputs]
    try:
        outs = list(outputs)
    except TypeError:
        raise NamingError(f"outputs must be a list of names, got {type(outputs).__name__}",
                          hint="e.g. outputs=['h', 'L']") from None
    for o in outs:
        if not isinstance(o, str) or o not in graph:
            raise NamingError(f"{o!r} is not defined", node=str(o),
                              hint="outputs must name nodes: " + ", ".join(graph.named_nodes()))
    return outs


def _needed(graph: Graph, targets: Iterable[str]) -> list[str]:
    return upstream(graph, targets)


def with_size_binders(graph: Graph, nodes: list[str], given: Iterable[str] = ()) -> list[str]:
    """``nodes`` and, for each size they use as a value that none of their leaves' shapes binds,
    the first declared leaf whose shape does (``const c[N]`` for ``L = N * sum(x)``): its value
    must be fed, so that every engine binds the size from the same array. Sizes in ``given``
    (passed as ``sizes=``) need none.

    >>> from graphgrad import parse
    >>> g = parse("input x[K]\\nconst c[N]\\nL = N * sum(x)")
    >>> with_size_binders(g, upstream(g, ["L"]))[-1]
    'c'
    """
    have = set(nodes)
    bound = set(given) | {d for n in nodes if graph.op(n) in LEAF_KINDS for d in normalize(graph.shape(n))}
    extra = []
    for n in nodes:
        if graph.op(n) == "size" and n not in bound:
            leaf = next((m for m in graph.leaves() if n in normalize(graph.shape(m))), None)
            if leaf is not None and leaf not in have:
                extra.append(leaf)
                have.add(leaf)
                bound.update(d for d in normalize(graph.shape(leaf)))
    return nodes + extra


def check_call(graph: Any, of: Any = None, inputs: Any = None, *, output: str = "of") -> None:
    """Argument types of a public call, checked at the entry (a clear error, not a deep TypeError).

    >>> check_call("model.gg")
    Traceback (most recent call last):
    ...
    graphgrad.errors.GraphgradError: expected a graphgrad.Graph, got str (fix: build one with gg.parse(text), gg.load(path) or gg.from_networkx(G))
    """
    if not isinstance(graph, Graph):
        raise GraphgradError(f"expected a graphgrad.Graph, got {type(graph).__name__}",
                             hint="build one with gg.parse(text), gg.load(path) or gg.from_networkx(G)")
    if of is not None and not isinstance(of, str):
        raise NamingError(f"{output} must be a node name (a str), got {type(of).__name__}",
                          hint=f"e.g. {output}='L'")
    if inputs is not None and not isinstance(inputs, Mapping):
        raise InputError(f"inputs must be a mapping of names to arrays, got {type(inputs).__name__}",
                         hint="pass a dict, e.g. {'x': np.ones(3)}")


def _wrt_list(graph: Graph, wrt: str | Iterable[str] | None) -> list[str]:
    if wrt is None:
        return graph.leaves()
    if isinstance(wrt, str):
        ws = [wrt]
    else:
        try:
            ws = list(wrt)
        except TypeError:
            raise NamingError(f"wrt must be a name or a list of names, got {type(wrt).__name__}",
                              hint="e.g. wrt=['W1', 'b1']") from None
    for w in ws:
        if not isinstance(w, str):
            raise NamingError(f"wrt must name nodes (strs), got {w!r} ({type(w).__name__})",
                              hint="e.g. wrt=['W1', 'b1']")
        if w not in graph:
            raise NamingError(f"wrt {w!r} is not defined", node=str(w),
                             hint="wrt must name variables: " + ", ".join(graph.named_nodes()))
        if graph.op(w) in ("literal", "size"):
            raise DerivationError(f"cannot differentiate with respect to {graph.describe(w)}", node=w)
    return ws


ENGINES = ("auto", "compiled", "interpret")


def value_and_grad(graph: Graph, of: str, wrt: str | Iterable[str] | None = None,
                   inputs: Mapping[str, Any] | None = None, *, sizes: Mapping[str, int] | None = None,
                   dtype: Any = None, allow_nonfinite: bool = False,
                   engine: str = "auto") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``of``'s value and its gradients with respect to ``wrt`` (default: every leaf).

    One backward sweep serves every ``wrt``. A ``wrt`` that ``of`` does not depend on gets zeros.

    ``engine``: ``"compiled"`` runs :func:`graphgrad.compile`'s code for ``(of, wrt)``, compiled
    once and cached on the graph (a batch is summed inside the matrix products, so the per-sample
    gradients of a K×N matrix never exist); ``"interpret"`` runs each op's kernel in order and
    checks every value as it is made. ``"auto"`` (the default) is the compiled code, and the
    interpreter where only it can serve: with ``sizes``, ``dtype`` or ``allow_nonfinite``, and to
    name the node where a non-finite result came from. Both give the same numbers up to rounding
    (a property test holds them together on random graphs).
    """
    if not isinstance(engine, str) or engine not in ENGINES:
        raise GraphgradError(f"unknown engine {engine!r}", hint="use " + ", ".join(map(repr, ENGINES)))
    check_call(graph, of, inputs)
    check_of(graph, of)
    ws = _wrt_list(graph, wrt)
    if engine == "compiled" or (engine == "auto" and sizes is None and dtype is None and not allow_nonfinite):
        if sizes is not None or dtype is not None or allow_nonfinite:
            raise GraphgradError("the compiled engine takes no sizes=, dtype= or allow_nonfinite=",
                                 hint="use engine='interpret' (or 'auto')")
        out = _compiled_value_and_grad(graph, of, ws, inputs)
        if out is not None:
            return out
    return _interpret_value_and_grad(graph, of, ws, inputs, sizes, dtype, allow_nonfinite)


def _compiled_value_and_grad(graph: Graph, of: str, ws: list[str], inputs: Mapping[str, Any] | None
                             ) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """The compiled code's result, or None when it is not finite (the interpreter then says where)."""
    from .codegen import compile as compile_grad

    key = ("compiled", of, tuple(sorted(set(ws))))  # one function (and the same bits) for any order
    f = graph.cache.get(key)
    if f is None:
        f = graph.cache[key] = compile_grad(graph, of, list(key[2]))
    feed = dict(inputs or {})
    for k in [k for k in feed if k not in f.leaves and k in graph and graph.op(k) in LEAF_KINDS]:
        del feed[k]  # declared but not needed for (of, wrt): ignored, as the interpreter does
    with np.errstate(all="ignore"):
        value, grads = f(**feed)
    value = np.asarray(value)
    if not (np.all(np.isfinite(value)) and all(np.all(np.isfinite(g)) for g in grads.values())):
        return None
    return value, {w: grads[w] for w in ws}


def _interpret_value_and_grad(graph: Graph, of: str, ws: list[str], inputs: Mapping[str, Any] | None,
                              sizes: Mapping[str, int] | None, dtype: Any, allow_nonfinite: bool
                              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    bw = backward(graph, of)
    targets = [of] + [bw.adjoint[w] for w in ws if w in bw.adjoint]
    order = bw.needed(targets) if len(ws) else upstream(graph, [of])
    order = _union_order(bw.graph, order, ws)  # an intermediate in wrt that of does not reach: its value
    feed = prepare(bw.graph, inputs, with_size_binders(bw.graph, order, sizes or ()), sizes, dtype,
                   allow_nonfinite)
    vals = run(bw.graph, feed, order)
    grads = {}
    for w in ws:
        like = vals[w]
        adj = vals[bw.adjoint[w]] if w in bw.adjoint else np.zeros_like(like)
        grads[w] = _reduce_like(graph, w, adj, like, feed, vals[of].ndim > 2)
    return external(graph, of, vals[of]), grads


def grad(graph: Graph, of: str, wrt: str | Iterable[str] | None = None,
         inputs: Mapping[str, Any] | None = None, **kw: Any) -> dict[str, np.ndarray]:
    """Reverse-mode gradients of scalar ``of`` with respect to each of ``wrt``.

    Each gradient has the shape of the value fed (intermediates: their external form).
    Gradients of unbatched variables are summed over the batch. Keywords as for
    :func:`value_and_grad` (``sizes``, ``dtype``, ``allow_nonfinite``, ``engine``).
    """
    return value_and_grad(graph, of, wrt, inputs, **kw)[1]


def _union_order(graph: Graph, order: list[str], extra: list[str]) -> list[str]:
    have = set(order)
    if all(e in have for e in extra):
        return order
    return _needed(graph, order + extra)


def _reduce_like(graph: Graph, w: str, adj: np.ndarray, like: np.ndarray, feed: Feed,
                 of_batched: bool) -> np.ndarray:
    # adjoint values are per sample; one without a batch axis is the same for every sample
    if adj.ndim > like.ndim:
        adj = adj.sum(axis=tuple(range(adj.ndim - like.ndim)))
    elif of_batched and like.ndim == 2 and adj.ndim == 2 and feed.batch:
        adj = adj * feed.batch
    if adj.shape != like.shape:
        adj = np.broadcast_to(adj, like.shape)
    adj = np.array(adj, dtype=feed.dtype)  # an owned, writable copy
    if w in feed.fed_shape:
        return adj.reshape(feed.fed_shape[w])
    return external(graph, w, adj)


# ----------------------------------------------------------------------------- gradcheck


@dataclass
class GradcheckReport:
    """Result of :func:`gradcheck`: worst relative error per variable and, on failure, the culprit."""

    ok: bool
    errors: dict[str, float]
    culprit: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        lines = [f"gradcheck {'passed' if self.ok else 'FAILED'}"]
        lines += [f"  {w}: worst relative error {e:.2e}" for w, e in self.errors.items()]
        if self.culprit:
            lines.append(f"  first node whose local derivative disagrees: {self.culprit} ({self.detail})")
        return "\n".join(lines)

    def __bool__(self) -> bool:
        return self.ok


def _rel(a: np.ndarray, b: np.ndarray, slack: float = 0.0) -> float:
    """Worst |a - b| beyond ``slack`` (the rounding noise of the differences), relative to max |a|, |b|."""
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)), 1e-8)
    return max(float(np.max(np.abs(a - b), initial=0.0)) - slack, 0.0) / scale


def gradcheck(graph: Graph, of: str, wrt: str | Iterable[str] | None = None,
              inputs: Mapping[str, Any] | None = None, *, eps: float = 1e-6, tol: float = 1e-5,
              directions: int = 6, seed: int = 0, sizes: Mapping[str, int] | None = None) -> GradcheckReport:
    """Check ``grad`` against central differences (in float64), and localise a failure.

    Variables with at most 64 elements are checked entry by entry, larger ones along
    ``directions`` random directions. When the check fails, every op node is checked on its own
    (its VJP rule against central differences of its kernel at the values it saw) and the first
    one that disagrees is named.
    """
    check_call(graph, of, inputs)
    for name, v, ok in (("eps", eps, lambda v: np.isfinite(v) and v > 0), ("tol", tol, lambda v: v >= 0),
                        ("directions", directions, lambda v: v >= 1 and float(v).is_integer()),
                        ("seed", seed, lambda v: v >= 0 and float(v).is_integer())):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not ok(v):
            raise InputError(f"gradcheck: {name}={v!r} is out of range",
                             hint="eps > 0 (e.g. 1e-6), tol >= 0, directions >= 1, seed >= 0 (integers)")
    ws = _wrt_list(graph, wrt)
    inputs = {k: _as_array(k, v).astype(np.float64) for k, v in (inputs or {}).items()}
    g = grad(graph, of, ws, inputs, sizes=sizes)
    rng = np.random.default_rng(seed)

    def f(vals: Mapping[str, Any]) -> float:
        return float(np.sum(evaluate(graph, vals, outputs=[of], sizes=sizes)[of]))

    # central differences of f carry rounding noise of about eps_machine * |f| / eps: a zero
    # gradient (two paths that cancel) must not fail the check on that noise alone
    slack = 64 * float(np.finfo(np.float64).eps) * (1.0 + abs(f(inputs))) / eps
    errors: dict[str, float] = {}
    for w in ws:
        if w not in inputs:
            continue  # intermediates: checked through the leaves
        x = inputs[w]
        if x.size <= 64:
            dirs = [np.eye(x.size)[i].reshape(x.shape) for i in range(x.size)]
        else:
            dirs = [rng.standard_normal(x.shape) for _ in range(directions)]
        fd, an = [], []
        for v in dirs:
            plus = f({**inputs, w: x + eps * v})
            minus = f({**inputs, w: x - eps * v})
            fd.append((plus - minus) / (2 * eps))
            an.append(float(np.sum(g[w] * v)))
        errors[w] = _rel(np.array(an), np.array(fd), slack)
    ok = all(e <= tol for e in errors.values())
    report = GradcheckReport(ok, errors)
    if not ok:
        report.culprit, report.detail = _localise(graph, of, inputs, sizes, eps, tol, rng)
    return report


def _localise(graph, of, inputs, sizes, eps, tol, rng) -> tuple[str | None, str]:
    needed = _needed(graph, [of])
    feed = prepare(graph, inputs, needed, sizes)
    vals = run(graph, feed, needed)
    for n in needed:
        op = graph.op(n)
        if op not in OPS:
            continue
        err = local_vjp_error(op, [vals[a][0] if vals[a].ndim > 2 else vals[a]  # sample 0 of a batch
                                   for a in graph.args(n)], rng, eps,
                              literal=[graph.op(a) == "literal" for a in graph.args(n)])
        if err > tol:
            return n, f"{op}: relative error {err:.2e} of its VJP rule against central differences"
    return None, "no single op disagrees; check the graph's wiring"


def local_vjp_error(op: str, args: list[np.ndarray], rng: np.random.Generator, eps: float = 1e-6,
                    literal: list[bool] | None = None) -> float:
    """Relative error of op's VJP rule against central differences at operands ``args``.

    Operands are matrix forms (unbatched). Literal operands (pow's exponent) are held fixed.
    """
    literal = literal or [False] * len(args)
    local = Graph()
    names = []
    for i, (a, is_lit) in enumerate(zip(args, literal)):
        if is_lit:
            names.append(local.literal(float(a.reshape(-1)[0])).name)
        else:
            names.append(local.const(f"a{i}", tuple(a.shape)).name)
    out = local.apply(op, *names)
    gshape = tuple(int(d) for d in out.shape)
    gv = local.const("g", gshape)
    local.apply("sum", local.apply("mul", gv, out), name="L")
    gval = rng.standard_normal(matrix_form(gshape)).reshape(gshape if gshape else ())
    feed_vals = {f"a{i}": a for i, (a, is_lit) in enumerate(zip(args, literal)) if not is_lit}
    feed_vals["g"] = gval
    try:
        an = grad(local, "L", list(k for k in feed_vals if k != "g"), feed_vals)
    except GraphgradError:
        return 0.0
    worst = 0.0
    for k in an:
        v = rng.standard_normal(feed_vals[k].shape)

        def f(x, k=k):
            return float(evaluate(local, {**feed_vals, k: x}, outputs=["L"])["L"])

        fd = (f(feed_vals[k] + eps * v) - f(feed_vals[k] - eps * v)) / (2 * eps)
        worst = max(worst, _rel(np.array([np.sum(an[k] * v)]), np.array([fd])))
    return worst
