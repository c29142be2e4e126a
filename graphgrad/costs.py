"""What a forward pass, a VJP, a JVP and a full Jacobian cost: FLOPs and peak memory.

Costs are SymPy polynomials in the model's size names (``n``, ``K``...), so ``v (vᵀ x)`` shows
its VJP growing like ``n`` and its Jacobian like ``n²``; :meth:`CostReport.at` turns them into
numbers for given sizes.

The model
---------
* FLOPs per op, from the operands' shapes (``r x k`` matrix forms), as each op's table entry
  declares (``OpSpec.flops``, ``OpSpec.view``):
  ``matmul`` ``2·r·k·c``; element-wise ops (``add``, ``mul``, ``sigmoid``, ``exp``...) one per
  output element; ``sum``/``mean``/``sum_to`` one per input element; ``dot`` and ``norm`` two per
  element; ``unit`` three; ``transpose``, ``id`` and ``expand`` none (NumPy views); leaves none.
* Memory counts array *elements* (multiply by the item size, 8 for float64, for bytes). Fed
  leaves are live for the whole run; every other value is allocated when computed and freed
  after its last consumer, unless it is a result. Views (``transpose``, ``id``, ``expand``)
  allocate nothing and keep their operand alive. The peak is the largest live total over the
  steps of the topological order; symbolically it is the largest of the candidate totals that
  no other candidate dominates (coefficient-wise, sizes being positive), a ``Max`` if several remain.
* VJP: the nodes of the reverse pass that ``wrt``'s adjoints need, with the cotangent fed.
  JVP: the same for ``J t`` on the JVP graph (:func:`graphgrad.jacobians.jvp_graph`).
* Jacobian: ``m`` VJPs (``m`` = entries of ``of``) or ``n`` JVPs (``n`` = entries of ``wrt``),
  whichever is fewer, sharing the nodes that do not depend on the cotangent (or tangent):
  FLOPs ``shared + m · per-row``; memory = the peak of one VJP (JVP) plus the ``m·n`` entries of J.

>>> import graphgrad as gg
>>> g = gg.parse('''
... input x[n]
... const v[n]
... f = v @ (v.T @ x)
... ''')
>>> c = cost(g, "f", "x")
>>> c.vjp.flops, c.jacobian.flops
(4*n, 4*n**2)
>>> c.at(n=10)["jacobian"]["flops"]
400
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from .arguments import wrt_list
from .autodiff import backward, check_of
from .errors import DerivationError
from .graph import LEAF_OPS, Graph
from .interpret import needed
from .jacobians import jvp_graph
from .ops import LEAF_KINDS, OPS
from .shapes import Shape, matrix_form
from .symbolic import size_symbol

VIEW_OPS = tuple(name for name, spec in OPS.items() if spec.view)
"""Ops that NumPy computes as views (``OpSpec.view``): no FLOPs, no new memory."""


def numel(shape: Shape) -> sp.Expr:
    """Number of elements of a shape, as a SymPy expression.

    >>> numel(("K", "N")), numel(()), numel((3,))
    (K*N, 1, 3)
    """
    r, c = matrix_form(tuple(shape))
    return _dim(r) * _dim(c)


def _dim(d: Any) -> sp.Expr:
    return size_symbol(d) if isinstance(d, str) else sp.Integer(d)


def op_flops(graph: Graph, n: str) -> sp.Expr:
    """FLOPs of computing node ``n`` from its operands (0 for leaves and views).

    >>> g = Graph(); W, x = g.param("W", ("K", "N")), g.input("x", "N")
    >>> op_flops(g, (W @ x).name)
    2*K*N
    """
    op = graph.op(n)
    if op in LEAF_OPS or op in VIEW_OPS:
        return sp.Integer(0)
    rule = OPS[op].flops
    if rule is None:  # element-wise: one per output element
        return numel(graph.shape(n))
    return sp.sympify(rule([tuple(map(_dim, matrix_form(graph.shape(a)))) for a in graph.args(n)]))


@dataclass
class Cost:
    """FLOPs and peak memory (array elements) of one computation; ``peak_steps`` for numbers."""

    flops: sp.Expr
    memory: sp.Expr
    peak_steps: list[sp.Expr] = field(default_factory=list, repr=False)
    extra_memory: sp.Expr = sp.Integer(0)

    def dominant(self) -> sp.Expr:
        """The memory polynomial that is largest for large sizes (``memory`` itself if not a Max)."""
        if not isinstance(self.memory, sp.Max):
            return self.memory
        big = {s: 10**6 for s in self.memory.free_symbols}
        return max(self.memory.args, key=lambda e: e.subs(big))

    def at(self, sizes: Mapping[str, int]) -> dict[str, int]:
        """``{"flops": ..., "memory": ...}`` for the given sizes (the exact peak over the steps)."""
        subs = {size_symbol(k): int(v) for k, v in sizes.items()}
        steps = self.peak_steps or [self.memory]
        peak = max(_int(s.subs(subs)) for s in steps) + _int(self.extra_memory.subs(subs))
        return {"flops": _int(self.flops.subs(subs)), "memory": peak}


def _int(e: sp.Expr) -> int:
    if e.free_symbols:
        raise DerivationError(f"sizes {', '.join(sorted(map(str, e.free_symbols)))} are not given",
                              hint="pass a value for every size name, e.g. at(n=1000)")
    return int(e)


def walk(graph: Graph, order: list[str], results: Iterable[str]) -> Cost:
    """FLOPs and peak memory of running ``order`` (topological) to get ``results`` (a liveness walk).

    >>> g = Graph(); x = g.input("x", "n"); y = g.apply("exp", g.apply("exp", x), name="y")
    >>> c = walk(g, g.topo_order(), ["y"])
    >>> c.flops, c.memory
    (2*n, 3*n)
    """
    root: dict[str, str] = {}
    for n in order:
        root[n] = root[graph.args(n)[0]] if graph.op(n) in VIEW_OPS else n
    last: dict[str, int] = {}
    for i, n in enumerate(order):
        for a in graph.args(n):
            last[root[a]] = max(last.get(root[a], -1), i)
    end = len(order)
    for r in results:
        last[root[r]] = end
    flops = sp.Integer(0)
    live = sp.Integer(0)
    for n in order:
        if graph.op(n) in LEAF_KINDS:
            live += numel(graph.shape(n))  # fed values: live throughout
    steps = [live]
    for i, n in enumerate(order):
        op = graph.op(n)
        flops += op_flops(graph, n)
        if op in LEAF_OPS or op in VIEW_OPS:
            continue
        live += numel(graph.shape(n))
        steps.append(live)
        for a in set(graph.args(n)):
            r = root[a]
            if last.get(r) == i and graph.op(r) not in LEAF_OPS:
                live -= numel(graph.shape(r))
        if n not in last:
            live -= numel(graph.shape(n))  # computed but never used: freed at once
    steps = [sp.expand(s) for s in steps]
    return Cost(sp.expand(flops), peak(steps), steps)


def peak(candidates: list[sp.Expr]) -> sp.Expr:
    """The largest of polynomial candidates in positive sizes: drop the dominated ones.

    >>> n = size_symbol("n")
    >>> peak([n, 2 * n + 1, n**2 + 2 * n]), peak([n + 5, 2 * n])
    (n**2 + 2*n, Max(2*n, n + 5))
    """
    uniq = list(dict.fromkeys(sp.expand(c) for c in candidates))
    keep = []
    for i, p in enumerate(uniq):
        dominated = any(j != i and _dominates(q, p) and (not _dominates(p, q) or j < i)
                        for j, q in enumerate(uniq))
        if not dominated:
            keep.append(p)
    return keep[0] if len(keep) == 1 else sp.Max(*keep)


def _dominates(q: sp.Expr, p: sp.Expr) -> bool:
    """Whether q >= p for all positive sizes, judged by the coefficients of q - p."""
    d = sp.expand(q - p)
    if d == 0:
        return True
    syms = sorted(d.free_symbols, key=str)
    if not syms:
        return bool(d >= 0)
    return all(c >= 0 for c in sp.Poly(d, *syms).coeffs())


@dataclass
class CostReport:
    """Costs of the forward pass, one VJP, one JVP and the full Jacobian of ``of`` w.r.t. ``wrt``."""

    of: str
    wrt: list[str]
    m: sp.Expr
    n: sp.Expr
    forward: Cost
    vjp: Cost
    jvp: Cost
    jacobian: Cost
    mode: str
    jacobian_rev: Cost
    jacobian_fwd: Cost

    def rows(self) -> list[tuple[str, Cost]]:
        """The table's rows: label and cost."""
        jac = f"Jacobian ({'m VJPs' if self.mode == 'rev' else 'n JVPs'})"
        return [("forward", self.forward), ("VJP (Jᵀy)", self.vjp), ("JVP (J t)", self.jvp),
                (jac, self.jacobian)]

    def at(self, /, **sizes: int) -> dict[str, dict[str, int]]:
        """Numbers for the given sizes: ``{"forward"|"vjp"|"jvp"|"jacobian": {"flops", "memory"}}``."""
        return {k: getattr(self, k).at(sizes) for k in ("forward", "vjp", "jvp", "jacobian")}

    def table(self, /, **sizes: int) -> str:
        """A plain-text table: symbolic FLOPs and memory, and numbers when sizes are given.

        Where the symbolic peak is a ``Max``, the table shows its largest term for large sizes;
        the numbers are always the exact peak.
        """
        head = ["", "FLOPs", "peak memory (elements)"]
        if sizes:
            tag = ", ".join(f"{k}={v}" for k, v in sizes.items())
            head += [f"FLOPs at {tag}", f"memory at {tag}"]
        body = []
        for label, c in self.rows():
            mem = c.dominant()
            row = [label, str(c.flops), str(mem) if mem == c.memory else f"{mem} (largest of {len(c.memory.args)})"]
            if sizes:
                v = c.at(sizes)
                row += [f"{v['flops']:,}", f"{v['memory']:,}"]
            body.append(row)
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        lines = ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in [head, *body]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        title = f"cost of {self.of} w.r.t. {', '.join(self.wrt)} (m = {self.m}, n = {self.n})"
        return title + "\n" + "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _split_cost(graph: Graph, order: list[str], results: list[str], source: Iterable[str],
                per: sp.Expr, extra: sp.Expr) -> Cost:
    """``per`` repetitions of the nodes depending on ``source``; the rest computed once."""
    src = set(source)
    depends: set[str] = set()
    for n in order:
        if n in src or any(a in depends for a in graph.args(n)):
            depends.add(n)
    once = sum((op_flops(graph, n) for n in order if n not in depends), sp.Integer(0))
    each = sum((op_flops(graph, n) for n in order if n in depends), sp.Integer(0))
    one = walk(graph, order, results)
    return Cost(sp.expand(once + per * each), sp.expand(one.memory + extra) if not isinstance(
        one.memory, sp.Max) else sp.Max(*(sp.expand(a + extra) for a in one.memory.args)),
        one.peak_steps, extra)


