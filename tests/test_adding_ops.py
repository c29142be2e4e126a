"""Adding an op (docs/architecture.md, "Adding an op"): each kind of entry the page shows is added
here, in the test, and held to both engines, central differences, the printers, a standalone
module and, when installed, JAX.

- a derivative op: ``abs`` declares ``deriv`` = ``sign``, an op of its own (zero derivative);
- a non-element-wise op with its own matrix form and VJP: ``softmax`` of a vector;
- the ``code=`` contract: softmax's NumPy code calls a helper in the storage layout.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import sympy as sp

import graphgrad as gg
from graphgrad.errors import ShapeError
from graphgrad.ops import OpSpec, Render
from graphgrad.ops.spec import FUNC, unary
from graphgrad.shapes import fmt, is_vector, normalize

# ----------------------------------------------------------------------------- a derivative op

SIGN = unary(name="sign", sympy=sp.sign, numpy=np.sign, zero_derivative=True, kinks=(0.0,),
             render=Render("sign", r"\operatorname{sign}", **FUNC), doc="-1, 0 or 1; derivative 0 where it has one")
ABS = unary(name="abs", sympy=sp.Abs, numpy=np.abs, deriv=lambda b, out, x: b.sign(x), kinks=(0.0,),
            render=Render("abs", r"\operatorname{abs}", **FUNC), doc="|x|; its derivative is sign(x)")

# ----------------------------------------------------------------------------- a non-element-wise op


def softmax_shape(a):
    """softmax takes a vector and gives one of the same length."""
    if not is_vector(a):
        raise ShapeError(f"softmax takes a vector, got {fmt(a)}", hint="apply it to a column [N]")
    return normalize(a)


def np_softmax(x):
    # exp(x − max x) / Σ exp(x − max x), over the vector's axis (matrix form: rows)
    e = np.exp(x - x.max(axis=-2, keepdims=True))
    return e / e.sum(axis=-2, keepdims=True)


def sym_softmax(x: sp.Matrix) -> sp.Matrix:
    e = x.applyfunc(sp.exp)
    return e / sum(e)


def vjp_softmax(b, out, g, x):
    # s = softmax(x): x̄ = s ⊙ (ḡ − sᵀḡ)
    return (b.mul(out, b.sub(g, b.dot(out, g))),)


SOFTMAX_HELPER = '''def _softmax(x, axis):
    """exp(x - max x) / sum exp(x - max x) along axis (the vector's axis in the storage layout)."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
'''


def code_softmax(e, args, node):
    # the code= contract: a NumPy expression in the storage layout (a vector is 1-D, a batch of them
    # 2-D), here a call of a NumPy-only helper, so a standalone module can hold it
    return f"{e.helper('_softmax', SOFTMAX_HELPER)}({args[0]}, axis={e.axes(0)})"


SOFTMAX = OpSpec(name="softmax", arity=1, shape=softmax_shape, numpy=np_softmax, sympy=sym_softmax,
                 vjp=vjp_softmax, matrix=lambda c, args, shapes, out: c.apply("softmax", args[0]),
                 code=code_softmax, render=Render("softmax", r"\operatorname{softmax}", **FUNC),
                 doc="exp(x) / sum(exp(x)) of a vector")


@pytest.fixture
def added(install_ops):
    install_ops(SIGN, ABS, SOFTMAX)


def _central(g, of, inputs, w, eps=1e-6):
    x = np.asarray(inputs[w], dtype=float)
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        f = [float(np.sum(gg.evaluate(g, {**inputs, w: x + s * d}, outputs=[of])[of])) for s in (1, -1)]
        out[i] = (f[0] - f[1]) / (2 * eps)
    return out


MODEL = "input x[N]\nparam W[K, N]\nconst r[K]\nh = softmax(W @ x)\nL = dot(r, log(h)) + sum(abs(W @ x))"


def _values(batch=None):
    rng = np.random.default_rng(4)
    N, K = 3, 4
    x = rng.standard_normal((batch, N) if batch else N)
    return {"x": x, "W": rng.standard_normal((K, N)), "r": rng.uniform(0.5, 2.0, K)}


@pytest.mark.parametrize("engine", ["interpret", "compiled"])
def test_added_ops_differentiate_on_both_engines(added, engine):
    g = gg.parse(MODEL)  # the new names are part of the model language once they are in the table
    v = _values()
    grads = gg.grad(g, "L", ["x", "W"], v, engine=engine)
    for w in ("x", "W"):
        np.testing.assert_allclose(grads[w], _central(g, "L", v, w), rtol=1e-6, atol=1e-8, err_msg=w)


def test_added_ops_batched_compiled_matches_the_interpreter(added):
    g = gg.parse(MODEL)
    v = _values(batch=5)
    ref = gg.value_and_grad(g, "L", ["x", "W"], v, engine="interpret")
    got = gg.value_and_grad(g, "L", ["x", "W"], v, engine="compiled")
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12)
    for w in ("x", "W"):
        np.testing.assert_allclose(got[1][w], ref[1][w], rtol=1e-10, atol=1e-12, err_msg=w)


def test_the_derivative_op_is_printed_and_compiled_by_name(added):
    g = gg.parse(MODEL)
    text = "\n".join(str(e) for e in gg.backprop(g, "L"))
    assert "sign(" in text, text  # abs′ is written with the derivative op's own name
    f = gg.compile(g, "L", ["x", "W"])
    assert "np.sign(" in f.source and "np.absolute(" in f.source  # ufunc kernels: default code entries


def test_the_code_entry_makes_a_standalone_module(added):
    g = gg.parse(MODEL)
    v = _values(batch=2)
    f = gg.compile(g, "L", ["x", "W"], batched=["x"])
    f(**v)
    module = f.module_source()
    assert "def _softmax(x, axis):" in module and "_op_" not in module
    ns: dict = {}
    exec(compile(module, "<module>", "exec"), ns)  # needs only NumPy
    value, grads = ns[f.name](v["x"], v["W"], v["r"])
    ref_value, ref = gg.value_and_grad(g, "L", ["x", "W"], v, engine="interpret")
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    np.testing.assert_allclose(grads["W"], ref["W"], rtol=1e-10)


def test_the_shape_rule_refuses_a_matrix(added):
    with pytest.raises(ShapeError, match="softmax takes a vector"):
        gg.parse("input X[N, K]\nL = sum(softmax(X))")


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_added_ops_against_jax(added):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    g = gg.parse(MODEL)
    v = _values()

    def loss(x, W):
        z = W @ x
        return jnp.dot(v["r"], jnp.log(jax.nn.softmax(z))) + jnp.sum(jnp.abs(z))

    ref = jax.grad(loss, argnums=(0, 1))(v["x"], v["W"])
    for engine in ("interpret", "compiled"):
        grads = gg.grad(g, "L", ["x", "W"], v, engine=engine)
        np.testing.assert_allclose(grads["x"], np.asarray(ref[0]), rtol=1e-10, err_msg=engine)
        np.testing.assert_allclose(grads["W"], np.asarray(ref[1]), rtol=1e-10, err_msg=engine)
