"""The op table's element-wise arithmetic: + − ⊙ / negation and powers: each op's rules beside its entry."""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from ...shapes import (
    Shape,
    fmt,
    is_scalar,
    normalize,
)
from ..spec import (
    ARITH,
    OpSpec,
    Render,
    broadcast_shape,
    call,
    infix,
    unary,
)

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


# ============================================================================ neg

def vjp_neg(b, out, g, x):
    return (b.neg(g),)


NEG = unary(
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


ENTRIES = (ADD, SUB, MUL, DIV, NEG, POW)
