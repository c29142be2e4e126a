"""What users call: gradients with an engine chosen for them, and checks against central differences.

``value_and_grad``/``grad`` run the compiled code (:mod:`graphgrad.compiler`) by default and the
interpreter (:mod:`graphgrad.interpret`) where only it can serve; ``gradcheck`` holds a gradient
against central differences and names the first op whose local derivative disagrees.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import interpret
from .arguments import check_graph, check_mapping, check_node_name, wrt_list
from .autodiff import check_of
from .compiler import compile as compile_grad
from .errors import GraphgradError, InputError
from .feed import as_array, prepare
from .graph import Graph
from .interpret import evaluate, needed, run
from .ops import LEAF_KINDS, OPS
from .shapes import matrix_form

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
    check_graph(graph, "value_and_grad")
    check_mapping(inputs, "inputs")
    ws = _checked_call(graph, of, wrt)
    if engine == "compiled" or (engine == "auto" and sizes is None and dtype is None and not allow_nonfinite):
        if sizes is not None or dtype is not None or allow_nonfinite:
            raise GraphgradError("the compiled engine takes no sizes=, dtype= or allow_nonfinite=",
                                 hint="use engine='interpret' (or 'auto')")
        out = _compiled_value_and_grad(graph, of, ws, inputs)
        if out is not None:
            return out
    return interpret.value_and_grad(graph, of, ws, inputs, sizes, dtype, allow_nonfinite)


def _checked_call(graph: Graph, of: Any, wrt: Any) -> list[str]:
    """``of`` and ``wrt`` checked (``wrt`` as a list), once per graph version: the result is cached
    on the graph, which drops it on any change, so a training loop checks its call only once."""
    key = None  # cached only for names given as they are written (None, a str, a list or tuple of strs)
    if wrt is None or isinstance(wrt, str):
        key = ("checked call", of, wrt)
    elif isinstance(wrt, (list, tuple)) and all(isinstance(w, str) for w in wrt):
        key = ("checked call", of, tuple(wrt))
    try:
        ws = graph.cache.get(key) if key is not None and isinstance(of, str) else None
    except TypeError:
        ws, key = None, None
    if ws is None:
        check_node_name(graph, of, "of")
        check_of(graph, of)
        ws = wrt_list(graph, wrt)
        if key is not None and isinstance(of, str):
            graph.cache[key] = ws
    return list(ws)


def _compiled_value_and_grad(graph: Graph, of: str, ws: list[str], inputs: Mapping[str, Any] | None
                             ) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """The compiled code's result, or None when it is not finite (the interpreter then says where)."""
    key = ("compiled", of, tuple(sorted(set(ws))))  # one function (and the same bits) for any order
    f = graph.cache.get(key)
    if f is None:
        f = graph.cache[key] = compile_grad(graph, of, list(key[2]))
    feed = dict(inputs or {})
    if len(feed) != len(f.leaves):
        for k in [k for k in feed if k not in f.leaves and k in graph and graph.op(k) in LEAF_KINDS]:
            del feed[k]  # declared but not needed for (of, wrt): ignored, as the interpreter does
    with np.errstate(all="ignore"):
        value, grads = f(**feed)
        value = np.asarray(value)
        # one sum per array: nan or inf anywhere makes it non-finite (a sum that overflows from
        # finite values only sends the call to the interpreter, which computes the same numbers)
        total = float(np.add.reduce(value, axis=None)) + sum(float(np.add.reduce(g, axis=None))
                                                             for g in grads.values())
    if not math.isfinite(total):
        return None
    return value, {w: grads[w] for w in ws}


def grad(graph: Graph, of: str, wrt: str | Iterable[str] | None = None,
         inputs: Mapping[str, Any] | None = None, **kw: Any) -> dict[str, np.ndarray]:
    """Reverse-mode gradients of scalar ``of`` with respect to each of ``wrt``.

    Each gradient has the shape of the value fed (intermediates: their external form).
    Gradients of unbatched variables are summed over the batch. Keywords as for
    :func:`value_and_grad` (``sizes``, ``dtype``, ``allow_nonfinite``, ``engine``).
    """
    return value_and_grad(graph, of, wrt, inputs, **kw)[1]


@dataclass


