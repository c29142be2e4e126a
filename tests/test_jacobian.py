"""jacobian / vjp / jvp against finite differences and against each other."""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest

import graphgrad as gg
from graphgrad.jacobians import choose_mode, jvp_graph

from conftest import residual_values

OUTER = """
input x[n]
const v[n]
f = v @ (v.T @ x)
"""


def fd_jacobian(g, of, w, vals, eps=1e-6):
    """Central-difference Jacobian of shape shape(of) + shape(w)."""
    x = np.asarray(vals[w], dtype=float)
    f0 = np.asarray(gg.evaluate(g, vals, outputs=[of])[of])
    J = np.zeros(f0.shape + x.shape)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        fp = gg.evaluate(g, {**vals, w: x + e}, outputs=[of])[of]
        fm = gg.evaluate(g, {**vals, w: x - e}, outputs=[of])[of]
        J[(...,) + idx] = (fp - fm) / (2 * eps)
    return J


def test_outer_product_example():
    g = gg.parse(OUTER)
    vals = {"x": np.array([0.3, -1.0, 2.0]), "v": np.array([1.0, 2.0, 3.0])}
    v = vals["v"]
    J = gg.jacobian(g, "f", "x", vals)
    np.testing.assert_allclose(J, np.outer(v, v))
    y = np.ones(3)
    np.testing.assert_allclose(gg.vjp(g, "f", "x", vals, y), np.outer(v, v).T @ y)
    t = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(gg.jvp(g, "f", "x", vals, t), np.outer(v, v) @ t)


@pytest.mark.parametrize("mode", ["rev", "fwd", "auto"])
@pytest.mark.parametrize("w", ["x", "W1", "b2"])
def test_residual_mlp_against_finite_differences(mlp, mode, w):
    vals = residual_values(N=3, K=2, seed=1)
    J = gg.jacobian(mlp, "y", w, vals, mode=mode)
    fd = fd_jacobian(mlp, "y", w, vals)
    assert J.shape == (3,) + np.shape(vals[w])
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-8)


def test_rev_and_fwd_agree_in_chunks(mlp):
    vals = residual_values(N=5, K=4, seed=2)
    rev = gg.jacobian(mlp, "y", ["x", "W2"], vals, mode="rev", chunk=2)
    fwd = gg.jacobian(mlp, "y", ["x", "W2"], vals, mode="fwd", chunk=3)
    for w in ("x", "W2"):
        np.testing.assert_allclose(rev[w], fwd[w], rtol=1e-12, atol=1e-12)


def test_scalar_output_jacobian_is_the_gradient(mlp, mlp_values):
    for mode in ("rev", "fwd"):
        J = gg.jacobian(mlp, "L", ["x", "W1"], mlp_values, mode=mode)
        g = gg.grad(mlp, "L", ["x", "W1"], mlp_values)
        for w in g:
            np.testing.assert_allclose(J[w], g[w], rtol=1e-10, atol=1e-12)


def test_vjp_and_jvp_are_transposes(mlp):
    vals = residual_values(N=4, K=3, seed=3)
    rng = np.random.default_rng(0)
    y, t = rng.standard_normal(4), rng.standard_normal((3, 4))
    J = fd_jacobian(mlp, "y", "W1", vals).reshape(4, 12)
    np.testing.assert_allclose(gg.vjp(mlp, "y", "W1", vals, y).reshape(-1), J.T @ y, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gg.jvp(mlp, "y", "W1", vals, t), J @ t.reshape(-1), rtol=1e-6, atol=1e-8)
    # ⟨y, J t⟩ = ⟨Jᵀy, t⟩ exactly (up to rounding)
    lhs = y @ gg.jvp(mlp, "y", "W1", vals, t)
    rhs = np.sum(gg.vjp(mlp, "y", "W1", vals, y) * t)
    assert np.isclose(lhs, rhs, rtol=1e-12)


def test_jvp_with_several_variables_sums(mlp):
    vals = residual_values(N=3, K=2, seed=4)
    rng = np.random.default_rng(1)
    tx, tb = rng.standard_normal(3), rng.standard_normal(2)
    both = gg.jvp(mlp, "y", ["x", "b1"], vals, {"x": tx, "b1": tb})
    apart = gg.jvp(mlp, "y", "x", vals, tx) + gg.jvp(mlp, "y", "b1", vals, tb)
    np.testing.assert_allclose(both, apart, rtol=1e-12)
    vj = gg.vjp(mlp, "y", ["x", "b1"], vals, np.ones(3))
    assert set(vj) == {"x", "b1"}


def test_batched_vjp_and_jvp_match_per_sample(mlp):
    B = 3
    vals = residual_values(N=3, K=2, B=B, seed=5)
    rng = np.random.default_rng(2)
    y, t = rng.standard_normal((B, 3)), rng.standard_normal((B, 3))
    vb = gg.vjp(mlp, "y", "x", vals, y)
    jb = gg.jvp(mlp, "y", "x", vals, t)
    assert vb.shape == jb.shape == (B, 3)
    for i in range(B):
        one = {**vals, "x": vals["x"][i]}
        np.testing.assert_allclose(vb[i], gg.vjp(mlp, "y", "x", one, y[i]), rtol=1e-12)
        np.testing.assert_allclose(jb[i], gg.jvp(mlp, "y", "x", one, t[i]), rtol=1e-12)


