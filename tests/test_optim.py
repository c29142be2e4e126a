"""graphgrad.optim: update rules against hand-written references, fit's batching and history."""

from __future__ import annotations

import io

import numpy as np
import pytest

import graphgrad as gg
from graphgrad.optim import (
    GD,
    SGD,
    AdaGrad,
    Adam,
    MiniBatchSGD,
    Momentum,
    Progress,
    RMSProp,
    fit,
)

from conftest import residual_values

LINREG = """
input X[n, d]
input t[n]
param w[d]
L = (1/n) * norm(X @ w - t)**2
"""


@pytest.fixture
def linreg():
    return gg.parse(LINREG)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return {"X": rng.standard_normal((6, 3)), "t": rng.standard_normal(6)}


def grad_ref(X, t, w):
    return 2 / len(t) * X.T @ (X @ w - t)


def reference(opt_name, X, t, w, steps, **hp):
    """The textbook update rules, written out."""
    w = w.copy()
    state = {k: np.zeros_like(w) for k in ("v", "G", "s", "m", "u")}
    for k in range(1, steps + 1):
        g = grad_ref(X, t, w)
        if opt_name == "GD":
            w = w - hp["lr"] * g
        elif opt_name == "Momentum":
            state["v"] = hp["beta"] * state["v"] + g
            w = w - hp["lr"] * state["v"]
        elif opt_name == "AdaGrad":
            state["G"] = state["G"] + g**2
            w = w - hp["lr"] * g / (np.sqrt(state["G"]) + 1e-8)
        elif opt_name == "RMSProp":
            state["s"] = hp["rho"] * state["s"] + (1 - hp["rho"]) * g**2
            w = w - hp["lr"] * g / (np.sqrt(state["s"]) + 1e-8)
        elif opt_name == "Adam":
            b1, b2 = hp["beta1"], hp["beta2"]
            state["m"] = b1 * state["m"] + (1 - b1) * g
            state["u"] = b2 * state["u"] + (1 - b2) * g**2
            mh, vh = state["m"] / (1 - b1**k), state["u"] / (1 - b2**k)
            w = w - hp["lr"] * mh / (np.sqrt(vh) + 1e-8)
    return w


@pytest.mark.parametrize("opt,hp", [
    (GD, dict(lr=0.05)), (Momentum, dict(lr=0.02, beta=0.8)), (AdaGrad, dict(lr=0.1)),
    (RMSProp, dict(lr=0.01, rho=0.7)), (Adam, dict(lr=0.05, beta1=0.8, beta2=0.9)),
], ids=lambda x: getattr(x, "__name__", ""))
def test_update_rules_match_textbook(linreg, data, opt, hp):
    w0 = np.array([0.5, -1.0, 0.25])
    w, hist = fit(linreg, "L", {"w": w0}, data, opt(**hp), steps=25)
    np.testing.assert_allclose(w["w"], reference(opt.__name__, data["X"], data["t"], w0, 25, **hp), rtol=1e-12)
    assert hist.steps == 25 and hist.loss.shape == (25,) and hist.stopped == "steps"


def test_nesterov_differs_from_heavy_ball(linreg, data):
    w0 = {"w": np.zeros(3)}
    a, _ = fit(linreg, "L", w0, data, Momentum(lr=0.02), steps=10)
    b, _ = fit(linreg, "L", w0, data, Momentum(lr=0.02, nesterov=True), steps=10)
    assert not np.allclose(a["w"], b["w"])


def test_one_gd_step_is_minus_lr_times_grad(linreg, data):
    w0 = np.array([0.1, 0.2, 0.3])
    w1, hist = fit(linreg, "L", {"w": w0}, data, GD(lr=0.1), steps=1)
    value, grads = gg.value_and_grad(linreg, "L", "w", {**data, "w": w0})
    np.testing.assert_allclose(hist.loss[0], value, rtol=1e-12)
    np.testing.assert_allclose(w1["w"], w0 - 0.1 * grads["w"], rtol=1e-12)
    assert np.array_equal(w0, [0.1, 0.2, 0.3])  # the initial values are not trained in place


def test_sgd_epoch_visits_every_sample_once(linreg, data):
    # lr = 0 freezes w = 0, so the loss of sample i is t_i²
    _, hist = fit(linreg, "L", {"w": np.zeros(3)}, data, SGD(lr=0.0), steps=12, seed=3)
    t2 = np.sort(data["t"] ** 2)
    np.testing.assert_allclose(np.sort(hist.loss[:6]), t2)
    np.testing.assert_allclose(np.sort(hist.loss[6:]), t2)
    assert not np.array_equal(hist.loss[:6], hist.loss[6:])  # reshuffled


def test_minibatch_loss_is_the_batch_mean(linreg, data):
    # n binds to the batch size, so (1/n)‖·‖² is the mean over the batch
    _, hist = fit(linreg, "L", {"w": np.zeros(3)}, data, MiniBatchSGD(lr=0.0, batch_size=4), steps=2, seed=0)
    t2 = data["t"] ** 2
    # an epoch of 6 samples: one batch of 4 and one of 2, covering every sample
    assert np.isclose(4 * hist.loss[0] + 2 * hist.loss[1], t2.sum())


def test_seeded_and_reproducible(linreg, data):
    runs = [fit(linreg, "L", {"w": np.zeros(3)}, data, SGD(lr=0.05), steps=30, seed=s)[0]["w"] for s in (1, 1, 2)]
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


