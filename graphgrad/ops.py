"""The op table: the single source of truth for every op graphgrad knows.

Each op is one :class:`OpSpec` entry declaring its arity, shape rule, NumPy kernel, SymPy form,
local derivative (VJP) rule and notation. The evaluator, the reverse pass, the printers, the
renderer, the compiler and the tests all read this table; adding an op means adding one entry.

Conventions
-----------
* Values inside graphgrad are NumPy arrays in *matrix form*: the last two axes are the maths
  (a scalar is 1 x 1, a vector ``[N]`` is N x 1); any axes before them are batch axes. Kernels
  therefore reduce over ``axis=(-2, -1)`` and transpose with ``swapaxes(-1, -2)``.
* ``sympy``: for an element-wise op, its scalar formula (``lambda t: 1 / (1 + exp(-t))``); for a
  structural op, its definition on explicit ``sympy.Matrix`` operands.
* ``vjp(b, out, g, *args)``: the local derivative rule. ``g`` is the adjoint of the op's output,
  ``out`` the output node, ``args`` the operand nodes; it returns one adjoint *contribution* per
  operand (``None`` where there is none), built with the emitter ``b`` out of ops of this same
  table -- so the backward pass is a graph on the same IR, which every back end can read.
* ``matrix(c, args, shapes, out)``: the op as a SymPy *matrix expression* (``W x``, ``σ(z)``,
  ``h ⊙ r``) for the symbolic back end. ``c`` is the converter
  (:class:`graphgrad.symbolic.Converter`), ``args`` the operands' expressions (``MatrixExpr`` for
  vectors and matrices, scalar ``Expr`` for scalars), ``shapes`` their shapes and ``out`` the
  output's; it builds the expression with ``c``'s helpers (``c.add``, ``c.hadamard``,
  ``c.matmul``, ``c.bcast``, ``c.total``, ...). Element-wise unary ops get the default
  ``c.apply(name, x)`` (printed ``σ(z)``).
* ``code(e, args, node)``: the op as a NumPy *expression string* for the compiler
  (:mod:`graphgrad.compiler.lowering`). ``args`` are the operands' spellings (already aligned to the
  output's axes for element-wise ops), ``node`` the IR node (``node.op``, ``node.shape``) and ``e``
  the lowering's view of this application (:class:`graphgrad.compiler.lowering.Site`): the operands'
  storage forms ``e.forms`` (``S`` scalar, ``V`` column, ``R`` row, ``M`` matrix) and batch flags
  ``e.batched_args``, the output's ``e.form``/``e.batched``, ``e.axes(i)`` (operand i's maths axes
  as an ``axis=`` argument), ``e.T(i)`` (operand i transposed), ``e.aligned(i)``, ``e.helper(name,
  source)`` (a NumPy-only helper function the generated code calls) and ``e.view()`` (the result
  shares memory with an operand). When ``e.out`` is an operand's position, the code writes the
  result into that operand's dead buffer (``np.tanh(a, out=a)`` or ``a += b``), or is ``None``
  when the op has no such form. Element-wise unary ops whose kernel is a NumPy ufunc get the
  default ``np.<ufunc>(a)``; an op with no ``code`` at all is compiled as a call of its ``numpy``
  kernel (in-process only: ``graphgrad codegen`` modules must not import graphgrad).
* ``deriv(b, out, x)`` (element-wise unary ops only): f'(x) as a node. When omitted it is derived
  by SymPy from ``sympy`` (``sympy.diff``) and turned back into ops; the VJP is then ``g * f'(x)``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import sympy as sp

from .errors import ShapeError
from .shapes import (
    Shape,
    broadcast,
    fmt,
    is_scalar,
    is_vector,
    matmul_shape,
    matrix_form,
    normalize,
    same,
    transpose_shape,
)

REDUCE = (-2, -1)


@dataclass(frozen=True)
class Render:
    """How an op is drawn: ``symbol``/``latex`` are its Unicode and LaTeX spellings, ``shape`` and
    ``color`` its Graphviz node in the ops view."""

    symbol: str
    latex: str
    shape: str = "ellipse"  # Graphviz node shape in the op view
    color: str = "#e8e8e8"


@dataclass(frozen=True)
class OpSpec:
    """Everything graphgrad knows about one op."""

    name: str
    arity: int
    shape: Callable[..., Shape]
    numpy: Callable[..., np.ndarray]
    sympy: Callable[..., Any]
    vjp: Callable[..., tuple] | None = None
    matrix: Callable[..., Any] | None = None  # (c, args, shapes, out) -> SymPy matrix expression
    code: Callable[..., str | None] | None = None  # (e, args, node) -> NumPy expression text
    elementwise: bool = False
    deriv: Callable[..., Any] | None = None
    domain: tuple[float, float] = (-2.0, 2.0)
    kinks: tuple[float, ...] = ()
    const_args: tuple[int, ...] = ()  # operands that must be numeric literals (pow's exponent)
    public: bool = True  # callable by name from model text and the builder
    render: Render = field(default_factory=lambda: Render("?", "?"))
    doc: str = ""
    # (f, g): op(x) = g(f(x)) element-wise, g a function of one SymPy scalar. The compiler then
    # computes op(x) from f's forward value (σ′(z) = h ⊙ (1 − h) with the model's h = σ(z)), and
    # the printers write it that way when asked (derive --prime sigmoid|output).
    of_output: tuple[str, Callable[[Any], Any]] | None = None
    # FLOPs from the operands' matrix forms [(rows, cols), ...] (SymPy dims; graphgrad.costs);
    # None: one per output element. ``view``: NumPy computes it as a view (no FLOPs, no memory).
    flops: Callable[[list[tuple[Any, Any]]], Any] | None = None
    view: bool = False
    # facts the back ends read instead of switching on op names:
    linear: tuple[int, ...] = ()  # operands it is linear in, the others held fixed (x ⊙ y: both)
    jointly_linear: bool = False  # linear in all of ``linear`` at once (x + y), not only in each (x ⊙ y)
    shape_only: tuple[int, ...] = ()  # operands read for their shape alone (sum_to's ``like``)
    commutative: bool = False  # op(a, b) = op(b, a): drawn unordered, updated in place into either operand
    zero_derivative: bool = False  # derivative 0 wherever it exists (relu′): passes no adjoint on
    nonfinite: str = ""  # the likely cause when it makes inf or nan from finite operands

    def explicit(self, *mats: sp.Matrix) -> sp.Matrix:
        """The op applied to explicit SymPy matrices (element-wise ops broadcast their formula)."""
        if not self.elementwise:
            return self.sympy(*mats)
        rows = max(m.rows for m in mats)
        cols = max(m.cols for m in mats)
        return sp.Matrix(
            rows,
            cols,
            lambda i, j: self.sympy(
                *(m[i if m.rows > 1 else 0, j if m.cols > 1 else 0] for m in mats)
            ),
        )


# ----------------------------------------------------------------------------- shape rules


def same_shape(a: Shape) -> Shape:
    """Shape of an element-wise unary op: its operand's."""
    return normalize(a)


