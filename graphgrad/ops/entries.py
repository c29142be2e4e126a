"""The op table: every op graphgrad knows, one section each -- its shape rule, NumPy kernel, SymPy
form, matrix form, compiler code and VJP rule beside its :class:`~graphgrad.ops.spec.OpSpec` entry.

The conventions every rule follows are stated once in :mod:`graphgrad.ops.spec`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from ..errors import ShapeError
from ..shapes import (
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
from .spec import (
    REDUCE,
    OpSpec,
    Render,
    broadcast_shape,
    call,
    infix,
    same_shape,
    scalar_shape,
    table,
)

FUNC = dict(shape="ellipse", color="#dbe9f6")
ARITH = dict(shape="circle", color="#f2f2f2")


def _unary(**fields: Any) -> OpSpec:
    """An element-wise unary op: its scalar formula and kernel; the VJP and matrix form follow."""
    return OpSpec(arity=1, shape=same_shape, elementwise=True, **fields)


# ============================================================================ add
def matrix_add(c, args, shapes, out):
    # broadcast operands with ones vectors: b + c 𝟙
    return c.add(*(c.bcast(x, s, out) for x, s in zip(args, shapes)))


def vjp_add(b, out, g, x, y):
    # d(x + y) = dx + dy; undo broadcasting
    return b.sum_to(g, x), b.sum_to(g, y)


ADD = OpSpec(
    name="add",
    arity=2,
    shape=broadcast_shape,
    numpy=np.add,
    sympy=lambda a, b: a + b,
    vjp=vjp_add,
    matrix=matrix_add,
    code=infix("+", "np.add"),
    elementwise=True,
    linear=(0, 1),
    jointly_linear=True,
    commutative=True,
    render=Render("+", "+", **ARITH),
    doc="element-wise sum, with broadcasting",
)


# ============================================================================ sub
def matrix_sub(c, args, shapes, out):
    a, b = (c.bcast(x, s, out) for x, s in zip(args, shapes))
    return c.add(a, c.neg(b))


def vjp_sub(b, out, g, x, y):
    return b.sum_to(g, x), b.sum_to(b.neg(g), y)


SUB = OpSpec(
    name="sub",
    arity=2,
    shape=broadcast_shape,
    numpy=np.subtract,
    sympy=lambda a, b: a - b,
    vjp=vjp_sub,
    matrix=matrix_sub,
    code=infix("-", "np.subtract"),
    elementwise=True,
    linear=(0, 1),
    jointly_linear=True,
    render=Render("−", "-", **ARITH),
    doc="element-wise difference",
)


# ============================================================================ mul
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


def vjp_mul(b, out, g, x, y):
    # d(x ⊙ y) = dx ⊙ y + x ⊙ dy
    return b.sum_to(b.mul(g, y), x), b.sum_to(b.mul(g, x), y)


MUL = OpSpec(
    name="mul",
    arity=2,
    shape=broadcast_shape,
    numpy=np.multiply,
    sympy=lambda a, b: a * b,
    vjp=vjp_mul,
    matrix=matrix_mul,
    code=infix("*", "np.multiply"),
    elementwise=True,
    linear=(0, 1),
    commutative=True,
    render=Render("⊙", r"\odot", **ARITH),
    doc="element-wise (Hadamard) product; a scalar times an array scales it",
)


# ============================================================================ div
def matrix_div(c, args, shapes, out):
    # a / b = a b⁻¹ for a scalar b, else a ⊙ b^∘⁻¹
    a, b = args
    if not c.is_matrix(b):
        return c.mul(a, c.power(b, -1))
    inv = c.power(c.bcast(b, shapes[1], out), -1)
    if not c.is_matrix(a):
        return c.mul(a, inv)
    return c.hadamard(c.bcast(a, shapes[0], out), inv)


def vjp_div(b, out, g, x, y):
    # d(x / y) = dx / y − (x / y²) dy = dx / y − out ⊙ dy / y
    return b.sum_to(b.div(g, y), x), b.sum_to(b.neg(b.div(b.mul(g, out), y)), y)


DIV = OpSpec(
    name="div",
    arity=2,
    shape=broadcast_shape,
    numpy=np.divide,
    sympy=lambda a, b: a / b,
    vjp=vjp_div,
    matrix=matrix_div,
    code=infix("/", "np.divide"),
    elementwise=True,
    linear=(0,),
    nonfinite="the divisor is 0 somewhere",
    domain=(0.5, 2.0),
    render=Render("/", "/", **ARITH),
    doc="element-wise quotient",
)


# ============================================================================ matmul
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


def matrix_matmul(c, args, shapes, out):
    # a 1 x 1 product (xᵀ y) is used as the scalar it is
    a, b = args
    if not c.is_matrix(a) or not c.is_matrix(b):
        return c.mul(a, b)
    prod = c.matmul(a, b)
    return c.inner(prod) if is_scalar(out) else prod


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


def vjp_matmul(b, out, g, x, y):
    # d(X Y) = dX Y + X dY  =>  X̄ = Ḡ Yᵀ, Ȳ = Xᵀ Ḡ
    return b.matmul(g, b.transpose(y)), b.matmul(b.transpose(x), g)


MATMUL = OpSpec(
    name="matmul",
    arity=2,
    shape=matmul_rule,
    numpy=np.matmul,
    sympy=lambda a, b: a * b,
    vjp=vjp_matmul,
    matrix=matrix_matmul,
    code=code_matmul,
    linear=(0, 1),
    render=Render("@", "", shape="box", color="#fde9c9"),
    doc="matrix product; vectors are columns, so a.T @ b is a scalar and a @ b.T an outer product",
    flops=lambda a: 2 * a[0][0] * a[0][1] * a[1][1],
)


# ============================================================================ transpose
def vjp_transpose(b, out, g, x):
    return (b.transpose(g),)


TRANSPOSE = OpSpec(
    name="transpose",
    arity=1,
    shape=transpose_shape,
    numpy=lambda a: np.swapaxes(a, -1, -2),
    sympy=lambda a: a.T,
    vjp=vjp_transpose,
    matrix=lambda c, args, shapes, out: c.transpose(args[0]),
    code=lambda e, args, node: e.T(0),
    render=Render("ᵀ", "^{\\top}", **ARITH),
    doc="transpose (x.T)",
    view=True,
    linear=(0,),
    jointly_linear=True,
)


# ============================================================================ neg
def vjp_neg(b, out, g, x):
    return (b.neg(g),)


NEG = _unary(
    name="neg",
    sympy=lambda t: -t,
    numpy=np.negative,
    matrix=lambda c, args, shapes, out: c.neg(args[0]),
    code=call("-{a}", "np.negative({a}, out={a})"),
    linear=(0,),
    jointly_linear=True,
    render=Render("−", "-", **ARITH),
    doc="negation (-x)",
)


# ============================================================================ pow
def pow_shape(x: Shape, p: Shape) -> Shape:
    """Shape of ``x ** p`` (p a scalar constant)."""
    if not is_scalar(p):
        raise ShapeError(f"the exponent must be a scalar constant, got {fmt(p)}")
    return normalize(x)


def matrix_pow(c, args, shapes, out):
    a, p = args
    return a if p == 1 else c.power(a, p)


def vjp_pow(b, out, g, x, p):
    # d(x^p) = p x^(p−1) dx; the exponent is a constant
    pv = b.value(p)
    return b.mul(g, b.mul(b.lit(pv), b.pow(x, b.lit(pv - 1)))), None


POW = OpSpec(
    name="pow",
    arity=2,
    shape=pow_shape,
    numpy=np.power,
    sympy=lambda a, p: a**p,
    vjp=vjp_pow,
    matrix=matrix_pow,
    code=infix("**", None),
    elementwise=True,
    const_args=(1,),
    domain=(0.5, 2.0),
    nonfinite="a negative base with a fractional exponent, or 0 "
               "to a negative power",
    render=Render("^", "^", **ARITH),
    doc="element-wise power with a constant exponent (x**2)",
)


# ============================================================================ sigmoid
def np_sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic sigmoid, stable for large |x|."""
    return np.exp(-np.logaddexp(0.0, -x)).astype(x.dtype, copy=False)


