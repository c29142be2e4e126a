"""Linear regression studies: where gradient methods end up, and why (implicit regularization).

The model is graphgrad's bundled ``linear_regression.gg``: ``L = (1/n) ‖X w − t‖²``.

1. Its gradient as graphgrad.derivative prints it, ``(2/n) Xᵀ(X w − t)``, and checked numerically.
2. Under-parameterized (d < n): GD converges to the least-squares solution ``(XᵀX)⁻¹Xᵀt``; with
   ``t = X w*`` it recovers ``w*``.
3. Over-parameterized in 2-D: one sample ``x₁ = [2, 1]``, ``t₁ = 2``. Every ``w`` on the line
   ``w_y = 2 − 2 w_x`` has zero loss. From ``w = 0`` every GD step points along ``[2, 1]/√5`` (the
   gradient is a multiple of ``x₁``), so GD stops at the minimum-norm point ``(0.8, 0.4)``.
   AdaGrad, RMSProp and Adam rescale each coordinate and stop elsewhere on the line.
4. General d > n: GD, SGD and mini-batch SGD from zero reach ``X⁺t = Xᵀ(XXᵀ)⁻¹t``; the history of
   each run tracks ``‖w − X⁺t‖`` and ``‖P_null w‖`` (the part of ``w`` in the null space of X,
   which no gradient ``Xᵀ(...)`` can change). From a non-zero start GD keeps that part exactly.
5. A picture of the 2-D w-plane (``examples/out/linear_regression_plane.svg`` and ``.png``).

Run: ``python examples/linear_regression.py [--out DIR] [--steps K]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import graphgrad as gg
from graphgrad.models import model
from graphgrad.optim import GD, SGD, AdaGrad, Adam, MiniBatchSGD, Momentum, RMSProp, fit

OUT = Path(__file__).resolve().parent / "out"


def lr_for(X: np.ndarray, fraction: float = 1.0) -> float:
    """``fraction / λ_max`` of the loss's Hessian ``(2/n) XᵀX`` (GD is stable below 2/λ_max)."""
    n = X.shape[0]
    return fraction / np.linalg.eigvalsh(2 / n * X.T @ X).max()


def null_projector(X: np.ndarray) -> np.ndarray:
    """``P = I − X⁺X``: projects onto the null space of X (directions no gradient can move)."""
    return np.eye(X.shape[1]) - np.linalg.pinv(X) @ X


def trackers(X: np.ndarray, t: np.ndarray) -> dict:
    """Per-step measurements: distance to the min-norm solution and the null-space component."""
    w_plus = np.linalg.pinv(X) @ t
    P = null_projector(X)
    return {"dist_to_min_norm": lambda v: float(np.linalg.norm(v["w"] - w_plus)),
            "null_norm": lambda v: float(np.linalg.norm(P @ v["w"]))}


# ----------------------------------------------------------------------------- 1. the gradient


def gradient_text() -> str:
    """The gradient as graphgrad's symbolic layer prints it: ``∂L/∂w = (2/n) Xᵀ(X w − t)``."""
    return str(gg.derivative(model("linear_regression"), "L", "w", expand=True))


def gradient_check(seed: int = 0) -> float:
    """Largest difference between graphgrad's ∇L and (2/n) Xᵀ(X w − t) at random values."""
    rng = np.random.default_rng(seed)
    X, t, w = rng.standard_normal((7, 3)), rng.standard_normal(7), rng.standard_normal(3)
    got = gg.grad(model("linear_regression"), "L", "w", {"X": X, "t": t, "w": w})["w"]
    return float(np.max(np.abs(got - 2 / 7 * X.T @ (X @ w - t))))


# ----------------------------------------------------------------------------- 2. d < n


def under_parameterized(n: int = 40, d: int = 4, steps: int = 800, seed: int = 0) -> dict:
    """GD vs NumPy's lstsq, and recovery of a planted w* (noise-free targets)."""
    g = model("linear_regression")
    rng = np.random.default_rng(seed)
    X, t = rng.standard_normal((n, d)), rng.standard_normal(n)
    w_star = rng.standard_normal(d)
    lr = lr_for(X)
    w_gd, h = fit(g, "L", {"w": np.zeros(d)}, {"X": X, "t": t}, GD(lr=lr), steps)
    w_rec, _ = fit(g, "L", {"w": np.zeros(d)}, {"X": X, "t": X @ w_star}, GD(lr=lr), steps)
    return {"w_gd": w_gd["w"], "w_lstsq": np.linalg.lstsq(X, t, rcond=None)[0],
            "w_normal_eq": np.linalg.solve(X.T @ X, X.T @ t), "w_star": w_star,
            "w_recovered": w_rec["w"], "loss": h.final_loss}


