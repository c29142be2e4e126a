"""Backprop equations: the symbolic reverse sweep and :func:`backprop`.

:func:`sweep` runs the one reverse pass, :func:`graphgrad.autodiff.backward` in its
``symbolic=True`` form, with each user-named node's adjoint entering its operands' rules as a
symbol (``h̄``); :func:`backprop` turns it into one :class:`AdjointEquation` per user-named node
that ``of`` depends on, in reverse topological order (an :class:`Equations` list). ``_present``
writes σ′(z) as asked (``σ′(z)``, ``σ(z) ⊙ (1 − σ(z))`` or ``h ⊙ (1 − h)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy as sp
from sympy import HadamardPower, HadamardProduct, MatAdd, MatrixExpr, OneMatrix

from ..autodiff import backward, check_of
from ..errors import DerivationError
from ..graph import Graph
from ..hooks import printer
from ..ops import OPS
from .expressions import Apply, Converter, ScalarApply, size_symbol, var_symbol
from .factoring import factor_scalars

# ============================================================================= the reverse sweep


@dataclass
class Sweep:
    """One reverse sweep with symbolic adjoints of named nodes.

    ``graph`` is the extended graph (forward + adjoint nodes); ``placeholder[v]`` is the input
    leaf standing for v̄ in v's operands' rules; ``total[v]`` is the node summing v's
    contributions ``contributions[v]`` = [(consumer, node)]; ``order`` is the sweep order.
    """

    forward: Graph
    of: str
    graph: Graph
    cotangent: bool
    placeholder: dict[str, str] = field(default_factory=dict)
    total: dict[str, str] = field(default_factory=dict)
    contributions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    converter: Converter | None = None


def sweep(graph: Graph, of: str, fold: bool = True) -> Sweep:
    """Run the op table's vjp rules once in reverse topological order (cached on the graph).

    A vector ``of`` is seeded with the cotangent symbol ``of̄`` (for Jacobians).
    """
    key = ("symbolic-sweep", of, fold)
    if key in graph.cache:
        return graph.cache[key]
    if of not in graph:
        check_of(graph, of, scalar=False)
    bw = backward(graph, of, symbolic=True)
    ext = bw.graph
    sw = Sweep(graph, of, ext, bw.seed == bw.placeholder.get(of), placeholder=bw.placeholder,
               total=bw.adjoint, contributions=bw.contributions, order=bw.order)
    symbols: dict[str, sp.Basic] = {}
    for n in graph.named_nodes():
        symbols[n] = size_symbol(n) if graph.op(n) == "size" else var_symbol(n, graph.shape(n))
    for v, p in sw.placeholder.items():
        symbols[p] = var_symbol(v, graph.shape(v), adjoint=True)
    sw.converter = Converter(ext, symbols, fold=fold)
    graph.cache[key] = sw
    return sw


def adjoint_symbol(graph: Graph, v: str) -> sp.Basic:
    """The SymPy symbol v̄ of variable ``v``."""
    return var_symbol(v, graph.shape(v), adjoint=True)


# ============================================================================= presentation options


def _present(expr: sp.Basic, graph: Graph, prime: str, conv: Converter | None) -> sp.Basic:
    """Rewrite σ′(z) as asked: ``symbol`` (σ′(z)), ``sigmoid`` (σ(z) ⊙ (1 − σ(z))), ``output``
    (h ⊙ (1 − h) where the model names h = σ(z)); likewise tanh′ and any op with an
    :attr:`~graphgrad.ops.OpSpec.of_output` formula in the op table."""
    if prime == "symbol":
        return expr
    if prime not in ("sigmoid", "output"):
        raise DerivationError(f"unknown prime style {prime!r}", hint="use 'symbol', 'sigmoid' or 'output'")
    outer = {s.of_output[0] for s in OPS.values() if s.of_output}
    names: dict[sp.Basic, sp.Basic] = {}
    if prime == "output" and conv is not None:
        for n in graph.named_nodes():
            if graph.op(n) in outer:
                conv(n)
                names[conv.definition(n)] = conv.memo[n]
    rep = {}
    for a in expr.atoms(Apply, ScalarApply):
        spec = OPS.get(a.op)
        if spec is None or spec.of_output is None:
            continue
        f, g = spec.of_output
        fx = (Apply if isinstance(a, Apply) else ScalarApply)(f, a.arg)
        fx = names.get(fx, fx)
        t = sp.Dummy("t")
        rep[a] = _elementwise(g(t), t, fx, a.shape) if isinstance(a, Apply) else g(fx)
    return expr.xreplace(rep) if rep else expr


def _elementwise(e: sp.Expr, t: sp.Symbol, x: MatrixExpr, shape: tuple) -> MatrixExpr:
    """Scalar expression ``e`` of ``t`` applied element-wise to matrix ``x``: + and numbers become
    matrix sums with ``1`` (the all-ones matrix), × the Hadamard product, powers Hadamard powers."""
    if e == t:
        return x
    if e.is_Number:
        return e * OneMatrix(*shape)
    if e.is_Add:
        return MatAdd(*(_elementwise(a, t, x, shape) for a in e.args))
    if e.is_Mul:
        num = sp.Mul(*(a for a in e.args if a.is_Number))
        rest = [_elementwise(a, t, x, shape) for a in e.args if not a.is_Number]
        m = rest[0] if len(rest) == 1 else HadamardProduct(*rest)
        return m if num == 1 else num * m
    if e.is_Pow and e.exp.is_Integer and e.exp > 1:
        return HadamardPower(_elementwise(e.base, t, x, shape), e.exp)
    raise DerivationError(f"of_output formula {e} cannot be written element-wise on matrices")


# ============================================================================= equations


def _text(expr: sp.Basic, rank: dict[str, int] | None = None) -> str:
    # the presenters' printer, attached from above (graphgrad.hooks): the back end imports no presenter
    return printer("text")(expr, rank)


def _latex(expr: sp.Basic, rank: dict[str, int] | None = None) -> str:
    return printer("latex")(expr, rank)


def model_rank(graph: Graph) -> dict[str, int]:
    """Each named node's position in the model (for writing sums in the model's order)."""
    return {n: i for i, n in enumerate(graph.named_nodes())}


@dataclass
class AdjointEquation:
    """One backprop equation ``v̄ = rhs``: ``rhs`` is SymPy, in forward variables and other adjoints.

    ``terms`` lists ``(consumer, contribution)``, one per consumer of ``v`` (a named consumer, or
    the anonymous sub-expression through which the path runs).
    """

    var: str
    symbol: sp.Basic
    rhs: sp.Basic
    terms: list[tuple[str, sp.Basic]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The adjoint's display name (``W̄₁``)."""
        return _text(self.symbol)

    def __str__(self) -> str:
        return f"{_text(self.symbol)} = {_text(self.rhs)}"

    def latex(self) -> str:
        """The equation in LaTeX."""
        return f"{_latex(self.symbol)} = {_latex(self.rhs)}"

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"