def test_early_stopping(linreg, data):
    w, hist = fit(linreg, "L", {"w": np.zeros(3)}, data, GD(lr=0.1), steps=100000, tol=1e-8)
    assert hist.stopped == "tol" and hist.steps < 100000
    assert np.linalg.norm(grad_ref(data["X"], data["t"], w["w"])) <= 1e-8
    _, h2 = fit(linreg, "L", {"w": np.zeros(3)}, data, GD(lr=0.1), steps=1000, loss_tol=10.0)
    assert h2.stopped == "loss_tol" and h2.steps == 0


def test_history_trajectory_and_tracking(linreg, data):
    w0 = np.array([1.0, 2.0, 3.0])
    w, hist = fit(linreg, "L", {"w": w0}, data, GD(lr=0.05), steps=10, record_every=1,
                  track={"norm": lambda v: np.linalg.norm(v["w"])})
    assert hist.params["w"].shape == (11, 3)
    np.testing.assert_array_equal(hist.params["w"][0], w0)
    np.testing.assert_array_equal(hist.params["w"][-1], w["w"])
    np.testing.assert_allclose(hist.tracked["norm"], np.linalg.norm(hist.params["w"], axis=1))
    assert list(hist.recorded) == list(range(11))
    expect = np.mean((data["X"] @ w["w"] - data["t"]) ** 2)
    assert np.isclose(hist.final_loss, expect)


def test_batched_inputs_sample_over_the_batch(mlp):
    vals = residual_values(N=3, K=2, B=8, seed=0)
    params = {k: vals.pop(k) for k in ("W1", "b1", "W2", "b2")}
    out, hist = fit(mlp, "L", params, vals, MiniBatchSGD(lr=0.01, batch_size=4), steps=20, seed=0)
    assert out["W1"].shape == (2, 3) and hist.steps == 20
    full0 = float(np.sum(gg.evaluate(mlp, {**vals, **params}, outputs=["L"])["L"]))
    full1 = float(np.sum(gg.evaluate(mlp, {**vals, **out}, outputs=["L"])["L"]))
    assert full1 < full0 and np.isclose(hist.final_loss, full1)


def test_progress_bar():
    buf = io.StringIO()
    bar = Progress(100, stream=buf)
    bar.show(50, 0.25, force=True)
    bar.close()
    assert "50/100" in buf.getvalue() and "50.0%" in buf.getvalue() and buf.getvalue().endswith("\n")


def test_progress_on_request(linreg, data, capsys):
    fit(linreg, "L", {"w": np.zeros(3)}, data, GD(lr=0.01), steps=5, progress=True)
    assert "5/5" in capsys.readouterr().err
    fit(linreg, "L", {"w": np.zeros(3)}, data, GD(lr=0.01), steps=5)
    assert capsys.readouterr().err == ""


def test_errors(linreg, data):
    with pytest.raises(gg.InputError, match="not a declared"):
        fit(linreg, "L", {"nope": 1.0}, data, GD(), steps=1)
    with pytest.raises(gg.InputError, match="both"):
        fit(linreg, "L", {"w": np.zeros(3)}, {**data, "w": np.zeros(3)}, GD(), steps=1)
    with pytest.raises(gg.InputError, match="missing"):
        fit(linreg, "L", {"w": np.zeros(3)}, {"X": data["X"]}, GD(), steps=1)
    g = gg.parse("input a[k]\ninput b[m]\nparam w\nL = w * (sum(a) + sum(b))")
    with pytest.raises(gg.InputError, match="ambiguous"):
        fit(g, "L", {"w": 1.0}, {"a": np.ones(2), "b": np.ones(3)}, SGD(), steps=1)
    fit(g, "L", {"w": 1.0}, {"a": np.ones(2), "b": np.ones(3)}, SGD(), steps=1, samples="k")


def test_one_gd_step_on_a_batch_sums_the_batch(mlp):
    vals = residual_values(N=3, K=2, B=5, seed=7)
    names = ["W1", "b1", "W2", "b2"]
    params = {p: vals[p] for p in names}
    data = {k: v for k, v in vals.items() if k not in params}
    new, hist = fit(mlp, "L", params, data, GD(lr=0.01), steps=1)
    value, grads = gg.value_and_grad(mlp, "L", names, vals)
    np.testing.assert_allclose(hist.loss[0], np.sum(value), rtol=1e-12)
    for p in names:
        np.testing.assert_allclose(new[p], vals[p] - 0.01 * grads[p], rtol=1e-12, atol=1e-15, err_msg=p)
    # a mini-batch of 2 of the 5 samples: the loss and step of those samples alone
    new, hist = fit(mlp, "L", params, data, MiniBatchSGD(lr=0.01, batch_size=2), steps=1, seed=1)
    perm = np.random.default_rng(1).permutation(5)[:2]
    value, grads = gg.value_and_grad(mlp, "L", names, {**vals, "x": vals["x"][perm]})
    np.testing.assert_allclose(hist.loss[0], np.sum(value), rtol=1e-12)
    for p in names:
        np.testing.assert_allclose(new[p], vals[p] - 0.01 * grads[p], rtol=1e-12, atol=1e-15, err_msg=p)


def test_float32_stays_float32(linreg, data):
    d32 = {k: v.astype(np.float32) for k, v in data.items()}
    w, hist = fit(linreg, "L", {"w": np.zeros(3, np.float32)}, d32, GD(lr=0.05), steps=50)
    w64, _ = fit(linreg, "L", {"w": np.zeros(3)}, data, GD(lr=0.05), steps=50)
    assert w["w"].dtype == np.float32
    np.testing.assert_allclose(w["w"], w64["w"], rtol=1e-4, atol=1e-5)