def broadcast_shape(a: Shape, b: Shape) -> Shape:
    """Shape of an element-wise binary op, by NumPy broadcasting on matrix forms.

    >>> broadcast_shape(("K",), ())
    ('K',)
    """
    out = broadcast(a, b)
    if out is None:
        raise ShapeError(
            f"shapes {fmt(a)} and {fmt(b)} do not broadcast",
            hint="element-wise ops need equal shapes, a scalar, or a [K] column against [K, B]",
        )
    return out


def matmul_rule(a: Shape, b: Shape) -> Shape:
    """Shape of ``a @ b``; on a mismatch, suggests the transpose that would fit.

    >>> matmul_rule(("K", "N"), ("N",))
    ('K',)
    """
    out = matmul_shape(a, b)
    if out is not None:
        return out
    ra, ca = matrix_form(a)
    rb, cb = matrix_form(b)
    hint = None
    if matmul_shape(transpose_shape(a), b) is not None:
        hint = "did you mean to transpose the left operand (A.T @ B)?"
    elif matmul_shape(a, transpose_shape(b)) is not None:
        hint = "did you mean to transpose the right operand (A @ B.T)?"
    else:
        hint = "the left operand's columns must equal the right operand's rows"
    raise ShapeError(
        f"matmul of {fmt(a)} ({ra}x{ca}) and {fmt(b)} ({rb}x{cb}): inner dims {ca} and {rb} differ",
        hint=hint,
    )


def scalar_shape(a: Shape) -> Shape:
    """Shape of a full reduction: a scalar."""
    return ()


def dot_shape(a: Shape, b: Shape) -> Shape:
    """Shape of ``dot(a, b)`` = aᵀb for two vectors of one length."""
    if not (is_vector(a) or is_scalar(a)) or not (is_vector(b) or is_scalar(b)) or not same(a, b):
        raise ShapeError(
            f"dot takes two vectors of the same length, got {fmt(a)} and {fmt(b)}",
            hint="for matrices use sum(A * B); for a matrix-vector product use @",
        )
    return ()


def pow_shape(x: Shape, p: Shape) -> Shape:
    """Shape of ``x ** p`` (p a scalar constant)."""
    if not is_scalar(p):
        raise ShapeError(f"the exponent must be a scalar constant, got {fmt(p)}")
    return normalize(x)


def sum_to_shape(g: Shape, like: Shape) -> Shape:
    """Shape of ``sum_to(g, like)``: like's (g must broadcast from it)."""
    if broadcast(g, like) is None:
        raise ShapeError(f"cannot reduce {fmt(g)} to {fmt(like)}")
    return normalize(like)


