"""The one exception family graphgrad raises for bad input.

Every error names *where* (the node, and for model text the line and column) and, when there is
one, *the fix*. ``str(err)`` is a single line, so the CLI can print it as is.

>>> str(ShapeError("[K] vs [N]", node="z", line=3, col=5, hint="did you mean W1.T?"))
"line 3, col 5: node 'z': [K] vs [N] (fix: did you mean W1.T?)"
"""

from __future__ import annotations


class GraphgradError(Exception):
    """Base class of every error graphgrad raises for bad input or a bad request."""

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        line: int | None = None,
        col: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.node = node
        self.line = line
        self.col = col
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}" + (f", col {self.col}" if self.col is not None else ""))
        if self.node is not None:
            shown = repr(self.node)
            parts.append("node " + (shown if len(shown) <= 80 else shown[:60] + "…" + shown[-12:]))
        text = ": ".join(parts + [self.message])
        if self.hint:
            text += f" (fix: {self.hint})"
        return text


class ParseError(GraphgradError):
    """Model text that is malformed or outside the whitelist."""


class ShapeError(GraphgradError):
    """Operand shapes that do not fit the op's shape rule."""


class ArityError(GraphgradError):
    """An op applied to the wrong number of operands."""


class UnknownOpError(GraphgradError):
    """An op name that is not in the op table."""


class CycleError(GraphgradError):
    """A graph that is not a DAG."""


class NamingError(GraphgradError):
    """An undefined, redefined or reserved name."""


class InputError(GraphgradError):
    """Values fed for evaluation that are missing, unknown, of the wrong shape or not finite."""


class SizeError(InputError):
    """A size name bound to two different values."""


class DerivationError(GraphgradError):
    """A derivative that cannot be formed (e.g. ``of`` is not a scalar)."""


class RenderError(GraphgradError):
    """A picture that cannot be drawn or written."""


__all__ = [
    "GraphgradError",
    "ParseError",
    "ShapeError",
    "ArityError",
    "UnknownOpError",
    "CycleError",
    "NamingError",
    "InputError",
    "SizeError",
    "DerivationError",
    "RenderError",
]

MAX_SHOWN = 60
"""Longest rendering of a name (or other user value) that an error message quotes."""


def shown(x: object) -> str:
    """``repr(x)`` for a message: never raises, and at most :data:`MAX_SHOWN` characters.

    >>> shown("h 1"), shown("x" * 100)
    ("'h 1'", "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…xxxxxxxxx'")
    """
    try:
        r = repr(x)
    except Exception:  # a hostile __repr__
        r = f"<{type(x).__name__} object>"
    if not isinstance(r, str):
        r = f"<{type(x).__name__} object>"
    return r if len(r) <= MAX_SHOWN else r[: MAX_SHOWN - 11] + "…" + r[-10:]


def node_label(n: object) -> str:
    """How an error's ``node=`` refers to node ``n``: its name, shortened when long; a name that
    is not a string, by its (shortened) repr.

    >>> node_label("h 1"), node_label(("a", 1)), len(node_label("x" * 10_000))
    ('h 1', "('a', 1)", 60)
    """
    if isinstance(n, str):
        return n if len(n) <= MAX_SHOWN else n[: MAX_SHOWN - 11] + "…" + n[-10:]
    return shown(n)
