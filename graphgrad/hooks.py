"""What a lower floor needs from a higher one, attached from above.

The core and the engines may not import the presenters (``docs/architecture.md``), yet a graph
shows itself as SVG in a notebook and the symbolic back end's equations print themselves. They
read the functions here, which the facade (``graphgrad/__init__.py``) fills in on import.

>>> sorted(PRINTERS)  # filled by the facade
['latex', 'text']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PRINTERS: dict[str, Callable[..., str]] = {}
"""``text(expr, rank=None)`` and ``latex(expr, rank=None)``: graphgrad's SymPy printers."""

SVG: dict[str, Callable[[Any], str]] = {}
"""``graph``: a graph's picture as SVG text (the notebook's ``_repr_svg_``)."""


def printer(kind: str) -> Callable[..., str]:
    """The registered printer ``kind`` (``"text"`` or ``"latex"``)."""
    try:
        return PRINTERS[kind]
    except KeyError:
        raise RuntimeError(f"no {kind} printer is registered: import graphgrad (the facade registers it)") from None