def cost(graph: Graph, of: str, wrt: str | Iterable[str] | None = None) -> CostReport:
    """FLOPs and peak memory of forward, VJP, JVP and Jacobian of ``of`` w.r.t. ``wrt``.

    ``wrt`` defaults to every declared leaf ``of`` depends on. See the module docstring for the
    cost model; :meth:`CostReport.table` prints it, :meth:`CostReport.at` gives numbers.

    >>> import graphgrad as gg
    >>> g = gg.parse("input x[n]\\nf = exp(x)")
    >>> r = cost(g, "f", "x")
    >>> r.forward.flops, r.jacobian.memory
    (n, n**2 + 4*n)
    """
    check_of(graph, of, scalar=False)
    fwd_order = needed(graph, [of])
    if wrt is None:
        ws = [w for w in graph.leaves() if w in set(fwd_order)]
    else:
        ws = wrt_list(graph, wrt)
    forward = walk(graph, fwd_order, [of])
    m = numel(graph.shape(of))
    n = sp.expand(sum((numel(graph.shape(w)) for w in ws), sp.Integer(0)))
    bw = backward(graph, of, seed="cotangent")
    vtargets = [bw.adjoint[w] for w in ws if w in bw.adjoint]
    vorder = needed(bw.graph, vtargets) if vtargets else []
    vjp = walk(bw.graph, vorder, vtargets)
    jg = jvp_graph(graph, of, ws)
    jtargets = [jg.out] if jg.out is not None else []
    jorder = needed(jg.graph, jtargets) if jtargets else []
    jvp = walk(jg.graph, jorder, jtargets)
    storage = sp.expand(m * n)
    rev = _split_cost(bw.graph, vorder, vtargets, [bw.seed], m, storage)
    fwd = _split_cost(jg.graph, jorder, jtargets, jg.tangent.values(), n, storage)
    mode = _mode(m, n)
    return CostReport(of, ws, m, n, forward, vjp, jvp, rev if mode == "rev" else fwd, mode, rev, fwd)


def _mode(m: sp.Expr, n: sp.Expr) -> str:
    """``rev`` when m <= n for all positive sizes, ``fwd`` when m >= n (and not equal), else ``rev``."""
    if _dominates(n, m):
        return "rev"
    if _dominates(m, n):
        return "fwd"
    return "rev"


def measured_growth(ns: list[float], values: list[float]) -> list[float]:
    """Log-log slopes between consecutive points: 1 for linear growth, 2 for quadratic.

    >>> measured_growth([10, 100, 1000], [5, 500, 50000])
    [2.0, 2.0]
    """
    return [round(math.log(values[i + 1] / values[i]) / math.log(ns[i + 1] / ns[i]), 6)
            for i in range(len(ns) - 1)]
