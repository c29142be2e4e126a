"""VJP vs full Jacobian for f(x) = v vᵀ x: same information, n times the price.

* ``J = ∂f/∂x = v vᵀ``; for ``v = [1, 2, 3]`` it is ``[[1,2,3],[2,4,6],[3,6,9]]``.
* ``Jᵀy`` for ``y = [1, 1, 1]`` is ``[6, 12, 18]``, computed by one reverse sweep as ``v (vᵀ y)``
  without ever forming ``J``.
* graphgrad.cost's table: FLOPs and peak memory of forward, VJP, JVP and Jacobian as polynomials
  in ``n`` (the Jacobian is ``n²`` in both, the VJP ``O(n)``), and as numbers at n = 1000.
* Measured: CPU time and peak NumPy memory of vjp and jacobian as n goes 10 → 10⁴, with the
  log-log slopes, and a log-log plot (``examples/out/vjp_vs_jacobian.svg`` and ``.png``).

Run: ``python examples/vjp_vs_jacobian.py [--sizes 10 100 1000 10000] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

import graphgrad as gg
from graphgrad.costs import measured_growth

OUT = Path(__file__).resolve().parent / "out"
MODEL = """
input x[n]
const v[n]
f = v @ (v.T @ x)
"""


def small_example() -> dict:
    """J, Jᵀy and J t for v = [1, 2, 3], y = [1, 1, 1] (x does not matter: f is linear)."""
    g = gg.parse(MODEL)
    vals = {"x": np.array([0.5, -1.0, 2.0]), "v": np.array([1.0, 2.0, 3.0])}
    y = np.ones(3)
    return {"J": gg.jacobian(g, "f", "x", vals), "J_fwd": gg.jacobian(g, "f", "x", vals, mode="fwd"),
            "vjp": gg.vjp(g, "f", "x", vals, y), "jvp": gg.jvp(g, "f", "x", vals, y), "y": y}


def measure(fn, repeat: int = 3) -> tuple[float, int]:
    """Best CPU time of ``repeat`` calls (after one warm-up) and peak traced bytes of one call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()  # CPU time: robust to other processes sharing the machine
        fn()
        best = min(best, time.process_time() - t)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, peak


def growth(sizes: list[int], repeat: int = 3, seed: int = 0) -> dict:
    """Measured time and memory of vjp and jacobian per n, with the cost model's numbers."""
    g = gg.parse(MODEL)
    model = gg.cost(g, "f", "x")
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in ("n", "vjp_s", "vjp_bytes", "jac_s", "jac_bytes",
                                            "model_vjp_bytes", "model_jac_bytes")}
    for n in sizes:
        vals = {"x": rng.standard_normal(n), "v": rng.standard_normal(n)}
        y = rng.standard_normal(n)
        tv, mv = measure(lambda vals=vals, y=y: gg.vjp(g, "f", "x", vals, y), repeat)
        tj, mj = measure(lambda vals=vals: gg.jacobian(g, "f", "x", vals), 1 if n >= 5000 else repeat)
        nums = model.at(n=n)
        for k, v in zip(rows, [n, tv, mv, tj, mj, 8 * nums["vjp"]["memory"], 8 * nums["jacobian"]["memory"]]):
            rows[k].append(v)
    return rows


def plot(rows: dict, out_dir: Path) -> list[Path]:
    """Log-log time and memory against n. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = np.array(rows["n"], dtype=float)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.loglog(n, rows["vjp_s"], "o-", label="VJP (Jᵀy)")
    a.loglog(n, rows["jac_s"], "s-", label="full Jacobian")
    a.loglog(n, rows["jac_s"][-1] * (n / n[-1]) ** 2, "k:", lw=1, label="∝ n²")
    a.set_xlabel("n")
    a.set_ylabel("CPU time (s)")
    a.set_title("time")
    b.loglog(n, rows["vjp_bytes"], "o-", label="VJP, measured")
    b.loglog(n, rows["jac_bytes"], "s-", label="Jacobian, measured")
    b.loglog(n, rows["model_vjp_bytes"], "o--", alpha=0.6, label="VJP, gg.cost model")
    b.loglog(n, rows["model_jac_bytes"], "s--", alpha=0.6, label="Jacobian, gg.cost model")
    b.set_xlabel("n")
    b.set_ylabel("peak memory (bytes)")
    b.set_title("memory")
    for ax in (a, b):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle("f(x) = v vᵀ x: one VJP vs the full n x n Jacobian")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "vjp_vs_jacobian.svg", out_dir / "vjp_vs_jacobian.png"]
    for p in paths:
        fig.savefig(p, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    p.add_argument("--out", type=Path, default=OUT, help="folder for the plot (default examples/out)")
    args = p.parse_args(argv)

    ex = small_example()
    print("f(x) = v vᵀ x with v = [1, 2, 3]")
    g = gg.parse(MODEL)
    print(gg.derivative(g, "f", "x"), "  (graphgrad.derivative: the Jacobian expression)")
    print(gg.backprop(g, "f"), "  (graphgrad.backprop: the VJP, f̄ = y)")
    print("J = ∂f/∂x =\n", ex["J"])
    print("Jᵀy for y = [1, 1, 1]:", ex["vjp"], "  (one reverse sweep: v (vᵀ y), no J)")
    print("J t for t = [1, 1, 1]:", ex["jvp"], "  (forward mode as the gradient of a VJP)")
    print()
    print(gg.cost(gg.parse(MODEL), "f", "x").table(n=1000))
    print()
    rows = growth(args.sizes)
    print(f"{'n':>6} {'VJP time':>10} {'VJP mem':>10} {'Jac time':>10} {'Jac mem':>11} {'model Jac mem':>14}")
    for i, n in enumerate(rows["n"]):
        print(f"{n:>6} {rows['vjp_s'][i] * 1e3:8.3f}ms {rows['vjp_bytes'][i] / 1e3:8.1f}kB "
              f"{rows['jac_s'][i] * 1e3:8.2f}ms {rows['jac_bytes'][i] / 1e6:9.3f}MB {rows['model_jac_bytes'][i] / 1e6:12.3f}MB")
    for key, label in [("vjp_s", "VJP time"), ("vjp_bytes", "VJP memory"), ("jac_s", "Jacobian time"),
                       ("jac_bytes", "Jacobian memory")]:
        print(f"log-log slope, {label:<16}", "  ".join(f"{s:5.2f}" for s in measured_growth(rows["n"], rows[key])))
    try:
        print("plot:", ", ".join(str(p) for p in plot(rows, args.out)))
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install 'graphgrad[examples]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
