"""The op table's reductions to a scalar: ‖·‖, Σ, mean: each op's rules beside its entry."""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..spec import (
    FUNC,
    REDUCE,
    OpSpec,
    Render,
    scalar_shape,
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


ENTRIES = (NORM, SUM, MEAN)