class Equations(list):
    """The list of :class:`AdjointEquation` that :func:`backprop` returns, printable as a block."""

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self)

    def latex(self) -> str:
        """All equations in a LaTeX ``aligned`` block."""
        rows = [f"{_latex(e.symbol)} &= {_latex(e.rhs)}" for e in self]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            for e in self:
                if e.var == key:
                    return e
            raise KeyError(key)
        return super().__getitem__(key)


def backprop(graph: Graph, of: str, *, consts: bool = False, fold: bool = True,
             prime: str = "symbol") -> Equations:
    """The adjoint equations of ``of``: one per user-named node ``of`` depends on, in reverse
    topological order (declared leaves last, in declaration order).

    ``consts=True`` also gives the adjoints of ``const`` leaves; ``fold=False`` shows the trivial
    factors SymPy would fold (½ · 2, ‖u‖ / ‖u‖); ``prime`` writes σ′(z) as ``"symbol"``,
    ``"sigmoid"`` (σ(z) ⊙ (1 − σ(z))) or ``"output"`` (h ⊙ (1 − h)).

    >>> import graphgrad as gg
    >>> g = gg.parse("input x[N]\\nparam w[N]\\nh = dot(w, x)\\nL = 0.5 * h**2")
    >>> print(backprop(g, "L"))
    L̄ = 1
    h̄ = L̄ h
    x̄ = h̄ w
    w̄ = h̄ x
    """
    if of not in graph:
        check_of(graph, of, scalar=False)
    sw = sweep(graph, of, fold=fold)
    conv = sw.converter
    assert conv is not None
    eqs = Equations()
    named = [n for n in sw.order if graph.is_named(n) and graph.op(n) != "size"]
    leaves = set(graph.leaves())
    ordered = [n for n in named if n not in leaves] + [n for n in graph.leaves() if n in sw.total]
    for v in ordered:
        if graph.op(v) == "const" and not consts:
            continue
        if sw.cotangent and v == of:
            continue
        tidy = factor_scalars if fold else (lambda e: e)
        rhs = tidy(_present(conv(sw.total[v]), graph, prime, conv))
        terms = [(c, tidy(_present(conv(n), graph, prime, conv))) for c, n in sw.contributions[v]]
        eqs.append(AdjointEquation(v, adjoint_symbol(graph, v), rhs, terms))
    return eqs