# ----------------------------------------------------------------------------- 3. the 2-D plane

X2 = np.array([[2.0, 1.0]])
T2 = np.array([2.0])


def plane_optimizers() -> dict:
    """The optimizers compared on the 2-D problem (learning rates chosen for each)."""
    return {"GD": GD(lr=0.05), "SGD": SGD(lr=0.05), "Momentum": Momentum(lr=0.02, beta=0.5),
            "AdaGrad": AdaGrad(lr=0.3), "RMSProp": RMSProp(lr=0.01), "Adam": Adam(lr=0.02)}


def plane_2d(steps: int = 2000, start: tuple[float, float] = (0.0, 0.0)) -> dict:
    """Every optimizer on x₁ = [2, 1], t₁ = 2 from ``start``: end point, trajectory, loss."""
    g = model("linear_regression")
    out = {}
    for name, opt in plane_optimizers().items():
        w, h = fit(g, "L", {"w": np.array(start)}, {"X": X2, "t": T2}, opt, steps, record_every=1,
                   track=trackers(X2, T2))
        out[name] = {"end": w["w"], "path": h.params["w"], "loss": h.final_loss,
                     "null": h.tracked["null_norm"], "dist": h.tracked["dist_to_min_norm"]}
    return out


def step_directions(path: np.ndarray) -> np.ndarray:
    """Unit vectors of the steps of a trajectory (steps shorter than 1e-14 dropped)."""
    d = np.diff(path, axis=0)
    norms = np.linalg.norm(d, axis=1)
    keep = norms > 1e-14
    return d[keep] / norms[keep, None]


# ----------------------------------------------------------------------------- 4. d > n


def over_parameterized(n: int = 8, d: int = 20, steps: int = 3000, seed: int = 1) -> dict:
    """GD, SGD, mini-batch SGD, AdaGrad, RMSProp and Adam from zero vs X⁺t = Xᵀ(XXᵀ)⁻¹t."""
    g = model("linear_regression")
    rng = np.random.default_rng(seed)
    X, t = rng.standard_normal((n, d)), rng.standard_normal(n)
    lr = lr_for(X)
    lr_one = 0.5 / (2 * np.max(np.sum(X**2, axis=1)))  # stable for any single sample
    opts = {"GD": GD(lr=lr), "SGD": SGD(lr=lr_one), "MiniBatchSGD": MiniBatchSGD(lr=lr_one * 2, batch_size=4),
            "AdaGrad": AdaGrad(lr=0.1), "RMSProp": RMSProp(lr=0.001), "Adam": Adam(lr=0.01)}
    runs = {}
    for name, opt in opts.items():
        w, h = fit(g, "L", {"w": np.zeros(d)}, {"X": X, "t": t}, opt, steps, seed=seed, track=trackers(X, t))
        runs[name] = {"w": w["w"], "loss": h.final_loss, "dist": h.tracked["dist_to_min_norm"],
                      "null": h.tracked["null_norm"], "norm": float(np.linalg.norm(w["w"]))}
    return {"X": X, "t": t, "w_pinv": np.linalg.pinv(X) @ t, "w_formula": X.T @ np.linalg.solve(X @ X.T, t),
            "runs": runs}


def nonzero_start(n: int = 8, d: int = 20, steps: int = 3000, seed: int = 1) -> dict:
    """GD from a random w₀: the null-space part of w stays P w₀; the end is X⁺t + P w₀."""
    g = model("linear_regression")
    rng = np.random.default_rng(seed)
    X, t = rng.standard_normal((n, d)), rng.standard_normal(n)
    w0 = np.random.default_rng(seed + 100).standard_normal(d)
    P = null_projector(X)
    w, h = fit(g, "L", {"w": w0}, {"X": X, "t": t}, GD(lr=lr_for(X)), steps, record_every=1)
    drift = np.max(np.linalg.norm(h.params["w"] @ P.T - P @ w0, axis=1))
    return {"w": w["w"], "expected": np.linalg.pinv(X) @ t + P @ w0, "null_drift": float(drift),
            "null_norm0": float(np.linalg.norm(P @ w0)), "loss": h.final_loss}


# ----------------------------------------------------------------------------- 5. the picture


