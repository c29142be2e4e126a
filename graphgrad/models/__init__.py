"""Models that ship with graphgrad: the demo's residual MLP and linear regression (model text),
and :func:`residual_chain`, a deep residual net of any depth (built in Python)."""

from __future__ import annotations

from importlib import resources

from ..frontends.text import parse
from ..graph import Graph


def text(name: str) -> str:
    """The text of a bundled model, e.g. ``text("residual_mlp")``."""
    return resources.files(__name__).joinpath(f"{name}.gg").read_text(encoding="utf-8")


def model(name: str) -> Graph:
    """A bundled model, parsed."""
    return parse(text(name), source=f"{name}.gg")


def residual_chain(blocks: int) -> Graph:
    """``blocks`` residual blocks ``x_i = x_{i-1} + V_i σ(W_i x_{i-1} + b_i)`` (``x_0 = x``), then
    ``L = 0.5‖x_blocks − s‖²``: the residual MLP made deep (named ``h1, x1, h2, x2, ...``).

    >>> g = residual_chain(2)
    >>> [n for n in g.named_nodes() if g.op(n) not in ("input", "param", "const")]
    ['h1', 'x1', 'h2', 'x2', 'L']
    """
    g = Graph()
    x = g.input("x", "N")
    for i in range(1, blocks + 1):
        W, b, V = g.param(f"W{i}", ("K", "N")), g.param(f"b{i}", "K"), g.param(f"V{i}", ("N", "K"))
        h = g.apply("sigmoid", W @ x + b, name=f"h{i}")
        x = g.apply("add", x, V @ h, name=f"x{i}")
    s = g.const("s", "N")
    g.apply("mul", 0.5, g.apply("pow", g.apply("norm", x - s), 2.0), name="L")
    return g
