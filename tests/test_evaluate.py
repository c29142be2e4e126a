"""NumPy forward/backward: the residual MLP by hand, batching, dtypes, determinism, edge cases."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import graphgrad as gg

from conftest import RESIDUAL, residual_values

_VALUE_AND_GRAD, _GRAD = gg.value_and_grad, gg.grad


@pytest.fixture(autouse=True, params=["auto", "interpret"])
def engine(request, monkeypatch):
    """Every test here runs on both engines: the compiled code (the default) and the interpreter."""
    monkeypatch.setattr(gg, "value_and_grad", lambda *a, **k: _VALUE_AND_GRAD(*a, **{"engine": request.param, **k}))
    monkeypatch.setattr(gg, "grad", lambda *a, **k: _GRAD(*a, **{"engine": request.param, **k}))
    return request.param


def by_hand(v):
    z = v["W1"] @ v["x"] + v["b1"]
    sg = 1 / (1 + np.exp(-z))
    y = v["x"] + v["W2"] @ sg + v["b2"]
    L = 0.5 * np.sum((y - v["s"]) ** 2) + v["r"] @ sg
    xbar = (y - v["s"]) + v["W1"].T @ ((v["W2"].T @ (y - v["s"]) + v["r"]) * sg * (1 - sg))
    return L, xbar, y


@pytest.mark.parametrize("N,K", [(3, 2), (2, 5), (7, 4)])
def test_residual_mlp_matches_hand_derivation(mlp, N, K):
    v = residual_values(N, K, seed=N * K)
    L, xbar, y = by_hand(v)
    vals = gg.evaluate(mlp, v)
    assert np.isclose(vals["L"], L)
    np.testing.assert_allclose(vals["y"], y)
    g = gg.grad(mlp, "L", ["x"], v)
    np.testing.assert_allclose(g["x"], xbar, rtol=1e-12, atol=1e-14)


def test_value_shapes(mlp, mlp_values):
    vals = gg.evaluate(mlp, mlp_values)
    assert vals["L"].shape == () and vals["z"].shape == (2,) and vals["W1"].shape == (2, 3)


def test_vector_fed_as_column_gives_column_gradient(mlp, mlp_values):
    v = dict(mlp_values, x=mlp_values["x"].reshape(-1, 1))
    g = gg.grad(mlp, "L", ["x", "b1"], v)
    assert g["x"].shape == (3, 1) and g["b1"].shape == (2,)
    np.testing.assert_allclose(g["x"][:, 0], gg.grad(mlp, "L", ["x"], mlp_values)["x"])


def test_batching_equals_a_loop(mlp):
    B = 5
    v = residual_values(4, 3, B=B, seed=7)
    vals = gg.evaluate(mlp, v)
    assert vals["L"].shape == (B,) and vals["h"].shape == (B, 3)
    g = gg.grad(mlp, "L", ["x", "W1", "b1", "W2", "b2", "r", "s"], v)
    assert g["x"].shape == (B, 4) and g["W1"].shape == (3, 4)
    total = {k: np.zeros_like(val) for k, val in g.items() if k != "x"}
    for i in range(B):
        vi = dict(v, x=v["x"][i])
        assert np.isclose(gg.evaluate(mlp, vi, outputs=["L"])["L"], vals["L"][i])
        gi = gg.grad(mlp, "L", list(g), vi)
        np.testing.assert_allclose(g["x"][i], gi["x"], rtol=1e-12)
        for k in total:
            total[k] += gi[k]
    for k in total:
        np.testing.assert_allclose(g[k], total[k], rtol=1e-12, atol=1e-14)


def test_batched_scalar_adjoint_reaches_every_sample():
    g = gg.parse("input x[N]\nparam w[N]\nL = 3 * sum(x) + dot(w, w)")
    x = np.arange(6.0).reshape(2, 3)
    gr = gg.grad(g, "L", ["x", "w"], {"x": x, "w": np.ones(3)})
    np.testing.assert_allclose(gr["x"], np.full((2, 3), 3.0))
    np.testing.assert_allclose(gr["w"], 2 * 2 * np.ones(3))  # summed over the batch of 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(mlp, dtype):
    v = residual_values(dtype=dtype)
    vals = gg.evaluate(mlp, v)
    assert all(a.dtype == dtype for a in vals.values())
    assert all(a.dtype == dtype for a in gg.grad(mlp, "L", None, v).values())


def test_backward_is_deterministic_and_pure(mlp, mlp_values):
    before = mlp.to_networkx()
    g1 = gg.grad(mlp, "L", None, mlp_values)
    g2 = gg.grad(mlp, "L", None, mlp_values)
    for k in g1:
        assert np.array_equal(g1[k], g2[k])
    after = mlp.to_networkx()
    assert list(before.nodes(data=True)) == list(after.nodes(data=True))
    assert set(before.edges) == set(after.edges)


def test_unused_wrt_gets_zeros():
    g = gg.parse("input x[N]  u[M]\nL = sum(x)")
    gr = gg.grad(g, "L", ["u"], {"x": np.ones(2), "u": np.ones(4)})
    assert np.array_equal(gr["u"], np.zeros(4))


def test_gradient_of_an_intermediate(mlp, mlp_values):
    v = mlp_values
    L, _, y = by_hand(v)
    g = gg.grad(mlp, "L", ["y"], v)
    np.testing.assert_allclose(g["y"], y - v["s"])


def test_squared_norm_has_finite_gradient_at_zero():
    g = gg.parse("input u[N]\nparam s[N]\nS = 0.5 * norm(u - s)**2\nn = norm(u)")
    s = np.array([1.0, -2.0, 3.0])
    gr = gg.grad(g, "S", ["u", "s"], {"u": s.copy(), "s": s})
    assert np.array_equal(gr["u"], np.zeros(3)) and np.all(np.isfinite(gr["s"]))
    gn = gg.grad(g, "n", ["u"], {"u": np.zeros(3), "s": s})
    assert np.array_equal(gn["u"], np.zeros(3)), "subgradient 0 of the norm at 0"


def test_sigmoid_is_stable_for_large_inputs():
    g = gg.parse("input x[N]\nL = sum(sigmoid(x))")
    x = np.array([-800.0, 0.0, 800.0])
    assert np.isclose(gg.evaluate(g, {"x": x})["L"], 1.5)
    assert np.all(np.isfinite(gg.grad(g, "L", ["x"], {"x": x})["x"]))


def test_sizes_bind_and_size_as_scalar():
    g = gg.parse("input X[n, d]  t[n]\nparam w[d]\nL = (1/n) * norm(X @ w - t)**2")
    rng = np.random.default_rng(0)
    X, t, w = rng.standard_normal((5, 2)), rng.standard_normal(5), rng.standard_normal(2)
    L = gg.evaluate(g, {"X": X, "t": t, "w": w})["L"]
    assert np.isclose(L, np.mean((X @ w - t) ** 2))
    np.testing.assert_allclose(gg.grad(g, "L", ["w"], {"X": X, "t": t, "w": w})["w"], 2 / 5 * X.T @ (X @ w - t))


def test_gradcheck_passes_and_localises_a_wrong_rule(mlp, mlp_values, monkeypatch):
    report = gg.gradcheck(mlp, "L", None, mlp_values)
    assert report.ok and set(report.errors) == set(mlp.leaves())
    import dataclasses

    from graphgrad import ops

    bad = dataclasses.replace(ops.OPS["dot"], vjp=lambda b, out, g, x, y: (b.mul(g, y), b.mul(g, y)))
    monkeypatch.setattr(ops, "OPS", {**ops.OPS, "dot": bad})
    for mod in ("graphgrad.autodiff", "graphgrad.interpret"):
        monkeypatch.setattr(sys.modules[mod], "OPS", ops.OPS)
    fresh = gg.load(RESIDUAL)
    report = gg.gradcheck(fresh, "L", None, mlp_values)
    assert not report.ok
    assert report.culprit == "R", str(report)
    assert "dot" in report.detail


def test_gradcheck_reports_the_raw_error_and_what_it_was_held_to(mlp):
    """The printed error is the real one (it read 0.00e+00 once a rounding allowance had been
    subtracted before printing); the allowance is reported beside it as the tolerance."""
    v = residual_values(3, 2)
    report = gg.gradcheck(mlp, "L", None, v)
    assert report.ok
    for w, e in report.errors.items():
        assert 0.0 < e <= report.tolerance[w], (w, e, report.tolerance[w])
        assert report.tolerance[w] >= 1e-5  # tol, plus the central differences' rounding noise
    assert "allowed" in str(report) and "0.00e+00" not in str(report)
