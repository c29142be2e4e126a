"""The Python builder: op functions that work on :class:`graphgrad.Var` handles.

>>> import graphgrad as gg
>>> m = gg.Graph()
>>> W1, x, b1 = m.param("W1", ("K", "N")), m.input("x", "N"), m.param("b1", "K")
>>> z = (W1 @ x + b1).named("z")
>>> h = gg.sigmoid(z, name="h")
>>> h.shape
('K',)

Every public op of the table is here under its own name (``gg.norm``, ``gg.dot``, ...);
operators cover ``+ - * / @ **``, unary ``-`` and ``.T``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import GraphgradError
from ..graph import Var
from ..ops import OPS, PUBLIC_OPS


def _graph_of(args: tuple[Any, ...]) -> Any:
    for a in args:
        if isinstance(a, Var):
            return a.graph
    raise GraphgradError("an op needs at least one graphgrad variable among its operands",
                         hint="declare variables with Graph.input/param/const first")


def apply(op: str, *args: Any, name: str | None = None) -> Var:
    """Apply op ``op`` (from the op table) to operands; ``name=`` names the result."""
    return _graph_of(args).apply(op, *args, name=name)


def _make(op: str) -> Callable[..., Var]:
    def f(*args: Any, name: str | None = None) -> Var:
        return apply(op, *args, name=name)

    f.__name__ = f.__qualname__ = op
    f.__doc__ = f"{OPS[op].doc[:1].upper()}{OPS[op].doc[1:]}. Builder form of op ``{op}``."
    return f


OP_FUNCTIONS: dict[str, Callable[..., Var]] = {op: _make(op) for op in PUBLIC_OPS}
globals().update(OP_FUNCTIONS)

__all__ = ["apply", *PUBLIC_OPS]
