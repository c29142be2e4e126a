"""Measured growth of VJP vs full Jacobian for f(x) = v (vᵀ x), n = 10 -> 10⁴.

For each n it times graphgrad.vjp and graphgrad.jacobian (best CPU time of --repeat runs) and measures
the peak memory NumPy allocates during one call (tracemalloc sees NumPy's buffers), then prints
the log-log slopes between consecutive sizes next to the slopes of graphgrad.costs's model.
Expect slopes near 1 for the VJP and near 2 for the Jacobian at large n (small n is dominated by
per-node Python overhead, which does not grow with n).

    python benchmarks/bench_jacobian_cost.py                  # n = 10 ... 10000; the VJP alone to 10⁶
    python benchmarks/bench_jacobian_cost.py --sizes 10 100 1000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

import numpy as np

import graphgrad as gg
from graphgrad.costs import measured_growth

MODEL = """
input x[n]
const v[n]
f = v @ (v.T @ x)
"""


def measure(fn, repeat: int) -> tuple[float, int]:
    """Best CPU time over ``repeat`` calls, and the peak traced memory (bytes) of one call."""
    fn()  # warm the caches (reverse pass, JVP graph)
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()  # CPU time: robust to other processes sharing the machine
        fn()
        best = min(best, time.process_time() - t)
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak


def run(sizes: list[int], repeat: int) -> dict:
    """Measure every size; returns a dict of lists, ready for a table or JSON."""
    g = gg.parse(MODEL)
    model = gg.cost(g, "f", "x")
    rng = np.random.default_rng(0)
    rows = {"n": [], "vjp_s": [], "vjp_bytes": [], "jac_s": [], "jac_bytes": [],
            "model_vjp_flops": [], "model_jac_flops": [], "model_vjp_mem": [], "model_jac_mem": []}
    for n in sizes:
        vals = {"x": rng.standard_normal(n), "v": rng.standard_normal(n)}
        y = rng.standard_normal(n)
        tv, mv = measure(lambda vals=vals, y=y: gg.vjp(g, "f", "x", vals, y), repeat)
        tj, mj = measure(lambda vals=vals: gg.jacobian(g, "f", "x", vals), max(1, repeat // 3))
        nums = model.at(n=n)
        for k, v in zip(rows, [n, tv, mv, tj, mj, nums["vjp"]["flops"], nums["jacobian"]["flops"],
                               nums["vjp"]["memory"] * 8, nums["jacobian"]["memory"] * 8]):
            rows[k].append(v)
    return rows


def vjp_only(sizes: list[int], repeat: int) -> dict:
    """VJP time and memory alone, for sizes past where the Jacobian is affordable."""
    g = gg.parse(MODEL)
    rng = np.random.default_rng(1)
    rows = {"n": [], "vjp_s": [], "vjp_bytes": []}
    for n in sizes:
        vals = {"x": rng.standard_normal(n), "v": rng.standard_normal(n)}
        y = rng.standard_normal(n)
        tv, mv = measure(lambda vals=vals, y=y: gg.vjp(g, "f", "x", vals, y), repeat)
        for k, v in zip(rows, [n, tv, mv]):
            rows[k].append(v)
    return rows


def table(rows: dict) -> str:
    """The measurements and their log-log slopes, as plain text."""
    ns = rows["n"]
    out = [f"{'n':>6}  {'VJP time':>10}  {'VJP mem':>10}  {'Jac time':>10}  {'Jac mem':>12}  "
           f"{'model Jac mem':>13}"]
    for i, n in enumerate(ns):
        out.append(f"{n:>6}  {rows['vjp_s'][i] * 1e3:>8.3f}ms  {rows['vjp_bytes'][i] / 1e3:>8.1f}kB  "
                   f"{rows['jac_s'][i] * 1e3:>8.2f}ms  {rows['jac_bytes'][i] / 1e6:>10.3f}MB  "
                   f"{rows['model_jac_mem'][i] / 1e6:>11.3f}MB")
    out.append("log-log slopes between consecutive n (1 = linear, 2 = quadratic):")
    for key, label in [("vjp_s", "VJP time"), ("vjp_bytes", "VJP memory"), ("model_vjp_flops", "VJP FLOPs (model)"),
                       ("jac_s", "Jacobian time"), ("jac_bytes", "Jacobian memory"),
                       ("model_jac_flops", "Jacobian FLOPs (model)")]:
        out.append(f"  {label:<24}" + "  ".join(f"{s:5.2f}" for s in measured_growth(ns, rows[key])))
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument("--vjp-sizes", type=int, nargs="*", default=[10**4, 10**5, 10**6],
                   help="sizes for the VJP alone (its fixed overhead hides O(n) below ~10⁵)")
    p.add_argument("--json", help="also write the measurements here")
    args = p.parse_args()
    rows = run(args.sizes, args.repeat)
    print(table(rows))
    if args.vjp_sizes:
        v = vjp_only(args.vjp_sizes, args.repeat)
        print("VJP alone:  " + "  ".join(f"n={n}: {t * 1e3:.3f}ms {b / 1e6:.2f}MB"
                                         for n, t, b in zip(v["n"], v["vjp_s"], v["vjp_bytes"])))
        print("  log-log slopes, time:   " + "  ".join(f"{x:5.2f}" for x in measured_growth(v["n"], v["vjp_s"])))
        print("  log-log slopes, memory: " + "  ".join(f"{x:5.2f}" for x in measured_growth(v["n"], v["vjp_bytes"])))
        rows["vjp_only"] = v
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
