"""Draw the pictures of docs/rendering.md into docs/img/ with graphgrad itself.

    python docs/build_images.py            # SVG (committed); add --png for PNG copies to look at
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import graphgrad as gg  # noqa: E402


def blocks(n: int) -> gg.Graph:
    """A stack of ``n`` residual blocks built in a loop (names ending _1, _2, ...)."""
    g = gg.Graph()
    x = g.input("x_0", "N")
    for i in range(1, n + 1):
        W, b = g.param(f"W_{i}", ("N", "N")), g.param(f"b_{i}", "N")
        h = g.apply("tanh", (W @ x + b), name=f"h_{i}")
        x = g.apply("add", x, h, name=f"x_{i}")
    g.apply("sum", x, name="L")
    return g


def main(argv: list[str]) -> int:
    out = ROOT / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    png = "--png" in argv
    g = gg.load(ROOT / "examples" / "residual_mlp.gg")
    rng = np.random.default_rng(0)
    feed = {n: rng.standard_normal([{"N": 3, "K": 2}[d] for d in g.shape(n)]) for n in g.leaves()}
    values = gg.evaluate(g, feed)
    grads = gg.grad(g, "L", g.named_nodes(), feed)
    pictures = {
        "residual_mlp": dict(),
        "residual_mlp_legend": dict(legend=True, params=False),
        "residual_mlp_backward": dict(backward=True),
        "residual_mlp_ops": dict(view="ops"),
        "residual_mlp_ops_backward": dict(view="ops", backward="only"),
        "residual_mlp_annotated": dict(backward=True, values=values, grads=grads),
    }
    for name, opts in pictures.items():
        for suffix in (".svg", ".png") if png else (".svg",):
            gg.render(g, out / f"{name}{suffix}", **opts)
    stack = blocks(3)
    for suffix in (".svg", ".png") if png else (".svg",):
        gg.render(stack, out / f"blocks_clusters{suffix}", clusters="auto", params=False)
    print(f"wrote {len(pictures) + 1} pictures to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
