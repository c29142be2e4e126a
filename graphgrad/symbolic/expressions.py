"""The SymPy side of the symbolic back end: graphgrad's own SymPy classes and the IR -> SymPy converter.

The classes print the way a lecturer writes: :class:`Apply` / :class:`ScalarApply` for element-wise
ops (``σ(z)``, ``σ′(z)``), :class:`Norm` (``‖u‖``), :class:`Inner` (a 1 x 1 product used as a
scalar), :class:`Total` (``sum(u)``), :class:`Diag` (``diag(d)``) and the adjoint symbols
:class:`AdjointSymbol` / :class:`AdjointMatrix` (``h̄``, ``W̄₁``). :func:`var_symbol` gives a
variable's symbol (``Symbol`` for scalars, ``MatrixSymbol`` otherwise), :func:`size_symbol` a size
name's. :class:`Converter` turns IR nodes into SymPy matrix expressions through each op's
``matrix`` entry in the op table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy as sp
from sympy import (
    HadamardPower,
    HadamardProduct,
    MatAdd,
    MatMul,
    MatrixExpr,
    MatrixSymbol,
    OneMatrix,
    Transpose,
)
from sympy.core.symbol import Str

from ..errors import DerivationError
from ..graph import LEAF_OPS, Graph
from ..ops import OPS
from ..shapes import Shape, is_scalar, matrix_form, normalize

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