class GradcheckReport:
    """Result of :func:`gradcheck`: worst relative error per variable and, on failure, the culprit.

    >>> GradcheckReport(True, {"x": 1.5e-10, "W1": 3e-9})
    <GradcheckReport passed: x 1.50e-10, W1 3.00e-09>
    """

    ok: bool
    errors: dict[str, float]  # the raw worst relative error |analytic − central difference| / scale
    culprit: str | None = None
    detail: str = ""
    tolerance: dict[str, float] = field(default_factory=dict)  # what each error was held to

    def __str__(self) -> str:
        lines = [f"gradcheck {'passed' if self.ok else 'FAILED'}"]
        lines += [f"  {w}: worst relative error {e:.2e}" + (f" (allowed {self.tolerance[w]:.2e})" if w in self.tolerance
                                                            else "") for w, e in self.errors.items()]
        if self.culprit:
            lines.append(f"  first node whose local derivative disagrees: {self.culprit} ({self.detail})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        errs = ", ".join(f"{w} {e:.2e}" for w, e in self.errors.items())
        culprit = f"; first disagreeing node {self.culprit!r}" if self.culprit else ""
        return f"<GradcheckReport {'passed' if self.ok else 'FAILED'}: {errs}{culprit}>"

    def _repr_html_(self) -> str:
        """A small table in a notebook: one row per variable, the culprit below a failure."""
        rows = "".join(f"<tr><td>{html.escape(str(w))}</td><td>{e:.2e}</td><td>{self.tolerance.get(w, float('nan')):.2e}"
                       "</td></tr>" for w, e in self.errors.items())
        culprit = (f"<p>first node whose local derivative disagrees: <code>{html.escape(str(self.culprit))}"
                   f"</code> ({html.escape(self.detail)})</p>") if self.culprit else ""
        return (f"<p><b>gradcheck {'passed' if self.ok else 'FAILED'}</b></p><table><tr><th>variable</th>"
                f"<th>worst relative error</th><th>allowed</th></tr>{rows}</table>{culprit}")

    def __bool__(self) -> bool:
        return self.ok


def _scale(a: np.ndarray, b: np.ndarray) -> float:
    return max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)), 1e-8)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Worst |a - b| relative to max |a|, |b| (the raw error: nothing subtracted)."""
    return float(np.max(np.abs(a - b), initial=0.0)) / _scale(a, b)


def gradcheck(graph: Graph, of: str, wrt: str | Iterable[str] | None = None,
              inputs: Mapping[str, Any] | None = None, *, eps: float = 1e-6, tol: float = 1e-5,
              directions: int = 6, seed: int = 0, sizes: Mapping[str, int] | None = None) -> GradcheckReport:
    """Check ``grad`` against central differences (in float64), and localise a failure.

    Variables with at most 64 elements are checked entry by entry, larger ones along
    ``directions`` random directions. When the check fails, every op node is checked on its own
    (its VJP rule against central differences of its kernel at the values it saw) and the first
    one that disagrees is named.
    """
    check_graph(graph, "gradcheck")
    check_node_name(graph, of, "of")
    check_mapping(inputs, "inputs")
    for name, v, ok in (("eps", eps, lambda v: np.isfinite(v) and v > 0), ("tol", tol, lambda v: v >= 0),
                        ("directions", directions, lambda v: v >= 1 and float(v).is_integer()),
                        ("seed", seed, lambda v: v >= 0 and float(v).is_integer())):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not ok(v):
            raise InputError(f"gradcheck: {name}={v!r} is out of range",
                             hint="eps > 0 (e.g. 1e-6), tol >= 0, directions >= 1, seed >= 0 (integers)")
    ws = wrt_list(graph, wrt)
    inputs = {k: as_array(k, v).astype(np.float64) for k, v in (inputs or {}).items()}
    g = grad(graph, of, ws, inputs, sizes=sizes)
    rng = np.random.default_rng(seed)

    def f(vals: Mapping[str, Any]) -> float:
        return float(np.sum(evaluate(graph, vals, outputs=[of], sizes=sizes)[of]))

    # central differences of f carry rounding noise of about eps_machine * |f| / eps: a zero
    # gradient (two paths that cancel) must not fail the check on that noise alone
    slack = 64 * float(np.finfo(np.float64).eps) * (1.0 + abs(f(inputs))) / eps
    errors: dict[str, float] = {}
    allowed: dict[str, float] = {}
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
        an_a, fd_a = np.array(an), np.array(fd)
        errors[w] = _rel(an_a, fd_a)
        allowed[w] = tol + slack / _scale(an_a, fd_a)  # the differences' rounding noise is allowed for
    ok = all(errors[w] <= allowed[w] for w in errors)
    report = GradcheckReport(ok, errors, tolerance=allowed)
    if not ok:
        report.culprit, report.detail = _localise(graph, of, inputs, sizes, eps, tol, rng)
    return report


def _localise(graph, of, inputs, sizes, eps, tol, rng) -> tuple[str | None, str]:
    order = needed(graph, [of])
    feed = prepare(graph, inputs, order, sizes)
    vals = run(graph, feed, order)
    for n in order:
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
