"""The example studies: their numbers, checked with tolerances against independent NumPy answers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def vj():
    return load("vjp_vs_jacobian")


@pytest.fixture(scope="module")
def lin():
    return load("linear_regression")


@pytest.fixture(scope="module")
def poly():
    return load("polynomial_regression")


@pytest.fixture(scope="module")
def plane(lin):
    return lin.plane_2d(steps=2000)


@pytest.fixture(scope="module")
def over(lin):
    return lin.over_parameterized(steps=2500)


def has_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


needs_mpl = pytest.mark.skipif(not has_matplotlib(), reason="matplotlib is not installed")

# ----------------------------------------------------------------------------- VJP vs Jacobian


def test_small_example(vj):
    ex = vj.small_example()
    v, y = np.array([1.0, 2.0, 3.0]), ex["y"]
    np.testing.assert_allclose(ex["J"], np.outer(v, v), rtol=1e-14)
    np.testing.assert_allclose(ex["J_fwd"], ex["J"], rtol=1e-14)
    np.testing.assert_allclose(ex["vjp"], v * (v @ y), rtol=1e-14)
    np.testing.assert_allclose(ex["jvp"], np.outer(v, v) @ y, rtol=1e-14)


def test_measured_memory_grows_like_the_model(vj):
    rows = vj.growth([100, 1000], repeat=1)
    jac = rows["jac_bytes"][1] / rows["jac_bytes"][0]
    vjp = rows["vjp_bytes"][1] / rows["vjp_bytes"][0]
    assert jac > 50  # ~ n²: x100
    assert vjp < 15  # ~ n at most: x10
    # the Jacobian's n² floats are really there
    assert rows["jac_bytes"][1] >= 8 * 1000**2


@needs_mpl
def test_growth_plot(vj, tmp_path):
    rows = vj.growth([10, 30], repeat=1)
    paths = vj.plot(rows, tmp_path)
    assert all(p.exists() and p.stat().st_size > 1000 for p in paths)
    assert paths[0].read_text().lstrip().startswith("<?xml")


# ----------------------------------------------------------------------------- linear regression


def test_gradient_matches_the_formula(lin):
    assert lin.gradient_check() < 1e-12
    assert lin.gradient_text() == "∂L/∂w = (2/n) Xᵀ(X w − t)"


def test_under_parameterized_reaches_least_squares(lin):
    u = lin.under_parameterized(steps=800)
    np.testing.assert_allclose(u["w_gd"], u["w_lstsq"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(u["w_normal_eq"], u["w_lstsq"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(u["w_recovered"], u["w_star"], rtol=1e-8, atol=1e-10)


def test_2d_gd_goes_straight_to_the_min_norm_point(lin, plane):
    gd = plane["GD"]
    w_min = np.linalg.pinv(lin.X2) @ lin.T2
    np.testing.assert_allclose(gd["end"], w_min, atol=1e-9)
    np.testing.assert_allclose(w_min, [0.8, 0.4], atol=1e-12)
    dirs = lin.step_directions(gd["path"])
    np.testing.assert_allclose(dirs, np.tile(np.array([2.0, 1.0]) / np.sqrt(5), (len(dirs), 1)), atol=1e-9)
    assert np.max(gd["null"]) < 1e-12


def test_2d_adaptive_methods_stop_elsewhere_on_the_line(plane):
    for name in ("AdaGrad", "RMSProp", "Adam"):
        e = plane[name]["end"]
        assert abs(2 * e[0] + e[1] - 2) < 1e-6, name  # zero loss: on the solution line
        assert np.linalg.norm(e) > np.sqrt(0.8) + 0.03, name  # but not the minimum-norm point
        assert plane[name]["null"][-1] > 0.25, name
    # sign-like updates move along [1, 1] from zero: AdaGrad ends at (2/3, 2/3)
    np.testing.assert_allclose(plane["AdaGrad"]["end"], [2 / 3, 2 / 3], atol=1e-6)


def test_over_parameterized_plain_methods_reach_pinv(over):
    w_pinv = over["w_pinv"]
    np.testing.assert_allclose(over["w_formula"], w_pinv, atol=1e-12)
    for name, tol in (("GD", 1e-9), ("MiniBatchSGD", 1e-8), ("SGD", 1e-6)):
        r = over["runs"][name]
        np.testing.assert_allclose(r["w"], w_pinv, atol=tol, err_msg=name)
        assert np.max(r["null"]) < 1e-12, name  # from zero the null-space part stays 0
        assert r["dist"][-1] < r["dist"][0]


def test_over_parameterized_adagrad_is_not_min_norm(over):
    r = over["runs"]["AdaGrad"]
    assert r["loss"] < 1e-12  # zero training loss
    assert r["dist"][-1] > 0.05 and r["null"][-1] > 0.05  # yet not X⁺t
    assert r["norm"] > np.linalg.norm(over["w_pinv"])
    for name in ("RMSProp", "Adam"):
        assert over["runs"][name]["null"][-1] > 0.05, name


def test_gd_preserves_the_null_space_part(lin):
    z = lin.nonzero_start(steps=2500)
    assert z["null_norm0"] > 1.0
    assert z["null_drift"] < 1e-10
    np.testing.assert_allclose(z["w"], z["expected"], atol=1e-9)


@needs_mpl
def test_plane_plot(lin, plane, tmp_path):
    paths = lin.plot_plane(plane, tmp_path)
    assert all(p.exists() for p in paths) and "<svg" in paths[0].read_text()


# ----------------------------------------------------------------------------- polynomial regression


def test_fit_poly_matches_numpy(poly):
    data = poly.make_data()
    x, t = data["x"], data["t"]
    for d in (2, 6):
        np.testing.assert_allclose(poly.fit_poly(x, d, t), np.linalg.lstsq(poly.features(x, d), t, rcond=None)[0],
                                   rtol=1e-8, atol=1e-10)
    for d in (40, 120):
        np.testing.assert_allclose(poly.fit_poly(x, d, t), np.linalg.pinv(poly.features(x, d)) @ t,
                                   rtol=1e-7, atol=1e-9)


def test_double_descent_shape(poly):
    data = poly.make_data()
    rows = poly.sweep(list(range(1, 201)), data)
    val = np.array([r["val"] for r in rows])
    train = np.array([r["train"] for r in rows])
    d = np.array([r["d"] for r in rows])
    peak = d[np.argmax(val)]
    assert poly.N - 3 <= peak <= poly.N + 1  # the peak sits at interpolation, d + 1 ≈ n
    assert np.all(train[d + 1 >= poly.N] < 1e-12)  # interpolation from there on
    far = val[d >= 2 * poly.N]
    assert far.max() < 0.1 and far.max() < 1e-3 * val.max()  # calm for d >> n
    assert far.max() < 3 * val[d < poly.N - 1].min() + 0.05


def test_gd_agrees_with_fit_poly(poly):
    data = poly.make_data()
    for d in (3, 40):
        r = poly.gd_agrees(d, data, steps=3000)
        assert r["max_diff"] < 1e-8, (d, r["max_diff"])


@needs_mpl
def test_poly_main_writes_the_plot(poly, tmp_path, capsys):
    assert poly.main(["--out", str(tmp_path), "--max-degree", "30"]) == 0
    assert (tmp_path / "polynomial_regression.svg").exists()
    assert "peak" in capsys.readouterr().out