def sym_sigmoid(t: sp.Expr) -> sp.Expr:
    """σ(t) = 1 / (1 + e^(−t))."""
    return 1 / (1 + sp.exp(-t))


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


def code_sigmoid(e, args, node):
    e.helper("_sigmoid", SIGMOID_HELPER)
    a = args[0]
    return f"_sigmoid({a})" if e.out is None else f"_sigmoid({a}, out={a})"


SIGMOID = _unary(
    name="sigmoid",
    sympy=sym_sigmoid,
    numpy=np_sigmoid,
    deriv=lambda b, out, x: b.dsigmoid(x),
    code=code_sigmoid,
    render=Render("σ", r"\sigma", **FUNC),
    doc="logistic sigmoid 1 / (1 + exp(-x))",
)


# ============================================================================ tanh
TANH = _unary(
    name="tanh",
    sympy=sp.tanh,
    numpy=np.tanh,
    render=Render("tanh", r"\tanh", **FUNC),
    doc="hyperbolic tangent",
)


# ============================================================================ relu
RELU = _unary(
    name="relu",
    sympy=lambda t: sp.Max(t, 0),
    numpy=lambda x: np.maximum(x, 0),
    kinks=(0.0,),
    deriv=lambda b, out, x: b.drelu(x),
    code=call("np.maximum({a}, 0.0)", "np.maximum({a}, 0.0, out={a})"),
    render=Render("relu", r"\operatorname{relu}", **FUNC),
    doc="max(x, 0); derivative 0 at x = 0",
)


