"""The op table's what the reverse pass emits and naming: id, unit, sum_to, expand: each op's rules beside its entry."""

from __future__ import annotations

import numpy as np
import sympy as sp

from ...errors import ShapeError
from ...shapes import (
    Shape,
    broadcast,
    fmt,
    is_scalar,
    normalize,
)
from ..spec import (
    ARITH,
    FUNC,
    OpSpec,
    Render,
    broadcast_shape,
    same_shape,
)
from .reductions import _sym_norm, np_norm

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



ENTRIES = (ID, UNIT, SUM_TO, EXPAND)
