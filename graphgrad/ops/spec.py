r"""What an op is (:class:`OpSpec`), the builders its rules receive (typed :class:`~typing.Protocol`\ s),
and ``table``, which checks entries. The ops themselves are in :mod:`graphgrad.ops.entries`.

Each op is one :class:`OpSpec` entry declaring its arity, shape rule, NumPy kernel, SymPy form,
local derivative (VJP) rule, matrix notation, compiler code and the facts the back ends read. The evaluator, the reverse pass, the printers, the
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
from typing import Any, Protocol

import numpy as np
import sympy as sp

from ..errors import ShapeError
from ..shapes import Shape, broadcast, fmt, normalize

REDUCE = (-2, -1)


class VJPBuilder(Protocol):
    """What a ``vjp``/``deriv`` rule builds with (:class:`graphgrad.autodiff.Emitter`): each op of the
    table as a method (``b.mul(g, y)``, ``b.transpose(x)``, through ``__getattr__``), numbers, and
    reads of the graph. Declared as the callables a rule may use, their arguments in a comment."""

    lit: Callable[..., str]  # (v: float)
    apply: Callable[..., str]  # (op: str, *args: str)
    value: Callable[..., float]  # (n: str)
    numel: Callable[..., str]  # (x: str)
    op_of: Callable[..., str]  # (n: str)


class MatrixBuilder(Protocol):
    """What a ``matrix`` rule builds with (:class:`graphgrad.symbolic.Converter`): SymPy matrix
    expressions, folded or not as the converter is set."""

    add: Callable[..., Any]  # (*xs: Any)
    mul: Callable[..., Any]  # (a: Any, b: Any)
    neg: Callable[..., Any]  # (a: Any)
    power: Callable[..., Any]  # (a: Any, p: Any)
    matmul: Callable[..., Any]  # (a: Any, b: Any, fold: bool = True)
    transpose: Callable[..., Any]  # (a: Any)
    hadamard: Callable[..., Any]  # (*xs: Any)
    bcast: Callable[..., Any]  # (x: Any, shape: Shape, out: Shape)
    reduce: Callable[..., Any]  # (x: Any, shape: Shape, out: Shape)
    total: Callable[..., Any]  # (a: Any)
    norm: Callable[..., Any]  # (a: Any)
    inner: Callable[..., Any]  # (a: Any)
    apply: Callable[..., Any]  # (name: str, x: Any)
    is_matrix: Callable[..., bool]  # (x: Any)
    ones_coeff: Callable[..., Any]  # (x: Any)


class CodeSite(Protocol):
    """What a ``code`` entry sees of one application (:class:`graphgrad.compiler.Site`)."""

    forms: list[str]
    batched_args: list[bool]
    form: str
    batched: bool
    out: int | None
    literal: list[bool]
    commutative: bool

    core: Callable[..., tuple[str, ...]]  # (i: int | None = None)
    axes: Callable[..., str]  # (i: int)
    T: Callable[..., str]  # (i: int)  the maths name
    aligned: Callable[..., str]  # (i: int)
    helper: Callable[..., str]  # (name: str, source: str)
    view: Callable[..., None]  # ()


@dataclass(frozen=True)
class Render:
    """How an op is drawn: ``symbol``/``latex`` are its Unicode and LaTeX spellings, ``shape`` and
    ``color`` its Graphviz node in the ops view."""

    symbol: str
    latex: str
    shape: str = "ellipse"  # Graphviz node shape in the op view
    color: str = "#e8e8e8"


@dataclass(frozen=True, kw_only=True)
class OpSpec:
    """Everything graphgrad knows about one op."""

    name: str
    arity: int
    shape: Callable[..., Shape]
    numpy: Callable[..., np.ndarray]
    sympy: Callable[..., Any]
    vjp: Callable[..., tuple] | None = None  # (b: VJPBuilder, out, g, *args) -> one contribution per operand
    matrix: Callable[..., Any] | None = None  # (c: MatrixBuilder, args, shapes, out) -> SymPy matrix expression
    code: Callable[..., str | None] | None = None  # (e: CodeSite, args, node) -> NumPy template text
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


def scalar_shape(a: Shape) -> Shape:
    """Shape of a full reduction: a scalar."""
    return ()


def matrix_elementwise(name: str, c, args, shapes, out):
    """Matrix form of element-wise unary op ``name`` (the default): ``name(x)``, printed ``σ(z)``."""
    return c.apply(name, args[0])


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


def vjp_elementwise(spec: OpSpec, b, out, g, x):
    """VJP of element-wise unary op ``spec``: g ⊙ f'(x) (``table`` binds ``spec``)."""
    if spec.zero_derivative:  # relu′: 0 wherever it has a derivative
        return (None,)
    d = spec.deriv(b, out, x) if spec.deriv is not None else b.from_sympy_scalar(
        sympy_derivative(spec), {_T: x}
    )
    return (None,) if d is None else (b.mul(g, d),)


_T = sp.Symbol("t", real=True)


@functools.cache
def sympy_derivative(spec: OpSpec) -> sp.Expr:
    """f'(t) of element-wise op ``spec``, by ``sympy.diff`` of its scalar formula (in t)."""
    return sp.diff(spec.sympy(_T), _T)


def table(*specs: OpSpec) -> Mapping[str, OpSpec]:
    """Check entries and return a read-only mapping name -> OpSpec."""
    out: dict[str, OpSpec] = {}
    for s in specs:
        if s.name in out:
            raise ValueError(f"duplicate op {s.name!r}")
        if s.vjp is None and not s.elementwise:
            raise ValueError(f"op {s.name!r} needs a vjp rule or elementwise=True")
        if s.elementwise and s.arity == 1 and s.vjp is None:
            s = dataclasses.replace(s, vjp=functools.partial(vjp_elementwise, s))
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


LEAF_KINDS = ("input", "param", "const")
"""Declared leaves: fed values. Besides these, ``literal`` (a number) and ``size`` (a size name
used as a scalar) are leaves too."""


def numel_value(shape: tuple[int, ...]) -> float:
    """Number of maths elements of an array in matrix form (its last two axes)."""
    return float(math.prod(shape[-2:]))


FUNC = dict(shape="ellipse", color="#dbe9f6")
"""Render style of a function node (σ, tanh, ‖·‖) in the ops view."""
ARITH = dict(shape="circle", color="#f2f2f2")
"""Render style of an arithmetic node (+, ⊙, ᵀ) in the ops view."""


def unary(**fields: Any) -> OpSpec:
    """An element-wise unary op from its scalar formula and kernel; ``table`` derives its VJP
    (``sympy.diff``), matrix form (``f(z)``) and, for a NumPy ufunc, its code."""
    return OpSpec(arity=1, shape=same_shape, elementwise=True, **fields)
