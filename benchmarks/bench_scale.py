"""Time and peak memory of each stage on growing chains and residual networks.

    python benchmarks/bench_scale.py            # chains of 1,250..10,000 nodes, 125..1,000 blocks
    python benchmarks/bench_scale.py --quick    # a quarter of those sizes

Stages: build (builder), parse (model text), validate, evaluate (every named node), backward
(the reverse pass), grad (every leaf, the interpreter), and, once they exist, derive (graphgrad.symbolic),
compile (graphgrad.compiler) and render (graphgrad.drawing.dot). Each stage runs on a fresh
copy of the graph (so no cache helps), timed with ``perf_counter`` and measured with
``tracemalloc`` (peak of Python allocations during a second run of the stage). The last column gives the
growth of time from the smallest to the largest size divided by the growth of size: about 1
means linear.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import graphgrad as gg  # noqa: E402


def chain(n: int) -> gg.Graph:
    g = gg.Graph()
    h = g.input("x", "N")
    for i in range(n):
        h = g.apply("sigmoid", h, name=f"h{i}")
    g.apply("sum", h, name="L")
    return g


def chain_text(n: int) -> str:
    return "input x[N]\nh0 = sigmoid(x)\n" + "".join(f"h{i} = sigmoid(h{i - 1})\n" for i in range(1, n)) + \
        f"L = sum(h{n - 1})\n"


def residual(blocks: int) -> gg.Graph:
    g = gg.Graph()
    h = g.input("x", "N")
    for i in range(blocks):
        h = g.apply("add", h, g.apply("matmul", g.param(f"W{i}", ("N", "N")), g.apply("sigmoid", h)), name=f"h{i}")
    g.apply("pow", g.apply("norm", h), 2.0, name="L")
    return g


def residual_text(blocks: int) -> str:
    lines = ["input x[N]", "param " + " ".join(f"W{i}[N, N]" for i in range(blocks)), "h0 = x + W0 @ sigmoid(x)"]
    lines += [f"h{i} = h{i - 1} + W{i} @ sigmoid(h{i - 1})" for i in range(1, blocks)]
    lines.append(f"L = norm(h{blocks - 1})**2")
    return "\n".join(lines) + "\n"


def measure(fn: Callable[[], object]) -> tuple[float, float]:
    """(seconds, peak MiB): timed in one call, memory traced in a second (tracing slows Python down)."""
    gc.collect()
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return dt, peak


def stages(make: Callable[[int], gg.Graph], text: Callable[[int], str], n: int) -> dict[str, tuple[float, float]]:
    g = make(n)
    rng = np.random.default_rng(0)
    vals = {v: 0.1 * rng.standard_normal(tuple(3 for _ in g.shape(v))) for v in g.leaves()}
    out = {
        "build": measure(lambda: make(n)),
        "parse": measure(lambda: gg.parse(text(n))),
        "validate": measure(lambda: g.copy().validate()),
        "evaluate": measure(lambda: gg.evaluate(g.copy(), vals)),
        "backward": measure(lambda: gg.backward(g.copy(), "L")),
        "grad": measure(lambda: gg.grad(g.copy(), "L", None, vals, engine="interpret")),
    }
    if importlib.util.find_spec("graphgrad.symbolic"):
        out["derive"] = measure(lambda: gg.backprop(g.copy(), "L"))
    if importlib.util.find_spec("graphgrad.compiler"):
        out["compile"] = measure(lambda: gg.compile(g.copy(), "L", ["x"]))
    try:
        has_dot = importlib.util.find_spec("graphgrad.drawing.dot") is not None
    except ModuleNotFoundError:
        has_dot = False
    if has_dot and n <= 2_500:  # Graphviz's own layout is superlinear; kept to moderate sizes
        out["render"] = measure(lambda: gg.render(g.copy()))
    return out


def table(title: str, unit: str, sizes: list[int], rows: dict[int, dict[str, tuple[float, float]]]) -> str:
    names = list(rows[sizes[0]])
    head = f"| {title} ({unit}) | " + " | ".join(f"{s:,}" for s in sizes) + " | growth (time) |"
    lines = [head, "|" + "---|" * (len(sizes) + 2)]
    for st in names:
        cells = []
        for s in sizes:
            if st in rows[s]:
                t, m = rows[s][st]
                cells.append(f"{t:.3f} s / {m:.1f} MiB")
            else:
                cells.append("–")
        done = [s for s in sizes if st in rows[s]]
        growth = (rows[done[-1]][st][0] / max(rows[done[0]][st][0], 1e-9)) / (done[-1] / done[0]) \
            if len(done) > 1 else float("nan")
        lines.append(f"| {st} | " + " | ".join(cells) + f" | {growth:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a quarter of the sizes")
    args = ap.parse_args(argv)
    q = 4 if args.quick else 1
    chains = [n // q for n in (1_250, 2_500, 5_000, 10_000)]
    blocks = [n // q for n in (125, 250, 500, 1_000)]
    print(f"graphgrad {gg.__version__}, numpy {np.__version__}, Python {sys.version.split()[0]}\n")
    rows = {n: stages(chain, chain_text, n) for n in chains}
    print(table("chain: nodes", "time / peak", chains, rows) + "\n")
    rows = {n: stages(residual, residual_text, n) for n in blocks}
    print(table("residual net: blocks", "time / peak", blocks, rows))


if __name__ == "__main__":
    main()
