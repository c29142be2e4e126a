"""What a picture holds before it is drawn: its nodes, edges and the equations shown on them.

:mod:`graphgrad.drawing.views` builds a :class:`Scene` from a graph (the forward part) and
:mod:`graphgrad.drawing.backward` adds the adjoints; :mod:`graphgrad.drawing.dot` writes it as DOT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..graph import LEAF_OPS, Graph
from ..printing.text import to_text
from ..shapes import matrix_form
from ..symbolic import Converter, model_rank, size_symbol, var_symbol

VIEWS = ("variables", "ops")


SIDE_KINDS = ("param", "const", "size")


@dataclass
class SceneNode:
    """One drawn node. ``role``: input, param, const, intermediate, loss, op, literal, adjoint."""

    id: str
    role: str
    title: str
    lines: list[str] = field(default_factory=list)
    tooltip: list[str] = field(default_factory=list)
    var: str | None = None  # the graph node it stands for
    adjoint: bool = False
    group: str | None = None
    side: bool = False
    symbol_shape: str | None = None  # op view: the op's Graphviz shape
    color: str | None = None  # op view: the op's fill colour


@dataclass
class SceneEdge:
    """One drawn edge; ``kind``: forward, side (from a param/const) or backward."""

    src: str
    dst: str
    label: str = ""
    kind: str = "forward"
    tooltip: str = ""


@dataclass
class Scene:
    """The nodes and edges of one picture, plus pairs of node ids to put side by side."""

    nodes: list[SceneNode] = field(default_factory=list)
    edges: list[SceneEdge] = field(default_factory=list)
    same_rank: list[tuple[str, str]] = field(default_factory=list)
    of: str | None = None

    def node(self, node_id: str) -> SceneNode:
        """The node with id ``node_id``."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)


def shape_label(shape: tuple) -> str:
    """An edge's shape label, in matrix form: ``K×N``, ``N×1``, ``1×1``.

    >>> shape_label(("K", "N")), shape_label(("N",)), shape_label(())
    ('K×N', 'N×1', '1×1')
    """
    r, c = matrix_form(shape)
    return f"{r}×{c}"


class NodeEquations:
    """Forward definitions of the graph's nodes as Unicode text (SymPy, named nodes as symbols)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        syms = {n: size_symbol(n) if graph.op(n) == "size" else var_symbol(n, graph.shape(n))
                for n in graph.named_nodes()}
        self.conv = Converter(graph, syms)
        self.rank = model_rank(graph)

    def rhs(self, n: str) -> str:
        """The definition of node ``n`` (``W₁ x + b₁`` for z), or its value for a literal."""
        g = self.graph
        if g.op(n) == "literal":
            return f"{g.attrs(n)['value']:g}"
        if g.op(n) in LEAF_OPS:
            return g.op(n)
        self.conv(n)
        return to_text(self.conv.definition(n), self.rank)

    def expr(self, n: str) -> str:
        """Node ``n`` as an expression in named variables (its name when it has one)."""
        return to_text(self.conv(n), self.rank)
