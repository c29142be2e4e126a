"""Backprop equations and derivatives as SymPy matrix expressions, printed the way a lecturer writes them.

:func:`backprop` gives one :class:`AdjointEquation` per user-named node that ``of`` depends on,
in reverse topological order; :func:`derivative` gives ∂of/∂wrt as one matrix expression
(:class:`Derivative`), whose :meth:`~Derivative.evaluate` computes it from the SymPy expression
itself (``lambdify``), independently of :mod:`graphgrad.evaluate`.

Where the maths comes from: the one reverse pass, :func:`graphgrad.autodiff.backward`, in its
``symbolic=True`` form — the op table's own ``vjp`` rules (the evaluator's rules, not a second
set), except that each user-named node's adjoint enters its operands' rules as a *symbol* (``h̄``). Anonymous
sub-expression nodes are folded into their named consumer's equation. Each IR node then becomes a
SymPy matrix expression, by its op's ``matrix`` form in the op table (:class:`Converter` supplies the
helpers it builds with): ``MatrixSymbol`` for vectors (N x 1) and matrices, ``Symbol`` for scalars
and size names, ``MatMul``/``Transpose``/``HadamardProduct``/``MatAdd``, and the small classes of
this module for element-wise functions (:class:`Apply`, printed ``σ(z)``), norms (:class:`Norm`)
and reductions. SymPy's own canonicalisation folds the trivial factors (½ · 2 = 1,
‖u‖ · u/‖u‖ = u).

>>> import graphgrad as gg
>>> g = gg.parse("input x[N]\\nparam W[K, N]\\nconst r[K]\\nL = dot(r, sigmoid(W @ x))")
>>> print(derivative(g, "L", "W"))
∂L/∂W = (r ⊙ σ′(W x)) xᵀ
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp
from sympy import (
    HadamardPower,
    HadamardProduct,
    Identity,
    MatAdd,
    MatMul,
    MatrixExpr,
    MatrixSymbol,
    OneMatrix,
    Transpose,
    ZeroMatrix,
)
from sympy.core.symbol import Str

from .autodiff import backward, check_of
from .errors import DerivationError, NamingError
from .graph import LEAF_OPS, Graph
from .ops import OPS
from .shapes import Shape, is_scalar, matrix_form, normalize

# ============================================================================= SymPy classes


class AdjointSymbol(sp.Symbol):
    """A scalar adjoint v̄ (its name is the variable's: ``AdjointSymbol("L")`` prints ``L̄``)."""


class AdjointMatrix(MatrixSymbol):
    """A vector or matrix adjoint v̄ (``AdjointMatrix("W1", K, N)`` prints ``W̄₁``)."""


class Apply(MatrixExpr):
    """An element-wise op of the table applied to a matrix expression: prints ``σ(z)``, ``σ′(z)``."""

    def __new__(cls, op: str | Str, arg: MatrixExpr) -> Apply:
        return MatrixExpr.__new__(cls, Str(op) if isinstance(op, str) else op, arg)

    @property
    def op(self) -> str:
        """The op's name in :data:`graphgrad.ops.OPS`."""
        return self.args[0].name

    @property
    def arg(self) -> MatrixExpr:
        """The operand."""
        return self.args[1]

    @property
    def shape(self) -> tuple:
        return self.args[1].shape


class ScalarApply(sp.Expr):
    """An element-wise op applied to a scalar: prints ``σ(a)``."""

    is_commutative = True

    def __new__(cls, op: str | Str, arg: sp.Expr) -> ScalarApply:
        return sp.Expr.__new__(cls, Str(op) if isinstance(op, str) else op, sp.sympify(arg))

    @property
    def op(self) -> str:
        """The op's name."""
        return self.args[0].name

    @property
    def arg(self) -> sp.Expr:
        """The operand."""
        return self.args[1]


class Norm(sp.Expr):
    """The Euclidean (Frobenius) norm ‖u‖ of a matrix expression, a scalar."""

    is_commutative = True
    is_nonnegative = True

    def __new__(cls, arg: MatrixExpr) -> Norm:
        return sp.Expr.__new__(cls, arg)


class Inner(sp.Expr):
    """A 1 x 1 matrix expression (``rᵀh``) used as the scalar it is."""

    is_commutative = True

    def __new__(cls, arg: MatrixExpr) -> Inner:
        return sp.Expr.__new__(cls, arg)


class Total(sp.Expr):
    """The sum of all elements of a matrix expression, a scalar: prints ``sum(u)``."""

    is_commutative = True

    def __new__(cls, arg: MatrixExpr) -> Total:
        return sp.Expr.__new__(cls, arg)


class Diag(MatrixExpr):
    """The diagonal matrix of a vector: prints ``diag(d)`` (Jacobians of element-wise maps)."""

    def __new__(cls, arg: MatrixExpr) -> Diag:
        return MatrixExpr.__new__(cls, arg)

    @property
    def shape(self) -> tuple:
        return (self.args[0].shape[0], self.args[0].shape[0])

    def _eval_transpose(self) -> Diag:
        return self


def size_symbol(name: str) -> sp.Symbol:
    """The SymPy symbol of a size name (a positive integer)."""
    return sp.Symbol(name, integer=True, positive=True)


def _dim(d: int | str) -> sp.Expr:
    return sp.Integer(d) if isinstance(d, int) else size_symbol(d)


def dims(shape: Shape) -> tuple[sp.Expr, sp.Expr]:
    """Rows and columns of a shape's matrix form, as SymPy numbers or size symbols."""
    r, c = matrix_form(normalize(shape))
    return _dim(r), _dim(c)


def var_symbol(name: str, shape: Shape, adjoint: bool = False) -> sp.Basic:
    """The SymPy symbol of a variable (or of its adjoint): a Symbol for scalars, else a MatrixSymbol."""
    if is_scalar(shape):
        return (AdjointSymbol if adjoint else sp.Symbol)(name, real=True)
    return (AdjointMatrix if adjoint else MatrixSymbol)(name, *dims(shape))


def is_matrix(e: Any) -> bool:
    """Whether a SymPy object is a matrix expression (not a scalar)."""
    return isinstance(e, MatrixExpr)


# ============================================================================= IR -> SymPy


def _ones_coeff(e: sp.Basic) -> sp.Expr | None:
    """c when ``e`` is c·𝟙 (a broadcast scalar), else None."""
    if isinstance(e, OneMatrix):
        return sp.Integer(1)
    if isinstance(e, MatMul):
        coeff, mats = e.as_coeff_matrices()
        if len(mats) == 1 and isinstance(mats[0], OneMatrix):
            return coeff
    return None


def hadamard(*factors: MatrixExpr, fold: bool = True) -> MatrixExpr:
    """Element-wise product with scalar coefficients pulled out front (2x ⊙ y = 2 (x ⊙ y))."""
    if not fold:
        return HadamardProduct(*factors)
    coeff: sp.Expr = sp.Integer(1)
    mats = []
    for f in factors:
        if isinstance(f, MatMul):
            c, ms = f.as_coeff_matrices()
            if len(ms) == 1:
                coeff, f = coeff * c, ms[0]
        c1 = _ones_coeff(f)
        if c1 is not None:
            coeff *= c1
            continue
        mats.append(f)
    if not mats:
        return coeff * OneMatrix(*factors[0].shape)
    body = mats[0] if len(mats) == 1 else HadamardProduct(*mats).doit(deep=False)
    return body if coeff == 1 else (coeff * body).doit(deep=False)


class Converter:
    """Turns IR nodes into SymPy expressions, memoised; ``symbols`` pins nodes to symbols.

    A node not pinned is converted from its op and its operands (iteratively, operands first), so
    anonymous sub-expressions are inlined into whatever uses them. Each op is written by its
    ``matrix`` entry in :data:`graphgrad.ops.OPS`, called as ``matrix(converter, args, shapes,
    out)``; the methods below are the helpers those entries build with. With ``fold=False`` they
    keep the trivial factors SymPy would fold (½ · 2, ‖u‖ / ‖u‖).

    >>> import graphgrad as gg
    >>> c = Converter(gg.parse("input x[N]\\nparam W[K, N]\\nh = sigmoid(W @ x)"))
    >>> from graphgrad.printing.text import to_text
    >>> print(to_text(c("h")))
    σ(W x)
    """

    def __init__(self, graph: Graph, symbols: Mapping[str, sp.Basic] | None = None, fold: bool = True) -> None:
        self.g = graph
        self.memo: dict[str, sp.Basic] = dict(symbols or {})
        self.fold = fold

    def __call__(self, node: str) -> sp.Basic:
        memo = self.memo
        stack: list[tuple[str, bool]] = [(node, False)]
        while stack:
            n, visited = stack.pop()
            if n in memo:
                continue
            if not visited:
                stack.append((n, True))
                stack.extend((a, False) for a in self.g.args(n) if a not in memo)
                continue
            memo[n] = self.definition(n)
        return memo[node]

    def definition(self, n: str) -> sp.Basic:
        """Node ``n`` built from its op and its (already converted) operands."""
        a = self.g.attrs(n)
        op = a["op"]
        if op == "literal":
            return sp.nsimplify(a["value"], rational=True)
        if op == "size":
            return size_symbol(n)
        if op in LEAF_OPS:
            return var_symbol(n, a["shape"])
        for x in a["args"]:
            if x not in self.memo:
                self(x)
        args = [self.memo[x] for x in a["args"]]
        shapes = [normalize(self.g.shape(x)) for x in a["args"]]
        try:
            return self._op(op, args, shapes, normalize(a["shape"]))
        except (TypeError, ValueError, sp.matrices.exceptions.ShapeError) as e:
            raise DerivationError(f"cannot write {op} as a SymPy expression: {e}", **self.g.where(n),
                                  hint="report this: every op should convert") from None

    # -------------------------------------------------------------- arithmetic helpers
    def mul(self, a: sp.Basic, b: sp.Basic) -> sp.Basic:
        """Scalar product, or scalar times matrix."""
        if self.fold:
            return a * b
        if is_matrix(a) or is_matrix(b):
            return MatMul(a, b)
        return sp.Mul(a, b, evaluate=False)

    def add(self, a: sp.Basic, b: sp.Basic) -> sp.Basic:
        """Sum of two scalars or of two same-shaped matrices."""
        if self.fold:
            return MatAdd(a, b).doit(deep=False) if is_matrix(a) else a + b
        return MatAdd(a, b) if is_matrix(a) else sp.Add(a, b, evaluate=False)

    def neg(self, a: sp.Basic) -> sp.Basic:
        """−a."""
        return -a if self.fold else self.mul(sp.Integer(-1), a)

    def bcast(self, e: sp.Basic, shape: Shape, to: Shape) -> sp.Basic:
        """``e`` broadcast from ``shape`` to ``to``, with ones vectors (b 𝟙ᵀ, c 𝟙)."""
        if shape == to:
            return e
        R, C = dims(to)
        if is_scalar(shape):
            return self.mul(e, OneMatrix(R, C))
        r, c = matrix_form(shape)
        if r == 1 and R != 1:
            e = MatMul(OneMatrix(R, 1), e)
        if c == 1 and C != 1:
            e = MatMul(e, OneMatrix(1, C))
        return e.doit(deep=False) if self.fold else e

    def reduce(self, e: sp.Basic, shape: Shape, to: Shape) -> sp.Basic:
        """``e`` of ``shape`` summed down to ``to`` (not a scalar), with ones vectors (𝟙ᵀ g, g 𝟙)."""
        (gr, gc), (lr, lc) = matrix_form(shape), matrix_form(to)
        if lr == 1 and gr != 1:
            e = MatMul(OneMatrix(1, _dim(gr)), e)
        if lc == 1 and gc != 1:
            e = MatMul(e, OneMatrix(_dim(gc), 1))
        return e.doit(deep=False) if self.fold else e

    def power(self, a: sp.Basic, p: sp.Basic) -> sp.Basic:
        """a^p: element-wise (``HadamardPower``) for a matrix."""
        if is_matrix(a):
            return HadamardPower(a, p)
        return a**p if self.fold else sp.Pow(a, p, evaluate=False)

    def matmul(self, a: sp.Basic, b: sp.Basic, fold: bool | None = None) -> sp.Basic:
        """The matrix product a b (canonicalised when folding; ``fold`` overrides the converter's)."""
        fold = self.fold if fold is None else fold
        return MatMul(a, b).doit(deep=False) if fold else MatMul(a, b)

    def transpose(self, a: sp.Basic) -> sp.Basic:
        """aᵀ (a scalar is its own transpose)."""
        if not is_matrix(a):
            return a
        return a.T if self.fold else Transpose(a)

    def hadamard(self, *factors: MatrixExpr) -> MatrixExpr:
        """Element-wise product, scalar coefficients out front when folding (see :func:`hadamard`)."""
        return hadamard(*factors, fold=self.fold)

    def total(self, a: MatrixExpr) -> sp.Expr:
        """The sum of all elements of a matrix expression: ``c R C`` for c 𝟙, else ``sum(a)``."""
        c = _ones_coeff(a)
        R, C = a.shape
        return c * R * C if c is not None else Total(a)

    @staticmethod
    def norm(a: MatrixExpr) -> sp.Expr:
        """‖a‖ of a matrix expression."""
        return Norm(a)

    @staticmethod
    def inner(a: MatrixExpr) -> sp.Expr:
        """A 1 x 1 matrix expression used as a scalar."""
        return Inner(a)

    @staticmethod
    def apply(op: str, a: sp.Basic) -> sp.Basic:
        """Element-wise op ``op`` of the table applied to ``a``: prints ``σ(z)``."""
        return Apply(op, a) if is_matrix(a) else ScalarApply(op, a)

    is_matrix = staticmethod(is_matrix)
    ones_coeff = staticmethod(_ones_coeff)

    def _op(self, op: str, args: list, shapes: list[Shape], out: Shape) -> sp.Basic:
        """The op's matrix form, from its entry in the op table (``OpSpec.matrix``)."""
        return OPS[op].matrix(self, args, shapes, out)


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
    from .printing.text import to_text

    return to_text(expr, rank)


def _latex(expr: sp.Basic, rank: dict[str, int] | None = None) -> str:
    from .printing.latex import to_latex

    return to_latex(expr, rank)


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


# ============================================================================= one derivative

SMALL = 12  # an adjoint whose expression has at most this many tree nodes is inlined wherever used
LARGE = 80  # one that has more stays a shared definition even if used once: no deep nesting, so
# deriving and printing a 10,000-node chain stays linear and within the recursion limit


def _size(e: sp.Basic) -> int:
    return sum(1 for _ in sp.preorder_traversal(e))


def _count(e: sp.Basic, syms: set) -> dict[sp.Basic, int]:
    out: dict[sp.Basic, int] = {}
    for a in sp.preorder_traversal(e):
        if a in syms:
            out[a] = out.get(a, 0) + 1
    return out


def _inline(target: sp.Basic, defs: list[tuple[sp.Basic, sp.Basic]], force: bool = False
            ) -> tuple[sp.Basic, list[tuple[sp.Basic, sp.Basic]]]:
    """Substitute definitions (given dependencies first) into ``target``.

    A definition is inlined when it is small, or used once and not large; the others stay as
    shared sub-expressions (``where`` clauses), so the result grows linearly with the graph and
    never nests deeper than a bounded amount.
    """
    rhs = dict(defs)
    syms = set(rhs)
    # which definitions the target needs, and how often each symbol is used
    need: set[sp.Basic] = set()
    todo = [target]
    uses: dict[sp.Basic, int] = {}
    seen_expr: set[int] = set()
    while todo:
        e = todo.pop()
        if id(e) in seen_expr:
            continue
        seen_expr.add(id(e))
        for s, k in _count(e, syms).items():
            uses[s] = uses.get(s, 0) + k
            if s not in need:
                need.add(s)
                todo.append(rhs[s])
    resolved: dict[sp.Basic, sp.Basic] = {}
    kept: list[tuple[sp.Basic, sp.Basic]] = []
    inline: dict[sp.Basic, sp.Basic] = {}
    for s, _ in defs:
        if s not in need:
            continue
        e = rhs[s].xreplace(inline).doit() if inline else rhs[s]
        resolved[s] = e
        size = _size(e)
        if force or size <= SMALL or (uses.get(s, 0) <= 1 and size <= LARGE):
            inline[s] = e
        else:
            kept.append((s, e))
    body = target.xreplace(inline).doit() if inline else target
    return body, kept


def _fmt_name(graph: Graph, n: str, latex: bool) -> str:
    from .naming import latex_name, pretty

    return latex_name(n) if latex else pretty(n)


@dataclass
class Derivative:
    """∂of/∂wrt as one matrix expression ``body`` (plus shared sub-expressions ``where``).

    ``expr`` is the single SymPy expression (``where`` substituted); ``evaluate(inputs)``
    computes it numerically from the SymPy expression itself.
    """

    graph: Graph
    of: str
    wrt: str
    body: sp.Basic
    where: list[tuple[sp.Basic, sp.Basic]] = field(default_factory=list)
    jacobian: bool = False
    expand: bool = False

    @property
    def expr(self) -> sp.Basic:
        """The derivative as one SymPy expression (shared sub-expressions substituted)."""
        e = self.body
        for s, d in reversed(self.where):
            e = e.xreplace({s: d})
        return e.doit() if self.where else e

    def _lhs(self, latex: bool) -> str:
        of, wrt = _fmt_name(self.graph, self.of, latex), _fmt_name(self.graph, self.wrt, latex)
        return f"\\frac{{\\partial {of}}}{{\\partial {wrt}}}" if latex else f"∂{of}/∂{wrt}"

    def __str__(self) -> str:
        text = f"{self._lhs(False)} = {_text(self.body)}"
        rank = model_rank(self.graph) if self.expand else None
        if self.where:
            text += "\n  where " + "\n        ".join(f"{_text(s)} = {_text(d, rank)}" for s, d in self.where)
        return text

    def latex(self) -> str:
        """The derivative in LaTeX (with ``\\text{where}`` lines for shared sub-expressions)."""
        text = f"{self._lhs(True)} = {_latex(self.body)}"
        rank = model_rank(self.graph) if self.expand else None
        for i, (s, d) in enumerate(self.where):
            text += (r",\quad \text{where } " if i == 0 else r",\ ") + f"{_latex(s)} = {_latex(d, rank)}"
        return text

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    def evaluate(self, inputs: Mapping[str, Any], sizes: Mapping[str, int] | None = None) -> np.ndarray:
        """The derivative's value at ``inputs``, computed from the SymPy expression (lambdify).

        The result has ``wrt``'s shape (``(N,)`` for a vector); a Jacobian is ``(M, N)``.
        """
        from .evaluate import prepare

        feed = prepare(self.graph, inputs, None, sizes, np.float64)
        if feed.batch is not None:
            raise DerivationError("Derivative.evaluate takes one sample, not a batch",
                                  hint="feed inputs without the leading batch axis")
        env: dict[sp.Basic, Any] = {}
        for n, v in feed.values.items():
            env[var_symbol(n, self.graph.shape(n))] = float(v[0, 0]) if is_scalar(self.graph.shape(n)) else v
        for n, v in feed.sizes.items():
            env[size_symbol(n)] = int(v)
        conv = sweep(self.graph, self.of).converter
        assert conv is not None
        for n in self.graph.named_nodes():  # named intermediates, from their SymPy definitions
            if self.graph.op(n) not in LEAF_OPS:
                conv(n)
                env[conv.memo[n]] = _lambdify_eval(conv.definition(n), env)
        for s, d in self.where:
            env[s] = _lambdify_eval(d, env)
        out = np.asarray(_lambdify_eval(self.body, env), dtype=np.float64)
        if self.jacobian:
            r, c = (int(sp.sympify(d).subs({size_symbol(k): v for k, v in feed.sizes.items()}))
                    for d in self.body.shape)
            J = np.broadcast_to(out, (r, c)).copy()
            return J[:, 0] if is_scalar(self.graph.shape(self.wrt)) else J
        shape = normalize(self.graph.shape(self.wrt))
        r, c = matrix_form(shape)
        rc = tuple(feed.sizes.get(d, d) if isinstance(d, str) else d for d in (r, c))
        full = np.broadcast_to(out, rc).copy()
        if len(shape) == 0:
            return full[0, 0]
        if len(shape) == 1:
            return full[:, 0]
        return full


def derivative(graph: Graph, of: str, wrt: str, expand: bool = False, *, prime: str = "symbol"
               ) -> Derivative:
    """∂of/∂wrt as one matrix expression; for a vector ``of``, the Jacobian.

    ``expand=True`` writes it in inputs, params and consts alone (named intermediates used more
    than once, and large, stay shared in ``where`` clauses).

    >>> import graphgrad as gg
    >>> g = gg.parse("input x[N]\\nconst v[N]\\nf = v @ v.T @ x")
    >>> print(derivative(g, "f", "x"))
    ∂f/∂x = v vᵀ
    """
    if of not in graph:
        check_of(graph, of, scalar=False)
    if wrt not in graph:
        raise NamingError(f"wrt {wrt!r} is not defined", node=str(wrt),
                         hint="wrt must name a variable: " + ", ".join(graph.named_nodes()))
    if not graph.is_named(wrt) or graph.op(wrt) in ("literal", "size"):
        raise DerivationError(f"cannot differentiate with respect to {graph.describe(wrt)}", node=wrt,
                              hint="wrt must be an input, param, const or named intermediate")
    sw = sweep(graph, of)
    conv = sw.converter
    assert conv is not None
    jac = sw.cotangent
    if jac and len(normalize(graph.shape(wrt))) == 2 and matrix_form(graph.shape(wrt))[1] != 1:
        raise DerivationError(f"the Jacobian of vector {of!r} with respect to matrix {wrt!r} is a 3-tensor",
                              node=wrt, hint="take a scalar of it, or use graphgrad.vjp")
    if wrt not in sw.total:
        R, C = dims(graph.shape(wrt))
        zero = sp.Integer(0) if is_scalar(graph.shape(wrt)) else ZeroMatrix(R, C)
        if jac:
            zero = ZeroMatrix(dims(graph.shape(of))[0], R)
        return Derivative(graph, of, wrt, zero, jacobian=jac, expand=expand)
    defs: list[tuple[sp.Basic, sp.Basic]] = []
    if expand:
        for n in graph.named_nodes():
            if graph.op(n) not in LEAF_OPS:
                conv(n)
                defs.append((conv.memo[n], conv.definition(n)))
    named = [n for n in sw.order if graph.is_named(n) and graph.op(n) != "size" and n in sw.total]
    for v in named:
        if jac and v == of:
            continue
        defs.append((adjoint_symbol(graph, v), conv(sw.total[v])))
    if wrt == of and not jac:
        target: sp.Basic = sp.Integer(1)
    else:
        target = adjoint_symbol(graph, wrt)
    body, where = _inline(target, defs, force=jac)
    if jac:
        fbar = adjoint_symbol(graph, of)
        body = Transpose(_linear_map(body, fbar)).doit() if body != fbar else Identity(fbar.shape[0])
        body = _tidy(body)
    body = factor_scalars(_present(body, graph, prime, conv))
    where = [(s, factor_scalars(_present(d, graph, prime, conv))) for s, d in where]
    return Derivative(graph, of, wrt, body, where, jacobian=jac, expand=expand)


def _tidy(e: sp.Basic) -> sp.Basic:
    return e.doit() if is_matrix(e) else e


def _split_coeff(t: sp.Basic) -> tuple[sp.Expr, list]:
    if isinstance(t, MatMul):
        c, mats = t.as_coeff_matrices()
        return c, list(mats)
    return sp.Integer(1), [t]


def _common(coeffs: list[sp.Expr]) -> sp.Expr:
    """The scalar factor shared by all coefficients (numeric content and identical symbolic part)."""
    nums, rests = zip(*(c.as_coeff_Mul() for c in coeffs))
    rest = rests[0] if all(r == rests[0] for r in rests) else sp.Integer(1)
    num = sp.Integer(1)
    if all(n.is_Rational for n in nums):
        num = abs(sp.gcd_list([sp.Rational(n) for n in nums])) or sp.Integer(1)
        if all(n < 0 for n in nums):
            num = -num
    return num * rest


def factor_scalars(e: sp.Basic) -> sp.Basic:
    """Undo SymPy's distribution of scalars over sums: 2 X w − 2 t -> 2 (X w − t), and flatten
    the coefficients of nested products into one ((2/n) Xᵀ(X w − t))."""
    if not isinstance(e, sp.Basic) or not e.args or isinstance(e, (MatrixSymbol, sp.Symbol)):
        return e
    memo: dict[sp.Basic, sp.Basic] = {}
    for node in sp.postorder_traversal(e):
        if node in memo or not isinstance(node, sp.Basic):
            continue
        if not node.args or isinstance(node, (MatrixSymbol, sp.Symbol, Str, OneMatrix, Identity)):
            memo[node] = node
            continue
        args = [memo.get(a, a) for a in node.args]
        if isinstance(node, MatAdd):
            parts = [_split_coeff(a) for a in args]
            common = _common([c for c, _ in parts])
            terms = []
            for c, mats in parts:
                cc = c / common
                body = mats[0] if len(mats) == 1 else MatMul(*mats)
                terms.append(body if cc == 1 else MatMul(cc, *mats))
            inner = MatAdd(*terms)
            memo[node] = inner if common == 1 else MatMul(common, inner)
        elif isinstance(node, MatMul):
            coeff, mats = sp.Integer(1), []
            for a in args:
                if isinstance(a, MatMul):
                    c, ms = _split_coeff(a)
                    coeff, mats = coeff * c, mats + ms
                elif isinstance(a, MatrixExpr):
                    mats.append(a)
                else:
                    coeff = coeff * a
            memo[node] = MatMul(*([coeff] if coeff != 1 else []), *mats) if (coeff != 1 or len(mats) > 1) \
                else mats[0]
        elif isinstance(node, HadamardProduct):
            memo[node] = hadamard(*args)  # (c 𝟙) ⊙ u = c u, scalars out front
        elif isinstance(node, HadamardPower) and isinstance(args[0], HadamardPower):
            memo[node] = HadamardPower(args[0].base, args[0].exp * args[1])  # (a∘⁻¹)∘² = a∘⁻²
        else:
            memo[node] = node.func(*args) if args != list(node.args) else node
    return memo[e]


def _linear_map(e: sp.Basic, f: MatrixSymbol) -> MatrixExpr:
    """The matrix A with ``e = A f`` for an expression ``e`` linear in the vector ``f``."""
    fail = DerivationError("cannot write this Jacobian as a matrix expression",
                           hint="use graphgrad.jacobian for its numbers")
    if e == f:
        return Identity(f.shape[0])
    if not e.has(f):
        raise fail
    if isinstance(e, (MatAdd, sp.Add)):
        return MatAdd(*(_linear_map(t, f) for t in e.args)).doit()
    if isinstance(e, Inner):
        return _linear_map(e.args[0], f)
    if isinstance(e, Total) and e.args[0].shape[1] == 1:
        u = e.args[0]  # sum(d ⊙ X) = dᵀ X, sum(X) = 𝟙ᵀ X
        if isinstance(u, HadamardProduct):
            others = [a for a in u.args if not a.has(f)]
            inner = [a for a in u.args if a.has(f)]
            if len(inner) == 1:
                d = others[0] if len(others) == 1 else HadamardProduct(*others)
                return MatMul(d.T, _linear_map(inner[0], f)).doit()
        return MatMul(OneMatrix(1, u.shape[0]), _linear_map(u, f)).doit()
    if isinstance(e, sp.Mul):
        inner = [a for a in e.args if a.has(f)]
        if len(inner) != 1:
            raise fail
        rest = sp.Mul(*(a for a in e.args if not a.has(f)))
        return (rest * _linear_map(inner[0], f)).doit()
    if isinstance(e, MatMul):
        coeff, mats = e.as_coeff_matrices()
        idx = [i for i, m in enumerate(mats) if m.has(f)]
        if coeff.has(f) or len(idx) != 1:
            raise fail
        k = idx[0]
        if k < len(mats) - 1:
            if e.shape == (1, 1):
                return _linear_map(Transpose(e).doit(), f)
            raise fail
        left = mats[:k]
        inner = _linear_map(mats[k], f)
        return MatMul(coeff, *left, inner).doit() if left or coeff != 1 else inner
    if isinstance(e, HadamardProduct):
        inner = [a for a in e.args if a.has(f)]
        if len(inner) != 1 or inner[0].shape[1] != 1:
            raise fail
        others = [a for a in e.args if not a.has(f)]
        d = others[0] if len(others) == 1 else HadamardProduct(*others)
        return MatMul(Diag(d), _linear_map(inner[0], f)).doit()
    raise fail


# ============================================================================= numbers from SymPy


def _elementwise_kernel(op: str) -> Callable[[np.ndarray], np.ndarray]:
    """The op's SymPy scalar formula, lambdified for NumPy (the evaluator's kernel is not used)."""
    t = sp.Symbol("t", real=True)
    f = sp.lambdify(t, OPS[op].sympy(t), "numpy")

    def k(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(f(x), dtype=np.float64) * np.ones_like(x, dtype=np.float64)

    return k


_KERNELS: dict[str, Callable] = {}


def _namespace() -> dict[str, Any]:
    ns: dict[str, Any] = {"_gg_diag": lambda d: np.diagflat(d)}
    for name, spec in OPS.items():
        if spec.elementwise and spec.arity == 1:
            if name not in _KERNELS:
                _KERNELS[name] = _elementwise_kernel(name)
            ns[f"_gg_{name}"] = _KERNELS[name]
    return ns


def _lambdify_eval(expr: sp.Basic, env: Mapping[sp.Basic, Any]) -> Any:
    """Compute ``expr`` with NumPy at the values in ``env`` (symbol -> value)."""
    from sympy.printing.numpy import NumPyPrinter

    class Printer(NumPyPrinter):
        def _print_MatMul(self, e: MatMul) -> str:
            coeff, mats = e.as_coeff_matrices()
            body = " @ ".join(f"({self._print(m)})" for m in mats)
            return f"(({self._print(coeff)}) * ({body}))" if coeff != 1 else f"({body})"

        def _print_MatAdd(self, e: MatAdd) -> str:
            return "(" + " + ".join(f"({self._print(a)})" for a in e.args) + ")"

        def _print_Transpose(self, e: Transpose) -> str:
            return f"numpy.swapaxes({self._print(e.arg)}, -1, -2)"

        def _print_HadamardProduct(self, e: HadamardProduct) -> str:
            return "(" + " * ".join(f"({self._print(a)})" for a in e.args) + ")"

        def _print_HadamardPower(self, e: HadamardPower) -> str:
            return f"(({self._print(e.base)}) ** ({self._print(e.exp)}))"

        def _print_Apply(self, e: Apply) -> str:
            return f"_gg_{e.op}({self._print(e.arg)})"

        _print_ScalarApply = _print_Apply  # noqa: N815 - SymPy dispatches on the class name

        def _print_Norm(self, e: Norm) -> str:
            return f"numpy.sqrt(numpy.sum(({self._print(e.args[0])}) ** 2))"

        def _print_Inner(self, e: Inner) -> str:
            return f"({self._print(e.args[0])})[0, 0]"

        def _print_Total(self, e: Total) -> str:
            return f"numpy.sum({self._print(e.args[0])})"

        def _print_OneMatrix(self, e: OneMatrix) -> str:
            return f"numpy.ones(({self._print(e.shape[0])}, {self._print(e.shape[1])}))"

        def _print_ZeroMatrix(self, e: ZeroMatrix) -> str:
            return f"numpy.zeros(({self._print(e.shape[0])}, {self._print(e.shape[1])}))"

        def _print_Identity(self, e: Identity) -> str:
            return f"numpy.eye({self._print(e.shape[0])})"

        def _print_Diag(self, e: Diag) -> str:
            return f"_gg_diag({self._print(e.args[0])})"

    free = sorted((s for s in _atoms(expr) if s in env), key=str)
    plain: dict[sp.Basic, sp.Basic] = {}
    for i, s in enumerate(free):
        plain[s] = MatrixSymbol(f"v{i}", *s.shape) if is_matrix(s) else sp.Symbol(f"v{i}")
    e = expr.xreplace(plain) if plain else expr
    f = sp.lambdify([plain[s] for s in free], e, modules=[_namespace(), "numpy"], printer=Printer)
    with np.errstate(all="ignore"):
        return f(*(env[s] for s in free))


def _atoms(expr: sp.Basic) -> set[sp.Basic]:
    """The symbols and matrix symbols in ``expr`` (iteratively: one walk, no recursion)."""
    out: set[sp.Basic] = set()
    stack = [expr]
    seen: set[int] = set()
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (sp.Symbol, MatrixSymbol)):
            out.add(e)
        else:
            stack.extend(a for a in e.args if isinstance(a, sp.Basic))
    return out


def evaluate_expr(expr: sp.Basic, values: Mapping[str, Any], graph: Graph) -> Any:
    """Compute a SymPy expression over a graph's variables at ``values`` (name -> matrix form)."""
    env: dict[sp.Basic, Any] = {}
    for n, v in values.items():
        env[var_symbol(n, graph.shape(n))] = v
    return _lambdify_eval(expr, env)


__all__ = ["backprop", "derivative", "AdjointEquation", "Equations", "Derivative", "Apply",
           "ScalarApply", "Norm", "Inner", "Total", "Diag", "AdjointSymbol", "AdjointMatrix",
           "Converter", "Sweep", "sweep", "var_symbol", "size_symbol", "factor_scalars"]