def test_independent_variable_gives_zeros():
    g = gg.parse("input x[n]\nconst c[n]\nf = x * 2")
    vals = {"x": np.ones(3), "c": np.ones(3)}
    assert np.all(gg.jacobian(g, "f", "c", vals) == 0)
    assert np.all(gg.jvp(g, "f", "c", vals, np.ones(3)) == 0)
    assert np.all(gg.vjp(g, "f", "c", vals, np.ones(3)) == 0)


def test_jvp_graph_is_ir_with_named_tangent():
    g = gg.parse(OUTER)
    jg = jvp_graph(g, "f", ["x"])
    assert jg.tangent == {"x": "x_dot"}
    assert jg.graph.op("x_dot") == "input"
    # J t = v (vᵀ t): computing it does not need x (f_bar appears only as a shape template)
    needed = jg.graph.ancestors(jg.out)
    assert "x_dot" in needed and "x" not in needed
    assert "x_dot" not in g  # the forward graph is unchanged


def test_choose_mode():
    assert choose_mode(1, 100) == "rev" and choose_mode(100, 1) == "fwd" and choose_mode(5, 5) == "rev"


def test_errors(mlp):
    vals = residual_values(N=3, K=2, B=2)
    with pytest.raises(gg.InputError, match="batch"):
        gg.jacobian(mlp, "y", "x", vals)
    with pytest.raises(gg.DerivationError, match="mode"):
        gg.jacobian(mlp, "y", "x", residual_values(), mode="sideways")
    with pytest.raises(gg.InputError, match="cotangent"):
        gg.vjp(mlp, "y", "x", {**residual_values(), "y_bar": np.ones(3)}, np.ones(3))
    with pytest.raises(gg.InputError, match="dict"):
        gg.jvp(mlp, "y", ["x", "b1"], residual_values(), np.ones(3))
    with pytest.raises(gg.NamingError):
        gg.jacobian(mlp, "nope", "x", residual_values())


def test_long_chain_is_iterative():
    # a chain deeper than the recursion limit allows (kept short: the reverse pass is slow on chains)
    g = gg.Graph()
    x = g.input("x", 3)
    h = x
    for _ in range(200):
        h = g.apply("tanh", h)
    g.apply("id", h, name="f")
    t = np.array([1.0, 0.0, 0.0])
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 150)
    try:
        out = gg.jvp(g, "f", "x", {"x": np.array([0.1, 0.2, 0.3])}, t)
    finally:
        sys.setrecursionlimit(limit)
    assert out.shape == (3,) and out[1] == 0 and 0 < out[0] < 1


# ----------------------------------------------------------------------------- arguments checked at the entry


@pytest.mark.parametrize("chunk", [-1, 0, 1.5, True, "2", np.float64(2.0)])
@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_chunk_must_be_a_positive_int(mode, chunk):
    g = gg.parse("input x[n]\nf = x * x")
    with pytest.raises(gg.InputError, match="chunk must be a positive int"):
        gg.jacobian(g, "f", "x", {"x": [1.0, 2.0]}, mode=mode, chunk=chunk)  # chunk=-1 gave zeros


@pytest.mark.parametrize("chunk", [1, 2, np.int64(1), None])
def test_valid_chunks_give_the_jacobian(chunk):
    g = gg.parse("input x[n]\nf = x * x")
    for mode in ("rev", "fwd"):
        J = gg.jacobian(g, "f", "x", {"x": [1.0, 2.0, 3.0]}, mode=mode, chunk=chunk)
        np.testing.assert_array_equal(J, np.diag([2.0, 4.0, 6.0]))


X = {"x": np.array([1.0, 2.0])}
G1 = gg.parse("input x[n]\nf = x * x\nL = sum(f)")