# ============================================================================ exp
EXP = _unary(
    name="exp",
    sympy=sp.exp,
    numpy=np.exp,
    render=Render("exp", r"\exp", **FUNC),
    doc="exponential",
    nonfinite="exp overflows above ~709 (float64) or ~88 (float32)",
)


# ============================================================================ log
LOG = _unary(
    name="log",
    sympy=sp.log,
    numpy=np.log,
    domain=(0.2, 3.0),
    render=Render("log", r"\log", **FUNC),
    doc="natural logarithm (x > 0)",
    nonfinite="log needs positive operands",
)


# ============================================================================ sqrt
SQRT = _unary(
    name="sqrt",
    sympy=sp.sqrt,
    numpy=np.sqrt,
    domain=(0.2, 3.0),
    render=Render("√", r"\sqrt", **FUNC),
    doc="square root (x > 0)",
    nonfinite="sqrt needs operands >= 0 (its derivative > 0)",
)


# ============================================================================ dsigmoid
def np_dsigmoid(x: np.ndarray) -> np.ndarray:
    """σ'(x) = σ(x)(1 − σ(x)) = σ(x) σ(−x): the second form keeps its digits where σ(x) rounds to 1."""
    return np_sigmoid(x) * np_sigmoid(-x)


DSIGMOID = _unary(
    name="dsigmoid",
    sympy=lambda t: sym_sigmoid(t) * (1 - sym_sigmoid(t)),
    numpy=np_dsigmoid,
    deriv=lambda b, out, x: b.mul(out, b.sub(b.lit(1.0), b.mul(b.lit(2.0), b.sigmoid(x)))),
    code=call("np.exp(-np.logaddexp(0.0, -{a})) * np.exp(-np.logaddexp(0.0, {a}))"),
    render=Render("σ′", r"\sigma'", **FUNC),
    doc="σ'(x) = σ(x)(1 − σ(x))",
    of_output=("sigmoid", lambda h: h * (1 - h)),
)


# ============================================================================ dtanh
DTANH = _unary(
    name="dtanh",
    sympy=lambda t: 1 - sp.tanh(t) ** 2,
    numpy=lambda x: 1 - np.tanh(x) ** 2,
    code=call("1.0 - np.tanh({a}) ** 2"),
    render=Render("tanh′", r"\tanh'", **FUNC),
    doc="tanh'(x) = 1 − tanh(x)²",
    of_output=("tanh", lambda t: 1 - t**2),
)


# ============================================================================ drelu
DRELU = _unary(
    name="drelu",
    sympy=lambda t: sp.Heaviside(t, 0),
    numpy=lambda x: (x > 0).astype(x.dtype),
    kinks=(0.0,),
    zero_derivative=True,
    code=call("({a} > 0).astype({a}.dtype)"),
    render=Render("relu′", r"\operatorname{relu}'", **FUNC),
    doc="relu'(x): 1 where x > 0, else 0",
)


# ============================================================================ norm
def np_norm(x: np.ndarray) -> np.ndarray:
    """Euclidean (Frobenius) norm over the two maths axes, kept as a 1 x 1."""
    return np.sqrt(np.add.reduce(x * x, axis=REDUCE, keepdims=True))


def _sym_norm(x: sp.Matrix) -> sp.Matrix:
    return sp.Matrix([[sp.sqrt(sum(e**2 for e in x))]])


def matrix_norm(c, args, shapes, out):
    a = args[0]
    return c.norm(a) if c.is_matrix(a) else sp.Abs(a)


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


def vjp_norm(b, out, g, x):
    # d‖x‖ = (x / ‖x‖)ᵀ dx; at x = 0 the subgradient 0 (unit(0) = 0)
    return (b.mul(g, b.unit(x)),)


NORM = OpSpec(
    name="norm",
    arity=1,
    shape=scalar_shape,
    numpy=np_norm,
    sympy=_sym_norm,
    vjp=vjp_norm,
    matrix=matrix_norm,
    code=code_norm,
    render=Render("‖·‖", r"\lVert\cdot\rVert", **FUNC),
    doc="Euclidean norm of a vector, Frobenius norm of a matrix; gradient 0 at 0",
    flops=lambda a: 2 * a[0][0] * a[0][1],
)


