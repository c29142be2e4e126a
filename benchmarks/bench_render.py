"""How rendering scales: a stack of residual blocks, about 2,000 graph nodes.

Each block ``i`` is ``z_i = W_i x_{i−1} + b_i``, ``h_i = σ(z_i)``, ``x_i = x_{i−1} + V_i h_i``
(8 graph nodes: 3 params, 5 op nodes); the loss is ``L = ½‖x_n − s‖²``. For each case it measures
wall-clock seconds of

* ``dot``: building the DOT source (:func:`graphgrad.drawing.dot.to_dot`: views, equations for
  tooltips, local rules), no layout;
* ``svg``: the whole :func:`graphgrad.render` to SVG, with the embedded Graphviz (WebAssembly,
  the first call includes compiling it, reported apart) and with the system ``dot`` when installed.

    python benchmarks/bench_render.py                    # 250 blocks = 2,006 nodes, ops view
    python benchmarks/bench_render.py --blocks 50 --view variables --backward
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import graphgrad as gg  # noqa: E402
from graphgrad.drawing import engine  # noqa: E402
from graphgrad.drawing.dot import render, to_dot  # noqa: E402


def stack(blocks: int) -> gg.Graph:
    """``blocks`` residual blocks named ``z_i``, ``h_i``, ``x_i`` (so ``clusters="auto"`` groups them)."""
    g = gg.Graph()
    x = g.input("x_0", "N")
    for i in range(1, blocks + 1):
        W, b, V = g.param(f"W_{i}", ("K", "N")), g.param(f"b_{i}", "K"), g.param(f"V_{i}", ("N", "K"))
        z = (W @ x + b).named(f"z_{i}")
        h = g.apply("sigmoid", z, name=f"h_{i}")
        x = g.apply("add", x, V @ h, name=f"x_{i}")
    s = g.const("s", "N")
    g.apply("mul", 0.5, g.apply("pow", g.apply("norm", x - s), 2.0), name="L")
    return g


def timed(fn, *args, **kw) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--blocks", type=int, default=250)
    p.add_argument("--view", default="ops", choices=("variables", "ops"))
    p.add_argument("--backward", action="store_true")
    p.add_argument("--clusters", action="store_true", help="group each block into a cluster")
    a = p.parse_args(argv)
    g = stack(a.blocks)
    opts = dict(view=a.view, backward=a.backward, clusters="auto" if a.clusters else None)
    print(f"{a.blocks} blocks, {len(g)} graph nodes, view={a.view}, backward={a.backward}, clusters={a.clusters}")
    t, src = timed(to_dot, g, **opts)
    print(f"  DOT source                 {t:7.2f} s   ({src.count('->')} edges, {len(src) / 1e3:.0f} kB)")
    t, _ = timed(engine._compiled_module)
    print(f"  compile embedded Graphviz  {t:7.2f} s   (once per process)")
    t, svg = timed(render, g, engine="embedded", **opts)
    print(f"  SVG, embedded Graphviz     {t:7.2f} s   ({len(svg) / 1e6:.1f} MB)")
    if shutil.which("dot"):
        t, svg = timed(render, g, engine="system", **opts)
        print(f"  SVG, system dot            {t:7.2f} s   ({len(svg) / 1e6:.1f} MB)")
    else:
        print("  SVG, system dot            (no 'dot' on PATH)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
