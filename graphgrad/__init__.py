"""graphgrad: a computation-graph compiler for learning, teaching and debugging backpropagation.

A model is a NetworkX DAG of ops. From it graphgrad derives the backprop equations (SymPy),
renders the graph (Graphviz), and evaluates forward and backward passes (NumPy).

>>> import graphgrad as gg
>>> g = gg.parse('''
... input x[N]
... param w[N]
... L = sigmoid(dot(w, x))
... ''')
>>> float(gg.evaluate(g, {"x": [1.0, 2.0], "w": [0.0, 0.0]})["L"])
0.5
"""

from __future__ import annotations

import importlib
from typing import Any

from . import hooks
from .api import GradcheckReport, grad, gradcheck, value_and_grad
from .autodiff import Backward, backward
from .errors import (
    ArityError,
    CycleError,
    DerivationError,
    GraphgradError,
    InputError,
    NamingError,
    ParseError,
    RenderError,
    ShapeError,
    SizeError,
    UnknownOpError,
)
from .frontends.builder import *  # noqa: F403 - gg.sigmoid, gg.norm, ... (one per public op)
from .frontends.builder import __all__ as builder_names
from .frontends.builder import apply
from .frontends.text import load, parse
from .graph import Graph, Var, from_networkx
from .interpret import evaluate
from .ops import OPS, OpSpec

__version__ = "0.1.0"


# hooks the lower floors read (graphgrad.hooks): the presenters, attached from above
def _text(expr: Any, rank: Any = None) -> str:
    from .printing.text import to_text

    return to_text(expr, rank)


def _latex(expr: Any, rank: Any = None) -> str:
    from .printing.latex import to_latex

    return to_latex(expr, rank)


def _svg(graph: Graph) -> str:
    from .drawing.dot import render

    return render(graph)


hooks.PRINTERS.update(text=_text, latex=_latex)
hooks.SVG["graph"] = _svg

# later layers, imported on first use so the core stays light
_LAZY = {
    "backprop": "graphgrad.symbolic",
    "derivative": "graphgrad.symbolic",
    "check": "graphgrad.checker",
    "CheckResult": "graphgrad.checker",
    "render": "graphgrad.drawing.dot",
    "compile": "graphgrad.compiler",
    "compile_forward": "graphgrad.compiler",
    "compile_vjp": "graphgrad.compiler",
    "jacobian": "graphgrad.jacobians",
    "vjp": "graphgrad.jacobians",
    "jvp": "graphgrad.jacobians",
    "cost": "graphgrad.costs",
    "fit": "graphgrad.optim",
    "optim": "graphgrad.optim",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod = importlib.import_module(_LAZY[name])
        value = mod if mod.__name__.endswith("." + name) else getattr(mod, name)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module 'graphgrad' has no attribute {name!r}")


def __dir__() -> list[str]:
    """Every public name, the lazily imported ones too (tab completion finds gg.render, gg.fit)."""
    return sorted(set(__all__) | {"__version__"})


__all__ = [*_LAZY, *builder_names,
    "Graph", "Var", "parse", "load", "from_networkx", "apply", "evaluate", "grad", "value_and_grad",
    "gradcheck", "GradcheckReport", "backward", "Backward", "OPS", "OpSpec",
    "GraphgradError", "ParseError", "ShapeError", "ArityError", "UnknownOpError", "CycleError",
    "NamingError", "InputError", "SizeError", "DerivationError", "RenderError",
]