# ============================================================================ dot
def dot_shape(a: Shape, b: Shape) -> Shape:
    """Shape of ``dot(a, b)`` = aᵀb for two vectors of one length."""
    if not (is_vector(a) or is_scalar(a)) or not (is_vector(b) or is_scalar(b)) or not same(a, b):
        raise ShapeError(
            f"dot takes two vectors of the same length, got {fmt(a)} and {fmt(b)}",
            hint="for matrices use sum(A * B); for a matrix-vector product use @",
        )
    return ()


def np_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """aᵀb over the maths axes, kept as a 1 x 1."""
    return np.sum(a * b, axis=REDUCE, keepdims=True)


def matrix_dot(c, args, shapes, out):
    a, b = args
    if not c.is_matrix(a) or not c.is_matrix(b):
        return c.mul(a, b)
    return c.inner(c.matmul(c.transpose(a), b, fold=False))


def vjp_dot(b, out, g, x, y):
    return b.mul(g, y), b.mul(g, x)


DOT = OpSpec(
    name="dot",
    arity=2,
    shape=dot_shape,
    numpy=np_dot,
    sympy=lambda a, b: a.T * b,
    vjp=vjp_dot,
    matrix=matrix_dot,
    code=code_matmul,
    linear=(0, 1),
    commutative=True,
    render=Render("·", r"\cdot", **FUNC),
    doc="aᵀb of two vectors",
    flops=lambda a: 2 * a[0][0] * a[0][1],
)


# ============================================================================ sum
def code_reduce(e, args, node):
    # sum / mean over the maths axes (a scalar is its own sum)
    a, op = args[0], node.op
    if e.forms[0] == "S":
        return a
    if e.batched_args[0]:
        return f"{a}.{op}(axis={e.axes(0)})"
    return f"np.{op}({a})"


def matrix_sum(c, args, shapes, out):
    a = args[0]
    return c.total(a) if c.is_matrix(a) else a


def vjp_sum(b, out, g, x):
    return (b.expand(g, x),)


SUM = OpSpec(
    name="sum",
    arity=1,
    shape=scalar_shape,
    numpy=lambda x: np.sum(x, axis=REDUCE, keepdims=True),
    sympy=lambda x: sp.Matrix([[sum(x)]]),
    vjp=vjp_sum,
    matrix=matrix_sum,
    code=code_reduce,
    linear=(0,),
    jointly_linear=True,
    render=Render("Σ", r"\sum", **FUNC),
    doc="sum of all elements",
    flops=lambda a: a[0][0] * a[0][1],
)


# ============================================================================ mean
def matrix_mean(c, args, shapes, out):
    a = args[0]
    if not c.is_matrix(a):
        return a
    R, C = a.shape  # noqa: N806 - the maths names
    return c.mul(c.total(a), (R * C) ** -1)


def vjp_mean(b, out, g, x):
    return (b.expand(b.div(g, b.numel(x)), x),)


MEAN = OpSpec(
    name="mean",
    arity=1,
    shape=scalar_shape,
    numpy=lambda x: np.sum(x, axis=REDUCE, keepdims=True) / (x.shape[-2] * x.shape[-1]),
    sympy=lambda x: sp.Matrix([[sum(x) / (x.rows * x.cols)]]),
    vjp=vjp_mean,
    matrix=matrix_mean,
    code=code_reduce,
    linear=(0,),
    jointly_linear=True,
    nonfinite="mean of an empty array",
    render=Render("mean", r"\operatorname{mean}", **FUNC),
    doc="mean of all elements",
    flops=lambda a: a[0][0] * a[0][1],
)


# ============================================================================ id
ID = OpSpec(
    name="id",
    arity=1,
    shape=same_shape,
    numpy=lambda x: x,
    sympy=lambda x: x,
    vjp=lambda b, out, g, x: (g,),
    matrix=lambda c, args, shapes, out: args[0],
    code=lambda e, args, node: args[0],
    public=False,
    linear=(0,),
    jointly_linear=True,
    render=Render("=", "=", **ARITH),
    doc="identity: a second name for a value (y = x)",
    view=True,
)


# ============================================================================ unit
def np_unit(x: np.ndarray) -> np.ndarray:
    """x / ‖x‖, with the subgradient 0 at x = 0."""
    n = np_norm(x)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def matrix_unit(c, args, shapes, out):
    # u / ‖u‖; sign(a) for a scalar
    a = args[0]
    return c.mul(c.power(c.norm(a), -1), a) if c.is_matrix(a) else sp.sign(a)


