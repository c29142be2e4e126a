"""Is a 10⁶-step run practical? graphgrad.fit against the same loop hand-written in NumPy.

Model: linear regression L = (1/n)‖X w − t‖² with n = 4 samples and d = 2 weights (tiny, so
per-step overhead is everything). Both loops do full-batch GD (and Adam) from the same start and
must end at the same w (checked). Reports seconds, µs per step and the ratio.

    python benchmarks/bench_fit.py                 # 10⁶ steps
    python benchmarks/bench_fit.py --steps 100000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import graphgrad as gg
from graphgrad.optim import GD, Adam, fit

MODEL = """
input X[n, d]
input t[n]
param w[d]
L = (1/n) * norm(X @ w - t)**2
"""


def hand_gd(X, t, w, lr, steps):
    """Full-batch GD on (1/n)‖Xw − t‖², loss recorded per step, written directly in NumPy."""
    w = w.copy()
    n = len(t)
    loss = np.empty(steps)
    for k in range(steps):
        r = X @ w - t
        loss[k] = r @ r / n
        w -= lr * ((2 / n) * (X.T @ r))
    return w, loss


def hand_adam(X, t, w, lr, steps, b1=0.9, b2=0.999, eps=1e-8):
    """Adam on the same loss, written directly in NumPy."""
    w = w.copy()
    n = len(t)
    m, v = np.zeros_like(w), np.zeros_like(w)
    loss = np.empty(steps)
    for k in range(1, steps + 1):
        r = X @ w - t
        loss[k - 1] = r @ r / n
        g = (2 / n) * (X.T @ r)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w -= lr * (m / (1 - b1**k)) / (np.sqrt(v / (1 - b2**k)) + eps)
    return w, loss


def timed(fn):
    """(result, wall seconds, CPU seconds)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def run(steps: int) -> list[dict]:
    """Time both loops for GD and Adam; returns one row per (optimizer, implementation)."""
    g = gg.parse(MODEL)
    rng = np.random.default_rng(0)
    X, t = rng.standard_normal((4, 2)), rng.standard_normal(4)
    w0 = np.zeros(2)
    rows = []
    for name, opt, hand in [("GD", GD(lr=0.01), lambda: hand_gd(X, t, w0, 0.01, steps)),
                            ("Adam", Adam(lr=0.01), lambda: hand_adam(X, t, w0, 0.01, steps))]:
        (res, hist), wall, cpu = timed(lambda o=opt: fit(g, "L", {"w": w0}, {"X": X, "t": t}, o, steps, progress=False))
        (w_h, loss_h), wall_h, cpu_h = timed(hand)
        assert np.allclose(res["w"], w_h, rtol=1e-9, atol=1e-12), (res["w"], w_h)
        assert np.allclose(hist.loss, loss_h, rtol=1e-9, atol=1e-12)
        for impl, wl, cp in [("graphgrad.fit", wall, cpu), ("hand-written NumPy", wall_h, cpu_h)]:
            rows.append(dict(optimizer=name, impl=impl, steps=steps, wall_s=wl, cpu_s=cp,
                             us_per_step=1e6 * cp / steps))
    return rows


def table(rows: list[dict]) -> str:
    """Rows as text, with the fit / hand ratio of CPU time."""
    out = [f"{'optimizer':<9} {'implementation':<20} {'steps':>9} {'wall s':>8} {'CPU s':>8} {'µs/step':>8}"]
    for r in rows:
        out.append(f"{r['optimizer']:<9} {r['impl']:<20} {r['steps']:>9} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} "
                   f"{r['us_per_step']:>8.1f}")
    for i in range(0, len(rows), 2):
        out.append(f"{rows[i]['optimizer']}: graphgrad.fit / hand-written = {rows[i]['cpu_s'] / rows[i + 1]['cpu_s']:.2f}x")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10**6)
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    rows = run(args.steps)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