def plot_plane(runs: dict, out_dir: Path) -> list[Path]:
    """The 2-D w-plane: solution line, min-norm point, trajectories. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    xs = np.linspace(-0.3, 1.4, 2)
    ax.plot(xs, 2 - 2 * xs, color="0.3", lw=1.5, label="solutions: $w_y = 2 - 2w_x$")
    ax.plot([0.8], [0.4], "k*", ms=14, label="minimum-norm point (0.8, 0.4)")
    styles = {"GD": ("C0", "-"), "SGD": ("C1", ":"), "AdaGrad": ("C2", "-"), "Adam": ("C3", "--")}
    for name, (c, ls) in styles.items():
        p = runs[name]["path"]
        ax.plot(p[:, 0], p[:, 1], color=c, ls=ls, lw=2, label=f"{name} → ({p[-1, 0]:.3f}, {p[-1, 1]:.3f})")
        ax.plot(p[-1, 0], p[-1, 1], "o", color=c)
    ax.plot([0], [0], "ks", label="start w = 0")
    ax.set_xlabel("$w_x$")
    ax.set_ylabel("$w_y$")
    ax.set_aspect("equal")
    ax.set_xlim(-0.3, 1.4)
    ax.set_ylim(-0.2, 1.2)
    ax.grid(alpha=0.3)
    ax.set_title("L = (2 w_x + w_y − 2)²: where each optimizer stops")
    ax.legend(fontsize=8, loc="upper right")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "linear_regression_plane.svg", out_dir / "linear_regression_plane.png"]
    for p in paths:
        fig.savefig(p, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return paths


# ----------------------------------------------------------------------------- main


def fmt(v: np.ndarray) -> str:
    """A vector as (a, b, ...) with 6 decimals."""
    return "(" + ", ".join(f"{x:.6f}" for x in np.ravel(v)) + ")"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=OUT, help="folder for the plots (default examples/out)")
    p.add_argument("--steps", type=int, default=3000)
    args = p.parse_args(argv)

    print("1. gradient of L = (1/n) ‖X w − t‖²: ", gradient_text())
    print(f"   graphgrad's ∇L vs (2/n) Xᵀ(X w − t): max difference {gradient_check():.1e}")

    u = under_parameterized(steps=args.steps)
    print("\n2. d < n (n = 40, d = 4): GD from zero vs least squares")
    print("   GD      ", fmt(u["w_gd"]))
    print("   lstsq   ", fmt(u["w_lstsq"]), f"  max |GD − lstsq| = {np.max(np.abs(u['w_gd'] - u['w_lstsq'])):.1e}")
    print("   t = X w*: GD recovers w* to", f"{np.max(np.abs(u['w_recovered'] - u['w_star'])):.1e}")

    runs = plane_2d(steps=args.steps)
    print("\n3. one sample x₁ = [2, 1], t₁ = 2 (solutions: w_y = 2 − 2 w_x; min-norm (0.8, 0.4)), from w = 0")
    dirs = step_directions(runs["GD"]["path"])
    print(f"   every GD step is along [2, 1]/√5: max deviation {np.max(np.abs(dirs - np.array([2, 1]) / np.sqrt(5))):.1e}")
    print(f"   {'optimizer':<9} {'end point':<24} {'‖w‖':>9} {'loss':>9} {'on line':>8} {'null part':>10}")
    for name, r in runs.items():
        e = r["end"]
        print(f"   {name:<9} {fmt(e):<24} {np.linalg.norm(e):9.6f} {r['loss']:9.1e} "
              f"{abs(2 * e[0] + e[1] - 2):8.1e} {r['null'][-1]:10.6f}")
    print("   (min-norm ‖w‖ = √0.8 = 0.894427; AdaGrad/RMSProp/Adam move along [1, 1] from zero and end near (2/3, 2/3))")

    o = over_parameterized(steps=args.steps)
    print(f"\n4. d > n (n = 8, d = 20), from zero: X⁺t (pinv) vs Xᵀ(XXᵀ)⁻¹t differ by "
          f"{np.max(np.abs(o['w_pinv'] - o['w_formula'])):.1e}; ‖X⁺t‖ = {np.linalg.norm(o['w_pinv']):.6f}")
    print(f"   {'optimizer':<13} {'loss':>9} {'‖w − X⁺t‖':>11} {'‖P_null w‖':>11} {'max over run':>13} {'‖w‖':>9}")
    for name, r in o["runs"].items():
        print(f"   {name:<13} {r['loss']:9.1e} {r['dist'][-1]:11.2e} {r['null'][-1]:11.2e} {np.max(r['null']):13.2e} "
              f"{r['norm']:9.6f}")

    z = nonzero_start(steps=args.steps)
    print(f"\n   GD from a random w₀: ‖P_null w₀‖ = {z['null_norm0']:.6f}, largest change of P_null w over the run "
          f"{z['null_drift']:.1e}; end − (X⁺t + P_null w₀) = {np.max(np.abs(z['w'] - z['expected'])):.1e}")

    try:
        paths = plot_plane(runs, args.out)
        print("\n5. plot:", ", ".join(str(p) for p in paths))
    except ImportError:
        print("\n5. plot skipped: matplotlib is not installed (pip install 'graphgrad[examples]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