UNIT_HELPER = '''def _unit(a, axis):
    """a / ‖a‖ over axis (0 where ‖a‖ = 0)."""
    n = np.sqrt(np.sum(a * a, axis=axis, keepdims=True))
    return np.divide(a, n, out=np.zeros_like(a), where=n > 0)
'''


def code_unit(e, args, node):
    if e.forms[0] == "S":
        return f"np.sign({args[0]})"
    e.helper("_unit", UNIT_HELPER)
    return f"_unit({args[0]}, axis={e.axes(0)})"


def vjp_unit(b, out, g, x):
    # u = x / ‖x‖: ū = (ḡ − u (uᵀḡ)) / ‖x‖
    return (b.div(b.sub(g, b.mul(b.sum(b.mul(out, g)), out)), b.norm(x)),)


UNIT = OpSpec(
    name="unit",
    arity=1,
    shape=same_shape,
    numpy=np_unit,
    sympy=lambda x: x / _sym_norm(x)[0, 0],
    vjp=vjp_unit,
    matrix=matrix_unit,
    code=code_unit,
    public=False,
    domain=(0.5, 2.0),
    render=Render("unit", r"\operatorname{unit}", **FUNC),
    doc="x / ‖x‖, 0 at x = 0 (the norm's derivative)",
    flops=lambda a: 3 * a[0][0] * a[0][1],
)


# ============================================================================ sum_to
def sum_to_shape(g: Shape, like: Shape) -> Shape:
    """Shape of ``sum_to(g, like)``: like's (g must broadcast from it)."""
    if broadcast(g, like) is None:
        raise ShapeError(f"cannot reduce {fmt(g)} to {fmt(like)}")
    return normalize(like)


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


def _sym_sum_to(g: sp.Matrix, like: sp.Matrix) -> sp.Matrix:
    rows = g * sp.ones(g.cols, 1) if like.cols == 1 and g.cols != 1 else g
    return sp.ones(1, rows.rows) * rows if like.rows == 1 and rows.rows != 1 else rows


def matrix_sum_to(c, args, shapes, out):
    # 𝟙ᵀ g sums the rows away, g 𝟙 the columns
    g = args[0]
    if not c.is_matrix(g):
        return c.bcast(g, (), out)
    if is_scalar(out):
        return c.total(g)
    return c.reduce(g, out if is_scalar(shapes[0]) else shapes[0], out)


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


def vjp_sum_to(b, out, g, x, like):
    return b.expand(g, x), None


SUM_TO = OpSpec(
    name="sum_to",
    arity=2,
    shape=sum_to_shape,
    numpy=np_sum_to,
    sympy=_sym_sum_to,
    vjp=vjp_sum_to,
    matrix=matrix_sum_to,
    code=code_sum_to,
    public=False,
    linear=(0,),
    jointly_linear=True,
    shape_only=(1,),
    render=Render("Σ→", r"\Sigma", **FUNC),
    doc="sum g down to like's shape (undo broadcasting)",
    flops=lambda a: a[0][0] * a[0][1],
)


# ============================================================================ expand
def np_expand(g: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Broadcast ``g`` up to ``like``'s maths shape (batch axes of ``g`` kept)."""
    return np.broadcast_to(g, np.broadcast_shapes(g.shape, like.shape[-2:]))


def matrix_expand(c, args, shapes, out):
    return c.bcast(args[0], shapes[0], out)


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


def vjp_expand(b, out, g, x, like):
    return b.sum_to(g, x), None


EXPAND = OpSpec(
    name="expand",
    arity=2,
    shape=lambda g, like: broadcast_shape(g, like),
    numpy=np_expand,
    sympy=lambda g, like: sp.Matrix(max(g.rows, like.rows), max(g.cols, like.cols),
                                         lambda i, j: g[i if g.rows > 1 else 0, j if g.cols > 1 else 0]),
    vjp=vjp_expand,
    matrix=matrix_expand,
    code=code_expand,
    public=False,
    linear=(0,),
    jointly_linear=True,
    shape_only=(1,),
    render=Render("expand", r"\operatorname{expand}", **FUNC),
    doc="broadcast g up to like's shape",
    view=True,
)


OPS = table(ADD, SUB, MUL, DIV, MATMUL, TRANSPOSE, NEG, POW, SIGMOID, TANH, RELU, EXP, LOG, SQRT, DSIGMOID, DTANH, DRELU, NORM, DOT, SUM, MEAN, ID, UNIT, SUM_TO, EXPAND)
"""Every op by name."""

PUBLIC_OPS = tuple(name for name, s in OPS.items() if s.public)
