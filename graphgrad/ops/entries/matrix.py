"""The op table's matrix products and the transpose: each op's rules beside its entry."""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from ...shapes import (
    Shape,
    fmt,
    is_scalar,
    is_vector,
    matmul_shape,
    matrix_form,
    same,
    transpose_shape,
)
from ..spec import (
    ARITH,
    FUNC,
    REDUCE,
    OpSpec,
    Render,
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


ENTRIES = (MATMUL, TRANSPOSE, DOT)
