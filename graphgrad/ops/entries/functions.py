"""The op table's element-wise functions and their derivatives (σ, tanh, relu, exp, log, √; σ′, tanh′, relu′): each op's rules beside its entry."""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..spec import (
    FUNC,
    Render,
    call,
    unary,
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
    if t.ndim == 0:
        return np.exp(-np.logaddexp(0.0, -t))
    cap = 709.0 if t.dtype.itemsize > 4 else 88.0 if t.dtype.itemsize == 4 else 11.0
    low = tail = None
    if t.size and not t.min() >= -cap:  # rare (or a nan): one reduction decides, no mask on the common path
        low = t < -cap
        tail = np.exp(t[low])
    e = np.negative(t, out=out)
    if low is not None:  # exp(−t) would overflow there: clip, and put exp(t) back after
        np.minimum(e, cap, out=e)
    np.exp(e, out=e)
    e += 1.0
    np.reciprocal(e, out=e)
    if low is not None:
        e[low] = tail
    return e
'''


def code_sigmoid(e, args, node):
    e.helper("_sigmoid", SIGMOID_HELPER)
    a = args[0]
    return f"_sigmoid({a})" if e.out is None else f"_sigmoid({a}, out={a})"


SIGMOID = unary(
    name="sigmoid",
    sympy=sym_sigmoid,
    numpy=np_sigmoid,
    deriv=lambda b, out, x: b.dsigmoid(x),
    code=code_sigmoid,
    render=Render("σ", r"\sigma", **FUNC),
    doc="logistic sigmoid 1 / (1 + exp(-x))",
)


# ============================================================================ tanh

TANH = unary(
    name="tanh",
    sympy=sp.tanh,
    numpy=np.tanh,
    render=Render("tanh", r"\tanh", **FUNC),
    doc="hyperbolic tangent",
)


# ============================================================================ relu

RELU = unary(
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

EXP = unary(
    name="exp",
    sympy=sp.exp,
    numpy=np.exp,
    render=Render("exp", r"\exp", **FUNC),
    doc="exponential",
    nonfinite="exp overflows above ~709 (float64) or ~88 (float32)",
)


# ============================================================================ log

LOG = unary(
    name="log",
    sympy=sp.log,
    numpy=np.log,
    domain=(0.2, 3.0),
    render=Render("log", r"\log", **FUNC),
    doc="natural logarithm (x > 0)",
    nonfinite="log needs positive operands",
)


# ============================================================================ sqrt

SQRT = unary(
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


DSIGMOID = unary(
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

DTANH = unary(
    name="dtanh",
    sympy=lambda t: 1 - sp.tanh(t) ** 2,
    numpy=lambda x: 1 - np.tanh(x) ** 2,
    code=call("1.0 - np.tanh({a}) ** 2"),
    render=Render("tanh′", r"\tanh'", **FUNC),
    doc="tanh'(x) = 1 − tanh(x)²",
    of_output=("tanh", lambda t: 1 - t**2),
)


# ============================================================================ drelu

DRELU = unary(
    name="drelu",
    sympy=lambda t: sp.Heaviside(t, 0),
    numpy=lambda x: (x > 0).astype(x.dtype),
    kinks=(0.0,),
    zero_derivative=True,
    code=call("({a} > 0).astype({a}.dtype)"),
    render=Render("relu′", r"\operatorname{relu}'", **FUNC),
    doc="relu'(x): 1 where x > 0, else 0",
)


ENTRIES = (SIGMOID, TANH, RELU, EXP, LOG, SQRT, DSIGMOID, DTANH, DRELU)
