"""The backward half of a picture: adjoint nodes v̄ with their equations, edges with local rules.

A *local rule* is one contribution to an adjoint with the incoming adjoint written ``·``: the
edge ȳ -> h̄ of the residual MLP carries ``W₂ᵀ·`` because h̄ receives W₂ᵀ ȳ. In the variables
view the contributions are those of :func:`graphgrad.backprop` (through anonymous
sub-expressions); in the ops view each op's own ``vjp`` rule from the op table is emitted with a
placeholder adjoint (:func:`op_local_rules`).

>>> import sympy as sp
>>> from graphgrad.symbolic import AdjointMatrix
>>> W, g = sp.MatrixSymbol("W2", 3, 2), AdjointMatrix("y", 3, 1)
>>> rule_text(W.T * g, g)
'W₂ᵀ·'
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy as sp

from ..autodiff import backward as reverse
from ..autodiff import local_vjps
from ..errors import RenderError
from ..graph import Graph
from ..naming import adjoint_name, pretty
from ..printing.text import to_text
from ..shapes import fmt, is_scalar
from ..symbolic import AdjointMatrix, AdjointSymbol, Converter, backprop, size_symbol, var_symbol
from .scene import SIDE_KINDS, NodeEquations, Scene, SceneEdge, SceneNode


def rule_text(expr: sp.Basic, source: sp.Basic | None) -> str:
    """The local rule of a contribution: ``expr`` with the adjoint ``source`` written ``·``.

    Other adjoints in ``expr`` (a sub-expression shared by two variables) are set to zero.
    ``· ⊙ σ′(z)`` is shortened to ``⊙ σ′(z)``, ``W₂ᵀ ·`` to ``W₂ᵀ·`` and ``·`` alone to ``id``.
    """
    if source is not None:
        dot = sp.MatrixSymbol("·", *source.shape) if isinstance(source, sp.MatrixSymbol) else sp.Symbol("·")
        rep = {source: dot}
        for a in expr.free_symbols:
            if isinstance(a, (AdjointMatrix, AdjointSymbol)) and a != source:
                rep[a] = sp.ZeroMatrix(*a.shape) if isinstance(a, sp.MatrixSymbol) else sp.Integer(0)
        expr = expr.xreplace(rep)
        if len(rep) > 1:
            expr = expr.doit()
    text = to_text(expr)
    if text == "·":
        return "id"
    if text.startswith("· ⊙ "):
        return "⊙ " + text[4:]
    return text[:-2] + "·" if text.endswith(" ·") else text


def _adjoint_sources(expr: sp.Basic) -> list[tuple[str, sp.Basic]]:
    """The adjoint symbols in ``expr``, as (variable, symbol), in name order."""
    found = [a for a in expr.free_symbols if isinstance(a, (AdjointMatrix, AdjointSymbol))]
    return sorted(((a.name, a) for a in found), key=lambda t: t[0])


def op_local_rules(graph: Graph, nodes: Iterable[str]) -> dict[tuple[str, int], str]:
    """The local rule of every op edge: ``(consumer, operand index) -> rule``, from the op table.

    The reverse pass emits each consumer's ``vjp`` with its own adjoint as a placeholder ``·``
    (:func:`graphgrad.autodiff.local_vjps`), so each rule is the op's derivative alone (``W₁ᵀ·``
    for operand 2 of ``W₁ @ x``).
    """
    ext, rules = local_vjps(graph, nodes)
    symbols: dict[str, sp.Basic] = {n: size_symbol(n) if graph.op(n) == "size" else var_symbol(n, graph.shape(n))
                                    for n in graph.named_nodes()}
    for n in ext.nx:
        owner = ext.attrs(n).get("adjoint_of")
        if owner is not None and n not in graph:
            symbols[n] = var_symbol("·", graph.shape(owner))
    conv = Converter(ext, symbols)
    return {key: rule_text(conv(n), None) for key, n in rules.items()}


# ============================================================================= the adjoint graph


def add_backward(graph: Graph, scene: Scene, view: str, ids: dict[str, str], eqs: NodeEquations,
                 only: bool) -> None:
    """Add the adjoint nodes and edges of ``scene.of`` to ``scene`` (``only``: drop the forward part)."""
    of = scene.of
    assert of is not None
    if of not in graph:
        raise RenderError(f"of={of!r} is not a node of the graph", hint="names: " + ", ".join(graph.named_nodes()))
    if not is_scalar(graph.shape(of)):
        raise RenderError(f"of={of!r} is not a scalar, so it has no backward picture",
                          hint="pass a scalar loss as of=")
    equations = {e.var: e for e in backprop(graph, of)}
    shown = {n.var for n in scene.nodes if n.var is not None}
    groups = {n.var: n.group for n in scene.nodes if n.var is not None}
    if only:
        scene.nodes = []
        scene.edges = []
    taken = set(ids.values())
    bar = {}

    def adj_id(v: str) -> str:
        if v not in bar:
            bar[v] = adjoint_name(ids[v], taken)
            taken.add(bar[v])
        return bar[v]

    if view == "variables":
        for v, e in equations.items():
            if v not in shown:
                continue
            node = SceneNode(adj_id(v), "adjoint", str(e), var=v, adjoint=True,
                        side=graph.op(v) in SIDE_KINDS, group=groups.get(v))
            node.tooltip = [str(e), f"∂{pretty(of)}/∂{pretty(v)}, shape {fmt(graph.shape(v))}"]
            scene.nodes.append(node)
            _add_adjoint_tip(scene, v, str(e))
            if not only:
                scene.same_rank.append((v, node.id))
        for v, e in equations.items():
            if v not in shown:
                continue
            for _consumer, contrib in e.terms:
                for src, sym in _adjoint_sources(contrib):
                    if src in shown and src in equations:
                        scene.edges.append(SceneEdge(adj_id(src), adj_id(v), rule_text(contrib, sym), "backward",
                                                f"{pretty(v, bar=True)} += {to_text(contrib)}"))
        return
    bw = reverse(graph, of)
    nodes = [n for n in bw.order if n in shown and graph.op(n) not in ("literal", "size", "const")]
    rules = op_local_rules(graph, [c for n in nodes for c, _ in bw.contributions[n]])
    for v in nodes:
        if v in equations:
            title, tip = str(equations[v]).split(" = ", 1)[0], str(equations[v])
        else:
            title = f"∂{pretty(of)}/∂({eqs.expr(v)})"
            tip = title
        node = SceneNode(adj_id(v), "adjoint", title, var=v, adjoint=True, side=graph.op(v) in SIDE_KINDS,
                    group=groups.get(v))
        node.tooltip = [tip, f"shape {fmt(graph.shape(v))}"]
        scene.nodes.append(node)
        _add_adjoint_tip(scene, v, tip)
        if not only:
            scene.same_rank.append((ids[v], node.id))
    done = set()
    for v in nodes:
        for c, _n in bw.contributions[v]:
            if c not in shown:
                continue
            for i, a in enumerate(graph.args(c)):
                if a == v and (c, i) in rules and (c, i) not in done:
                    done.add((c, i))
                    scene.edges.append(SceneEdge(adj_id(c), adj_id(v), rules[(c, i)], "backward"))


def _add_adjoint_tip(scene: Scene, v: str, text: str) -> None:
    for n in scene.nodes:
        if n.var == v and not n.adjoint:
            n.tooltip.append(text)


__all__ = ["add_backward", "rule_text", "op_local_rules"]