# ----------------------------------------------------------------------------- NumPy kernels


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic sigmoid, stable for large |x|."""
    return np.exp(-np.logaddexp(0.0, -x)).astype(x.dtype, copy=False)


def np_dsigmoid(x: np.ndarray) -> np.ndarray:
    """σ'(x) = σ(x)(1 − σ(x)) = σ(x) σ(−x): the second form keeps its digits where σ(x) rounds to 1."""
    return np_sigmoid(x) * np_sigmoid(-x)


def np_norm(x: np.ndarray) -> np.ndarray:
    """Euclidean (Frobenius) norm over the two maths axes, kept as a 1 x 1."""
    return np.sqrt(np.add.reduce(x * x, axis=REDUCE, keepdims=True))


def np_unit(x: np.ndarray) -> np.ndarray:
    """x / ‖x‖, with the subgradient 0 at x = 0."""
    n = np_norm(x)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def np_sum_to(g: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Sum ``g`` over the maths axes that ``like`` has as 1 (undoing broadcasting).

    Batch axes are kept: every adjoint value is per sample (one without a batch axis is the same
    for every sample); :func:`graphgrad.grad` sums over the batch once, at the end.
    """
    axes = tuple(ax for ax in (-2, -1) if like.shape[ax] == 1 and g.shape[ax] != 1)
    out = g.sum(axis=axes, keepdims=True) if axes else g
    if out.shape[-2:] != like.shape[-2:]:
        out = np.broadcast_to(out, out.shape[:-2] + like.shape[-2:])
    return out


def np_expand(g: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Broadcast ``g`` up to ``like``'s maths shape (batch axes of ``g`` kept)."""
    return np.broadcast_to(g, np.broadcast_shapes(g.shape, like.shape[-2:]))


def np_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """aᵀb over the maths axes, kept as a 1 x 1."""
    return np.sum(a * b, axis=REDUCE, keepdims=True)


# ----------------------------------------------------------------------------- SymPy forms


def sym_sigmoid(t: sp.Expr) -> sp.Expr:
    """σ(t) = 1 / (1 + e^(−t))."""
    return 1 / (1 + sp.exp(-t))


def _sym_sum_to(g: sp.Matrix, like: sp.Matrix) -> sp.Matrix:
    rows = g * sp.ones(g.cols, 1) if like.cols == 1 and g.cols != 1 else g
    return sp.ones(1, rows.rows) * rows if like.rows == 1 and rows.rows != 1 else rows


def _sym_norm(x: sp.Matrix) -> sp.Matrix:
    return sp.Matrix([[sp.sqrt(sum(e**2 for e in x))]])


# ----------------------------------------------------------------------------- SymPy matrix forms
# c is the converter (graphgrad.symbolic.Converter): c.add/c.mul/c.neg/c.power/c.matmul/
# c.transpose/c.hadamard build expressions (folded or not, as it is set), c.bcast/c.reduce
# broadcast and reduce with ones vectors, c.total/c.norm/c.inner/c.apply make the scalar and
# element-wise forms, c.is_matrix/c.ones_coeff inspect an expression.


def matrix_add(c, args, shapes, out):
    # broadcast operands with ones vectors: b + c 𝟙
    return c.add(*(c.bcast(x, s, out) for x, s in zip(args, shapes)))


def matrix_sub(c, args, shapes, out):
    a, b = (c.bcast(x, s, out) for x, s in zip(args, shapes))
    return c.add(a, c.neg(b))


def matrix_mul(c, args, shapes, out):
    # a scalar scales; (k 𝟙) ⊙ y = k y; else the Hadamard product of the broadcast operands
    a, b = args
    if not c.is_matrix(a) or not c.is_matrix(b):
        return c.mul(a, b)
    for x, y in ((a, b), (b, a)):
        k = c.ones_coeff(x)
        if k is not None and x.shape == y.shape:
            return c.mul(k, y)
    return c.hadamard(*(c.bcast(x, s, out) for x, s in zip(args, shapes)))


def matrix_div(c, args, shapes, out):
    # a / b = a b⁻¹ for a scalar b, else a ⊙ b^∘⁻¹
    a, b = args
    if not c.is_matrix(b):
        return c.mul(a, c.power(b, -1))
    inv = c.power(c.bcast(b, shapes[1], out), -1)
    if not c.is_matrix(a):
        return c.mul(a, inv)
    return c.hadamard(c.bcast(a, shapes[0], out), inv)


def matrix_pow(c, args, shapes, out):
    a, p = args
    return a if p == 1 else c.power(a, p)


def matrix_matmul(c, args, shapes, out):
    # a 1 x 1 product (xᵀ y) is used as the scalar it is
    a, b = args
    if not c.is_matrix(a) or not c.is_matrix(b):
        return c.mul(a, b)
    prod = c.matmul(a, b)
    return c.inner(prod) if is_scalar(out) else prod


def matrix_norm(c, args, shapes, out):
    a = args[0]
    return c.norm(a) if c.is_matrix(a) else sp.Abs(a)


def matrix_unit(c, args, shapes, out):
    # u / ‖u‖; sign(a) for a scalar
    a = args[0]
    return c.mul(c.power(c.norm(a), -1), a) if c.is_matrix(a) else sp.sign(a)


def matrix_dot(c, args, shapes, out):
    a, b = args
    if not c.is_matrix(a) or not c.is_matrix(b):
        return c.mul(a, b)
    return c.inner(c.matmul(c.transpose(a), b, fold=False))


def matrix_sum(c, args, shapes, out):
    a = args[0]
    return c.total(a) if c.is_matrix(a) else a


def matrix_mean(c, args, shapes, out):
    a = args[0]
    if not c.is_matrix(a):
        return a
    R, C = a.shape  # noqa: N806 - the maths names
    return c.mul(c.total(a), (R * C) ** -1)


def matrix_sum_to(c, args, shapes, out):
    # 𝟙ᵀ g sums the rows away, g 𝟙 the columns
    g = args[0]
    if not c.is_matrix(g):
        return c.bcast(g, (), out)
    if is_scalar(out):
        return c.total(g)
    return c.reduce(g, out if is_scalar(shapes[0]) else shapes[0], out)


def matrix_expand(c, args, shapes, out):
    return c.bcast(args[0], shapes[0], out)


def matrix_elementwise(name: str, c, args, shapes, out):
    """Matrix form of element-wise unary op ``name`` (the default): ``name(x)``, printed ``σ(z)``."""
    return c.apply(name, args[0])


# ----------------------------------------------------------------------------- NumPy code
# e is the lowering's view of one application (graphgrad.compiler.lowering.Site): e.forms/e.batched_args
# (the operands' storage forms S/V/R/M and batch flags), e.form/e.batched (the output's), e.axes(i)
# (an operand's maths axes as an axis= argument), e.T(i), e.aligned(i), e.helper(name, source),
# e.view(), and e.out (None, or the position of the operand whose dead buffer takes the result).

SIGMOID_HELPER = '''def _sigmoid(t, out=None):
    """σ(t) = 1 / (1 + exp(−t)), in one buffer, exact over the whole float range: where exp(−t)
    would overflow (t < −709 in float64, −88 in float32), σ(t) = exp(t) to the last bit."""
    if np.ndim(t) == 0:
        return np.exp(-np.logaddexp(0.0, -t))
    cap = {2: 11.0, 4: 88.0}.get(t.dtype.itemsize, 709.0)
    low = t < -cap
    tail = np.exp(t[low]) if low.any() else None
    e = np.negative(t, out=out)
    np.minimum(e, cap, out=e)
    np.exp(e, out=e)
    e += 1.0
    np.reciprocal(e, out=e)
    if tail is not None:
        e[low] = tail
    return e
'''

UNIT_HELPER = '''def _unit(a, axis):
    """a / ‖a‖ over axis (0 where ‖a‖ = 0)."""
    n = np.sqrt(np.sum(a * a, axis=axis, keepdims=True))
    return np.divide(a, n, out=np.zeros_like(a), where=n > 0)
'''


def infix(symbol: str, ufunc: str | None) -> Callable[..., str | None]:
    """Code of an element-wise binary op written ``a <symbol> b``; in place ``a <symbol>= b`` (or
    ``ufunc(a, b, out=b)`` into the right operand of a non-commutative op); ``ufunc=None``: never
    in place.

    >>> class E: out = None
    >>> infix("-", "np.subtract")(E(), ["x", "y"], None)
    'x - y'
    """

    def code(e, args, node):
        a, b = args
        if e.out is None:
            return f"{a} {symbol} {b}"
        if ufunc is None:
            return None
        if e.out == 0 or e.commutative:
            return f"{args[e.out]} {symbol}= {args[1 - e.out]}"
        return f"{ufunc}({a}, {b}, out={b})"

    return code


def call(template: str, out: str | None = None) -> Callable[..., str | None]:
    """Code of an element-wise unary op from a template in ``{a}`` (and, writing into the operand's
    buffer, ``out``; None: no such form).

    >>> class E: out = None
    >>> call("np.maximum({a}, 0.0)")(E(), ["z"], None)
    'np.maximum(z, 0.0)'
    """

    def code(e, args, node):
        t = template if e.out is None else out
        return None if t is None else t.format(a=args[0])

    return code


def ufunc_code(name: str) -> Callable[..., str | None]:
    """Code of an element-wise unary op whose kernel is NumPy ufunc ``np.<name>`` (the default)."""
    return call(f"np.{name}({{a}})", f"np.{name}({{a}}, out={{a}})")


def code_sigmoid(e, args, node):
    e.helper("_sigmoid", SIGMOID_HELPER)
    a = args[0]
    return f"_sigmoid({a})" if e.out is None else f"_sigmoid({a}, out={a})"


def code_reduce(e, args, node):
    # sum / mean over the maths axes (a scalar is its own sum)
    a, op = args[0], node.op
    if e.forms[0] == "S":
        return a
    if e.batched_args[0]:
        return f"{a}.{op}(axis={e.axes(0)})"
    return f"np.{op}({a})"


def code_sqnorm(e, args, node):
    # ‖a‖² = aᵀa (an op of the compiler's own, made by graphgrad.compiler.passes)
    a = args[0]
    if e.forms[0] == "S":
        return f"{a} * {a}"
    if e.batched_args[0]:
        spec = "bi,bi->b" if e.forms[0] in "VR" else "bij,bij->b"
        return f"np.einsum('{spec}', {a}, {a})"
    return f"np.vdot({a}, {a})"


def code_norm(e, args, node):
    if e.forms[0] == "S":
        return f"np.abs({args[0]})"
    return f"np.sqrt({code_sqnorm(e, args, node)})"


def code_unit(e, args, node):
    if e.forms[0] == "S":
        return f"np.sign({args[0]})"
    e.helper("_unit", UNIT_HELPER)
    return f"_unit({args[0]}, axis={e.axes(0)})"


def code_sum_to(e, args, node):
    # sum over the maths axes the output lacks, and over the batch when the output has none
    g = args[0]
    axes = [i - len(e.core(0)) for i, ax in enumerate(e.core(0)) if ax not in e.core()]
    if e.batched_args[0] and not e.batched:
        axes = [0] + axes
    if not axes:
        return g
    ax = str(axes[0]) if len(axes) == 1 else "(" + ", ".join(map(str, axes)) + ")"
    return f"{g}.sum(axis={ax})"


def code_expand(e, args, node):
    # broadcast g up to like's form (a read-only view)
    e.view()
    g, like = args
    if e.batched and not e.batched_args[1]:
        shape = f"{g}.shape[:1] + {like}.shape"
    elif not e.batched and e.batched_args[1]:
        shape = f"{like}.shape[1:]"
    else:
        shape = f"{like}.shape"
    if e.literal[0]:  # a number: give it like's dtype (float32 stays float32)
        return f"np.broadcast_to({like}.dtype.type({e.aligned(0)}), {shape})"
    return f"np.broadcast_to({e.aligned(0)}, {shape})"


def code_matmul(e, args, node):
    # storage layout: vectors are 1-D, so the product's spelling depends on the operand forms
    a, b = args
    (fa, fb), (ba, bb) = e.forms, e.batched_args
    if node.op == "dot":
        fa = "R" if fa == "V" else fa
    if "S" in (fa, fb):  # a product with a 1 x 1 factor is a scaling
        return f"{e.aligned(0)} * {e.aligned(1)}"
    if fa == "M" and fb == "V":
        if ba and bb:
            return f"np.einsum('bij,bj->bi', {a}, {b})"
        return f"{b} @ {e.T(0)}" if bb else f"{a} @ {b}"  # X Aᵀ: one GEMM
    if fa == "R" and fb == "M":
        return f"np.einsum('bj,bjk->bk', {a}, {b})" if ba and bb else f"{a} @ {b}"
    if fa == "R" and fb == "V":
        if ba and bb:
            return f"np.einsum('bi,bi->b', {a}, {b})"
        return f"{a} @ {b}" if ba or not bb else f"{b} @ {a}"
    if fa == "V" and fb == "R":
        if not ba and not bb:
            return f"np.outer({a}, {b})"
        return f"{a}[..., :, None] * {b}[..., None, :]"
    if fa == "M" and fb == "M":
        return f"{a} @ {b}"
    raise ShapeError(f"the compiler has no matmul template for forms {fa} @ {fb}")


# ----------------------------------------------------------------------------- VJP rules
# b is the emitter (graphgrad.autodiff.Emitter): b.<op>(...) adds an op node, b.lit(v) a constant.


def vjp_add(b, out, g, x, y):
    # d(x + y) = dx + dy; undo broadcasting
    return b.sum_to(g, x), b.sum_to(g, y)


def vjp_sub(b, out, g, x, y):
    return b.sum_to(g, x), b.sum_to(b.neg(g), y)


def vjp_mul(b, out, g, x, y):
    # d(x ⊙ y) = dx ⊙ y + x ⊙ dy
    return b.sum_to(b.mul(g, y), x), b.sum_to(b.mul(g, x), y)


def vjp_div(b, out, g, x, y):
    # d(x / y) = dx / y − (x / y²) dy = dx / y − out ⊙ dy / y
    return b.sum_to(b.div(g, y), x), b.sum_to(b.neg(b.div(b.mul(g, out), y)), y)


def vjp_matmul(b, out, g, x, y):
    # d(X Y) = dX Y + X dY  =>  X̄ = Ḡ Yᵀ, Ȳ = Xᵀ Ḡ
    return b.matmul(g, b.transpose(y)), b.matmul(b.transpose(x), g)


def vjp_transpose(b, out, g, x):
    return (b.transpose(g),)


def vjp_neg(b, out, g, x):
    return (b.neg(g),)


def vjp_pow(b, out, g, x, p):
    # d(x^p) = p x^(p−1) dx; the exponent is a constant
    pv = b.value(p)
    return b.mul(g, b.mul(b.lit(pv), b.pow(x, b.lit(pv - 1)))), None


def vjp_norm(b, out, g, x):
    # d‖x‖ = (x / ‖x‖)ᵀ dx; at x = 0 the subgradient 0 (unit(0) = 0)
    return (b.mul(g, b.unit(x)),)


def vjp_unit(b, out, g, x):
    # u = x / ‖x‖: ū = (ḡ − u (uᵀḡ)) / ‖x‖
    return (b.div(b.sub(g, b.mul(b.sum(b.mul(out, g)), out)), b.norm(x)),)


def vjp_dot(b, out, g, x, y):
    return b.mul(g, y), b.mul(g, x)


def vjp_sum(b, out, g, x):
    return (b.expand(g, x),)


def vjp_mean(b, out, g, x):
    return (b.expand(b.div(g, b.numel(x)), x),)


def vjp_sum_to(b, out, g, x, like):
    return b.expand(g, x), None


def vjp_expand(b, out, g, x, like):
    return b.sum_to(g, x), None


def vjp_elementwise(b, out, g, x):
    """VJP of an element-wise unary op: g ⊙ f'(x)."""
    spec = OPS[b.op_of(out)]
    if spec.zero_derivative:  # relu′: 0 wherever it has a derivative
        return (None,)
    d = spec.deriv(b, out, x) if spec.deriv is not None else b.from_sympy_scalar(
        sympy_derivative(spec.name), {_T: x}
    )
    return (None,) if d is None else (b.mul(g, d),)


_T = sp.Symbol("t", real=True)


@functools.cache
def sympy_derivative(name: str) -> sp.Expr:
    """f'(t) of element-wise op ``name``, by ``sympy.diff`` of its scalar formula (in t)."""
    return sp.diff(OPS[name].sympy(_T), _T)


# ----------------------------------------------------------------------------- the table


def table(*specs: OpSpec) -> Mapping[str, OpSpec]:
    """Check entries and return a read-only mapping name -> OpSpec."""
    out: dict[str, OpSpec] = {}
    for s in specs:
        if s.name in out:
            raise ValueError(f"duplicate op {s.name!r}")
        if s.vjp is None and not s.elementwise:
            raise ValueError(f"op {s.name!r} needs a vjp rule or elementwise=True")
        if s.elementwise and s.arity == 1 and s.vjp is None:
            s = dataclasses.replace(s, vjp=vjp_elementwise)
        if s.vjp is None:
            raise ValueError(f"element-wise op {s.name!r} of arity {s.arity} needs a vjp rule")
        if s.elementwise and s.arity == 1 and s.matrix is None:
            s = dataclasses.replace(s, matrix=functools.partial(matrix_elementwise, s.name))
        if s.elementwise and s.arity == 1 and s.code is None and isinstance(s.numpy, np.ufunc):
            s = dataclasses.replace(s, code=ufunc_code(s.numpy.__name__))
        if s.matrix is None:
            raise ValueError(f"op {s.name!r} needs a matrix form (matrix=) for the symbolic back end")
        out[s.name] = s
    return MappingProxyType(out)


def _unary(name, sym, kernel, *, deriv=None, matrix=None, code=None, render, domain=(-2.0, 2.0), kinks=(),
           public=True, doc="", of_output=None, **facts):
    return OpSpec(
        name, 1, same_shape, kernel, sym, elementwise=True, deriv=deriv, matrix=matrix, code=code, **facts,
        render=render, domain=domain, kinks=kinks, public=public, doc=doc, of_output=of_output,
    )


FUNC = dict(shape="ellipse", color="#dbe9f6")
ARITH = dict(shape="circle", color="#f2f2f2")

OPS: Mapping[str, OpSpec] = table(
    OpSpec("add", 2, broadcast_shape, np.add, lambda a, b: a + b, vjp_add, matrix_add, infix("+", "np.add"),
           elementwise=True, linear=(0, 1), jointly_linear=True, commutative=True,
           render=Render("+", "+", **ARITH), doc="element-wise sum, with broadcasting"),
    OpSpec("sub", 2, broadcast_shape, np.subtract, lambda a, b: a - b, vjp_sub, matrix_sub, infix("-", "np.subtract"),
           elementwise=True, linear=(0, 1), jointly_linear=True,
           render=Render("−", "-", **ARITH), doc="element-wise difference"),
    OpSpec("mul", 2, broadcast_shape, np.multiply, lambda a, b: a * b, vjp_mul, matrix_mul, infix("*", "np.multiply"),
           elementwise=True, linear=(0, 1), commutative=True,
           render=Render("⊙", r"\odot", **ARITH),
           doc="element-wise (Hadamard) product; a scalar times an array scales it"),
    OpSpec("div", 2, broadcast_shape, np.divide, lambda a, b: a / b, vjp_div, matrix_div, infix("/", "np.divide"),
           elementwise=True, linear=(0,), nonfinite="the divisor is 0 somewhere",
           domain=(0.5, 2.0), render=Render("/", "/", **ARITH), doc="element-wise quotient"),
    OpSpec("matmul", 2, matmul_rule, np.matmul, lambda a, b: a * b, vjp_matmul, matrix_matmul, code_matmul,
           linear=(0, 1), render=Render("@", "", shape="box", color="#fde9c9"),
           doc="matrix product; vectors are columns, so a.T @ b is a scalar and a @ b.T an outer product", flops=lambda a: 2 * a[0][0] * a[0][1] * a[1][1]),
    OpSpec("transpose", 1, transpose_shape, lambda a: np.swapaxes(a, -1, -2), lambda a: a.T,
           vjp_transpose, lambda c, args, shapes, out: c.transpose(args[0]),
           lambda e, args, node: e.T(0),  # the lowering makes it a view (a BLAS flag), never a copy
           render=Render("ᵀ", "^{\\top}", **ARITH), doc="transpose (x.T)", view=True, linear=(0,), jointly_linear=True),
    _unary("neg", lambda t: -t, np.negative, matrix=lambda c, args, shapes, out: c.neg(args[0]),
           code=call("-{a}", "np.negative({a}, out={a})"), linear=(0,), jointly_linear=True,
           render=Render("−", "-", **ARITH), doc="negation (-x)"),
    OpSpec("pow", 2, pow_shape, np.power, lambda a, p: a**p, vjp_pow, matrix_pow, infix("**", None), elementwise=True,
           const_args=(1,), domain=(0.5, 2.0), nonfinite="a negative base with a fractional exponent, or 0 "
           "to a negative power", render=Render("^", "^", **ARITH),
           doc="element-wise power with a constant exponent (x**2)"),
    _unary("sigmoid", sym_sigmoid, np_sigmoid, deriv=lambda b, out, x: b.dsigmoid(x), code=code_sigmoid,
           render=Render("σ", r"\sigma", **FUNC), doc="logistic sigmoid 1 / (1 + exp(-x))"),
    _unary("tanh", sp.tanh, np.tanh, render=Render("tanh", r"\tanh", **FUNC), doc="hyperbolic tangent"),
    _unary("relu", lambda t: sp.Max(t, 0), lambda x: np.maximum(x, 0), kinks=(0.0,),
           deriv=lambda b, out, x: b.drelu(x),
           code=call("np.maximum({a}, 0.0)", "np.maximum({a}, 0.0, out={a})"), render=Render("relu", r"\operatorname{relu}", **FUNC),
           doc="max(x, 0); derivative 0 at x = 0"),
    _unary("exp", sp.exp, np.exp, render=Render("exp", r"\exp", **FUNC), doc="exponential",
           nonfinite="exp overflows above ~709 (float64) or ~88 (float32)"),
    _unary("log", sp.log, np.log, domain=(0.2, 3.0), render=Render("log", r"\log", **FUNC),
           doc="natural logarithm (x > 0)", nonfinite="log needs positive operands"),
    _unary("sqrt", sp.sqrt, np.sqrt, domain=(0.2, 3.0), render=Render("√", r"\sqrt", **FUNC),
           doc="square root (x > 0)", nonfinite="sqrt needs operands >= 0 (its derivative > 0)"),
    _unary("dsigmoid", lambda t: sym_sigmoid(t) * (1 - sym_sigmoid(t)), np_dsigmoid,
           deriv=lambda b, out, x: b.mul(out, b.sub(b.lit(1.0), b.mul(b.lit(2.0), b.sigmoid(x)))),
           code=call("np.exp(-np.logaddexp(0.0, -{a})) * np.exp(-np.logaddexp(0.0, {a}))"),
           render=Render("σ′", r"\sigma'", **FUNC), doc="σ'(x) = σ(x)(1 − σ(x))",
           of_output=("sigmoid", lambda h: h * (1 - h))),
    _unary("dtanh", lambda t: 1 - sp.tanh(t) ** 2, lambda x: 1 - np.tanh(x) ** 2, code=call("1.0 - np.tanh({a}) ** 2"),
           render=Render("tanh′", r"\tanh'", **FUNC), doc="tanh'(x) = 1 − tanh(x)²",
           of_output=("tanh", lambda t: 1 - t**2)),
    _unary("drelu", lambda t: sp.Heaviside(t, 0), lambda x: (x > 0).astype(x.dtype), kinks=(0.0,),
           zero_derivative=True, code=call("({a} > 0).astype({a}.dtype)"), render=Render("relu′", r"\operatorname{relu}'", **FUNC),
           doc="relu'(x): 1 where x > 0, else 0"),
    OpSpec("norm", 1, scalar_shape, np_norm, _sym_norm, vjp_norm, matrix_norm, code_norm,
           render=Render("‖·‖", r"\lVert\cdot\rVert", **FUNC),
           doc="Euclidean norm of a vector, Frobenius norm of a matrix; gradient 0 at 0", flops=lambda a: 2 * a[0][0] * a[0][1]),
    OpSpec("dot", 2, dot_shape, np_dot, lambda a, b: a.T * b, vjp_dot, matrix_dot, code_matmul,
           linear=(0, 1), commutative=True, render=Render("·", r"\cdot", **FUNC), doc="aᵀb of two vectors", flops=lambda a: 2 * a[0][0] * a[0][1]),
    OpSpec("sum", 1, scalar_shape, lambda x: np.sum(x, axis=REDUCE, keepdims=True),
           lambda x: sp.Matrix([[sum(x)]]), vjp_sum, matrix_sum, code_reduce, linear=(0,), jointly_linear=True,
           render=Render("Σ", r"\sum", **FUNC),
           doc="sum of all elements", flops=lambda a: a[0][0] * a[0][1]),
    OpSpec("mean", 1, scalar_shape, lambda x: np.sum(x, axis=REDUCE, keepdims=True) / (x.shape[-2] * x.shape[-1]),
           lambda x: sp.Matrix([[sum(x) / (x.rows * x.cols)]]), vjp_mean, matrix_mean, code_reduce,
           linear=(0,), jointly_linear=True, nonfinite="mean of an empty array",
           render=Render("mean", r"\operatorname{mean}", **FUNC), doc="mean of all elements", flops=lambda a: a[0][0] * a[0][1]),
    # --- internal ops: naming an existing node, and what the reverse pass emits
    OpSpec("id", 1, same_shape, lambda x: x, lambda x: x, lambda b, out, g, x: (g,),
           lambda c, args, shapes, out: args[0], lambda e, args, node: args[0], public=False,
           linear=(0,), jointly_linear=True, render=Render("=", "=", **ARITH), doc="identity: a second name for a value (y = x)", view=True),
    OpSpec("unit", 1, same_shape, np_unit, lambda x: x / _sym_norm(x)[0, 0], vjp_unit, matrix_unit, code_unit,
           public=False, domain=(0.5, 2.0), render=Render("unit", r"\operatorname{unit}", **FUNC),
           doc="x / ‖x‖, 0 at x = 0 (the norm's derivative)", flops=lambda a: 3 * a[0][0] * a[0][1]),
    OpSpec("sum_to", 2, sum_to_shape, np_sum_to, _sym_sum_to, vjp_sum_to, matrix_sum_to, code_sum_to,
           public=False, linear=(0,), jointly_linear=True, shape_only=(1,),
           render=Render("Σ→", r"\Sigma", **FUNC), doc="sum g down to like's shape (undo broadcasting)", flops=lambda a: a[0][0] * a[0][1]),
    OpSpec("expand", 2, lambda g, like: broadcast_shape(g, like), np_expand,
           lambda g, like: sp.Matrix(max(g.rows, like.rows), max(g.cols, like.cols),
                                     lambda i, j: g[i if g.rows > 1 else 0, j if g.cols > 1 else 0]),
           vjp_expand, matrix_expand, code_expand, public=False, linear=(0,), jointly_linear=True, shape_only=(1,),
           render=Render("expand", r"\operatorname{expand}", **FUNC),
           doc="broadcast g up to like's shape", view=True),
)
"""Every op by name."""

LEAF_KINDS = ("input", "param", "const")
"""Declared leaves: fed values. Besides these, ``literal`` (a number) and ``size`` (a size name
used as a scalar) are leaves too."""

PUBLIC_OPS = tuple(name for name, s in OPS.items() if s.public)


def numel_value(shape: tuple[int, ...]) -> float:
    """Number of maths elements of an array in matrix form (its last two axes)."""
    return float(math.prod(shape[-2:]))