@pytest.mark.parametrize("call,cls,words", [
    (lambda: gg.jacobian("input x", "f", "x", X), gg.InputError, ["takes a graphgrad.Graph", "str"]),
    (lambda: gg.jacobian(G1, 3, "x", X), gg.NamingError, ["of must be a node name (str), got int"]),
    (lambda: gg.jacobian(G1, ["f"], "x", X), gg.NamingError, ["of must be a node name", "list"]),
    (lambda: gg.jacobian(G1, "f", 3, X), gg.NamingError, ["wrt must be a node name or a list", "int"]),
    (lambda: gg.jacobian(G1, "f", [3], X), gg.NamingError, ["wrt must be a node name (str), got int"]),
    (lambda: gg.jacobian(G1, "f", ["x", "q"], X), gg.NamingError, ["wrt 'q' is not defined"]),
    (lambda: gg.jacobian(G1, "f", {"x": 1}, X), gg.NamingError, ["wrt must be a node name or a list"]),
    (lambda: gg.jacobian(G1, "f", "x", [1.0, 2.0]), gg.InputError, ["inputs must be a dict", "list"]),
    (lambda: gg.jacobian(G1, "f", "x", {1: [1.0]}), gg.InputError, ["inputs keys must be names", "int"]),
    (lambda: gg.jacobian(G1, "f", "x", X, sizes=[3]), gg.InputError, ["sizes must be a dict"]),
    (lambda: gg.jacobian(G1, "f", "x", X, mode=["rev"]), gg.DerivationError, ["mode must be"]),
    (lambda: gg.vjp("g", "f", "x", X, [1.0, 1.0]), gg.InputError, ["vjp takes a graphgrad.Graph"]),
    (lambda: gg.vjp(G1, None, "x", X, [1.0, 1.0]), gg.NamingError, ["of must be a node name", "NoneType"]),
    (lambda: gg.vjp(G1, "f", 1.0, X, [1.0, 1.0]), gg.NamingError, ["wrt must be"]),
    (lambda: gg.vjp(G1, "f", "x", "x=1", [1.0, 1.0]), gg.InputError, ["inputs must be a dict"]),
    (lambda: gg.jvp(G1, "f", "x", 5, [1.0, 1.0]), gg.InputError, ["inputs must be a dict"]),
    (lambda: gg.jvp(G1, b"f", "x", X, [1.0, 1.0]), gg.NamingError, ["of must be a node name", "bytes"]),
    (lambda: gg.jvp(G1, "f", (w for w in [7]), X, {}), gg.NamingError, ["wrt must be a node name"]),
    (lambda: gg.derivative("input x", "L", "x"), gg.InputError, ["derivative takes a graphgrad.Graph"]),
    (lambda: gg.derivative(G1, 0, "x"), gg.NamingError, ["of must be a node name"]),
    (lambda: gg.derivative(G1, "L", ["x"]), gg.NamingError, ["wrt must be one node name", "once per variable"]),
    (lambda: gg.derivative(G1, "L", None), gg.NamingError, ["wrt must be one node name"]),
    (lambda: gg.derivative(G1, "L", "x").evaluate([1.0, 2.0]), gg.InputError, ["inputs must be a dict"]),
    (lambda: gg.derivative(G1, "L", "x").evaluate(X, sizes=3), gg.InputError, ["sizes must be a dict"]),
])
def test_wrong_argument_types_are_graphgrad_errors(call, cls, words):
    with pytest.raises(cls) as e:
        call()
    for w in words:
        assert w in str(e.value), str(e.value)
    assert e.value.hint and "\n" not in str(e.value)


def test_wrt_may_be_any_iterable_of_names():
    gen = gg.jacobian(G1, "f", (w for w in ["x"]), X)
    assert set(gen) == {"x"}
    np.testing.assert_array_equal(gen["x"], np.diag([2.0, 4.0]))
    assert set(gg.vjp(G1, "f", ("x",), X, np.ones(2))) == {"x"}


# ----------------------------------------------------------------------------- Derivative.evaluate keeps the dtype


@pytest.mark.parametrize("wrt", ["x", "W1", "b2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_derivative_evaluate_keeps_the_dtype(mlp, dtype, wrt):
    vals = residual_values(dtype=dtype)
    d = gg.derivative(mlp, "L", wrt)
    got = d.evaluate(vals)
    ref = gg.grad(mlp, "L", [wrt], residual_values(), engine="interpret")[wrt]
    assert got.dtype == dtype and got.shape == ref.shape
    assert got.dtype == gg.grad(mlp, "L", [wrt], vals, engine="interpret")[wrt].dtype
    np.testing.assert_allclose(got, ref, rtol=1e-5 if dtype == np.float32 else 1e-10, atol=1e-6)


def test_derivative_evaluate_jacobian_and_scalars_keep_the_dtype(mlp):
    vals = residual_values(dtype=np.float32)
    J = gg.derivative(mlp, "y", "x").evaluate(vals)
    assert J.dtype == np.float32 and J.shape == (3, 3)
    np.testing.assert_allclose(J, gg.jacobian(mlp, "y", "x", residual_values()), rtol=1e-5, atol=1e-6)
    g = gg.parse("input a\nparam w\nL = sigmoid(w * a) * w")
    out = gg.derivative(g, "L", "w").evaluate({"a": np.float32(0.5), "w": np.float32(2.0)})
    assert out.dtype == np.float32 and out.shape == ()


def test_derivative_evaluate_dtype_like_evaluate(mlp):
    vals = residual_values()
    mixed = {**vals, "x": vals["x"].astype(np.float32)}
    d = gg.derivative(mlp, "L", "x")
    with pytest.raises(gg.InputError, match="mixed float types"):
        d.evaluate(mixed)
    assert d.evaluate(mixed, dtype=np.float64).dtype == np.float64
    assert d.evaluate(vals, dtype=np.float32).dtype == np.float32
    ints = {k: np.ones(np.shape(v), dtype=int) for k, v in vals.items()}
    assert d.evaluate(ints).dtype == np.float64
