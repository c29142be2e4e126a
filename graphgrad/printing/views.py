"""What a picture of a graph shows, before any Graphviz: a :class:`Scene` of nodes and edges.

Two views of a :class:`~graphgrad.graph.Graph`:

* ``variables``: one node per user-named variable (the lecture picture); parameters and constants
  as small side nodes; each edge u -> v labelled with the op that first consumes u in v's
  definition; literals and anonymous sub-expressions are folded into the edges.
* ``ops``: one node per op application, labelled with the op table's symbol
  (``OPS[op].render``); edges carry operand shapes (``K×N``) and, for binary ops whose operands do
  not commute (matmul, sub, ...), the operand's position (①, ②).

The backward (adjoint) part adds one node v̄ per node ``of`` depends on, labelled with its
equation, and one edge c̄ -> v̄ per contribution, labelled with the local rule: the contribution
with c̄ written ``·`` (``W₂ᵀ·``, ``⊙ σ′(z)``), i.e. the chain rule step that edge performs.

Every node id is stable and readable: a user name (``z``), ``<owner>.<op>`` for an anonymous
sub-expression of the named variable ``owner`` (``z.matmul``), ``<id>_bar`` for an adjoint.

>>> import graphgrad as gg
>>> g = gg.parse("input x[N]\\nparam W[K, N]\\nh = sigmoid(W @ x)\\nL = sum(h)")
>>> s = build(g, view="variables")
>>> [n.id for n in s.nodes], [(e.src, e.dst, e.label) for e in s.edges]
(['x', 'W', 'h', 'L'], [('W', 'h', '@'), ('x', 'h', '@'), ('h', 'L', 'Σ')])
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from ..errors import RenderError
from ..graph import LEAF_OPS, Graph
from ..naming import adjoint_name, pretty
from ..ops import OPS
from ..shapes import fmt, is_scalar, matrix_form
from .text import to_text

VIEWS = ("variables", "ops")
SIDE_KINDS = ("param", "const", "size")
_CIRCLED = "①②③④⑤⑥⑦⑧⑨"


@dataclass
class Node:
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
class Edge:
    """One drawn edge; ``kind``: forward, side (from a param/const) or backward."""

    src: str
    dst: str
    label: str = ""
    kind: str = "forward"
    tooltip: str = ""


@dataclass
class Scene:
    """The nodes and edges of one picture, plus pairs of node ids to put side by side."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    same_rank: list[tuple[str, str]] = field(default_factory=list)
    of: str | None = None

    def node(self, node_id: str) -> Node:
        """The node with id ``node_id``."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)


# ============================================================================= helpers


def default_of(graph: Graph) -> str:
    """The last user-named scalar node that is not a leaf (the loss), for the backward view."""
    for n in reversed(graph.topo_order()):
        if graph.is_named(n) and graph.op(n) not in LEAF_OPS and is_scalar(graph.shape(n)):
            return n
    raise RenderError("the graph has no named scalar node to draw the backward pass of",
                      hint="name a scalar loss, or pass of='NAME'")


def shape_text(shape: tuple) -> str:
    """An edge's shape label, in matrix form: ``K×N``, ``N×1``, ``1×1``.

    >>> shape_text(("K", "N")), shape_text(("N",)), shape_text(())
    ('K×N', 'N×1', '1×1')
    """
    r, c = matrix_form(shape)
    return f"{r}×{c}"


_COMMUTES: dict[str, bool] = {}


def commutes(op: str) -> bool:
    """Whether a binary op's operands may be swapped, found by trying its NumPy kernel.

    >>> commutes("add"), commutes("matmul"), commutes("sub")
    (True, False, False)
    """
    if op not in _COMMUTES:
        spec = OPS[op]
        lo, hi = spec.domain
        rng = np.random.default_rng(0)
        a, b = (rng.uniform(lo, hi, (3, 3)) for _ in range(2))
        with np.errstate(all="ignore"):
            try:
                _COMMUTES[op] = bool(np.allclose(spec.numpy(a, b), spec.numpy(b, a)))
            except Exception:  # a kernel that rejects square operands: show the order
                _COMMUTES[op] = False
    return _COMMUTES[op]


def keep_between(graph: Graph, between: tuple[str, str] | None) -> set[str] | None:
    """The graph nodes on some path from ``between[0]`` to ``between[1]`` (both included)."""
    if between is None:
        return None
    if not (isinstance(between, (tuple, list)) and len(between) == 2):
        raise RenderError(f"between must be a pair of names, got {between!r}", hint="e.g. between=('x', 'L')")
    a, b = between
    for v in (a, b):
        if v not in graph:
            raise RenderError(f"between: {v!r} is not a node of the graph",
                              hint="names: " + ", ".join(graph.named_nodes()))
    keep = (graph.ancestors(b) | {b}) & (set(_descendants(graph, a)) | {a})
    if a not in keep:
        raise RenderError(f"no path from {a!r} to {b!r}", hint=f"does {b!r} depend on {a!r}? swap them?")
    return keep


def _descendants(graph: Graph, a: str) -> set[str]:
    import networkx as nx

    return nx.descendants(graph.nx, a)


_AUTO = re.compile(r"^.+_(\d+)$")


def cluster_of(clusters: object, name: str) -> str | None:
    """The cluster a user-named node belongs to: ``"auto"`` groups names ending ``_<k>`` by k."""
    if clusters is None:
        return None
    if clusters == "auto":
        m = _AUTO.match(name)
        return f"block {m.group(1)}" if m else None
    if callable(clusters):
        got = clusters(name)
        return None if got is None else str(got)
    if isinstance(clusters, Mapping):
        for label, members in clusters.items():
            if name in members:
                return str(label)
        return None
    raise RenderError(f"clusters must be 'auto', a dict or a function, got {type(clusters).__name__}",
                      hint="e.g. clusters='auto' (names ending _1, _2, ...) or {'block 1': ['z_1', 'h_1']}")


class Equations:
    """Forward definitions of the graph's nodes as Unicode text (SymPy, named nodes as symbols)."""

    def __init__(self, graph: Graph) -> None:
        from ..symbolic import Converter, model_rank, size_symbol, var_symbol

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


# ============================================================================= rules


def rule_text(expr: sp.Basic, source: sp.Basic | None) -> str:
    """The local rule of a contribution: ``expr`` with the adjoint ``source`` written ``·``.

    Other adjoints in ``expr`` (a sub-expression shared by two variables) are set to zero.
    ``· ⊙ σ′(z)`` is shortened to ``⊙ σ′(z)``, ``W₂ᵀ ·`` to ``W₂ᵀ·`` and ``·`` alone to ``id``.
    """
    from ..symbolic import AdjointMatrix, AdjointSymbol

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
    from ..symbolic import AdjointMatrix, AdjointSymbol

    found = [a for a in expr.free_symbols if isinstance(a, (AdjointMatrix, AdjointSymbol))]
    return sorted(((a.name, a) for a in found), key=lambda t: t[0])


def op_local_rules(graph: Graph, nodes: Iterable[str]) -> dict[tuple[str, int], str]:
    """The local rule of every op edge: ``(consumer, operand index) -> rule``, from the op table.

    Each consumer's ``vjp`` is emitted with its own adjoint as a placeholder ``·``, so each rule
    is the op's derivative alone (``W₁ᵀ·`` for operand 2 of ``W₁ @ x``).
    """
    from ..autodiff import Emitter
    from ..symbolic import Converter, size_symbol, var_symbol

    ext = graph.copy()
    b = Emitter(ext)
    pending: list[tuple[str, int, str]] = []
    symbols: dict[str, sp.Basic] = {n: size_symbol(n) if graph.op(n) == "size" else var_symbol(n, graph.shape(n))
                                    for n in graph.named_nodes()}
    for c in nodes:
        op = graph.op(c)
        if op in LEAF_OPS:
            continue
        ph = adjoint_name(c, ext.nx)
        ext.nx.add_node(ph, op="input", args=(), shape=graph.shape(c), anon=False)
        symbols[ph] = var_symbol("·", graph.shape(c))
        for i, (arg, contrib) in enumerate(zip(graph.args(c), OPS[op].vjp(b, c, ph, *graph.args(c)))):
            if contrib is not None and graph.op(arg) not in ("literal", "size"):
                pending.append((c, i, contrib))
    ext._invalidate()
    conv = Converter(ext, symbols)
    return {(c, i): rule_text(conv(n), None) for c, i, n in pending}


# ============================================================================= the views


def _leaf_role(graph: Graph, n: str) -> str:
    op = graph.op(n)
    return "const" if op == "size" else op


def _var_role(graph: Graph, n: str) -> str:
    op = graph.op(n)
    if op in LEAF_OPS:
        return _leaf_role(graph, n)
    return "loss" if is_scalar(graph.shape(n)) else "intermediate"


def _named_sources(graph: Graph, v: str) -> list[tuple[str, str]]:
    """Named operands of ``v`` through anonymous sub-expressions: (operand, op first consuming it)."""
    out: dict[str, str] = {}
    stack = [v]
    seen = {v}
    order: list[tuple[str, str]] = []
    while stack:
        n = stack.pop()
        for a in graph.args(n):
            if graph.op(a) == "literal":
                continue
            if graph.is_named(a):
                order.append((a, graph.op(n)))
            elif a not in seen:
                seen.add(a)
                stack.append(a)
    for a, op in order:
        out.setdefault(a, op)
    return list(out.items())


def build(graph: Graph, *, view: str = "variables", backward: bool | str = False, of: str | None = None,
          params: bool = True, between: tuple[str, str] | None = None, clusters: object = None,
          shapes: bool = True, equations: Equations | None = None) -> Scene:
    """The :class:`Scene` of ``graph`` in ``view``; ``backward`` True adds the adjoint graph,
    ``"only"`` draws the adjoint graph alone."""
    if view not in VIEWS:
        raise RenderError(f"unknown view {view!r}", hint="use view='variables' or view='ops'")
    if backward not in (False, True, "only"):
        raise RenderError(f"backward must be True, False or 'only', got {backward!r}")
    keep = keep_between(graph, between)
    eqs = equations or Equations(graph)
    scene = Scene()
    ids = _ids(graph) if view == "ops" else {n: n for n in graph.named_nodes()}
    if view == "variables":
        _variables(graph, scene, keep, params, clusters, shapes, eqs)
    else:
        _ops(graph, scene, keep, params, clusters, ids, eqs)
    if clusters == "auto":  # a block of one is no block
        count: dict[str | None, int] = {}
        for n in scene.nodes:
            count[n.group] = count.get(n.group, 0) + 1
        for n in scene.nodes:
            if count[n.group] < 2:
                n.group = None
    if backward:
        scene.of = of or default_of(graph)
        _backward(graph, scene, view, ids, keep, params, eqs, only=backward == "only")
    return scene


def _visible(graph: Graph, n: str, keep: set[str] | None, params: bool) -> bool:
    if graph.op(n) in SIDE_KINDS:
        if not params:
            return False
        return keep is None or any(c in keep for c in _named_consumers(graph, n))
    return keep is None or n in keep


def _named_consumers(graph: Graph, n: str) -> list[str]:
    """Nodes reached from ``n`` through anonymous sub-expressions only (named ones and anon)."""
    out, stack, seen = [], [n], {n}
    while stack:
        m = stack.pop()
        for c in graph.consumers(m):
            if c not in seen:
                seen.add(c)
                out.append(c)
                if not graph.is_named(c):
                    stack.append(c)
    return out


def _var_node(graph: Graph, n: str, shapes: bool, eqs: Equations, clusters: object) -> Node:
    role = _var_role(graph, n)
    shape = fmt(graph.shape(n))
    lines = [shape] if shapes and not is_scalar(graph.shape(n)) else []
    if graph.op(n) in LEAF_OPS:
        tip = [f"{pretty(n)}: {graph.op(n) if graph.op(n) != 'size' else 'size'} {shape}"]
    else:
        tip = [f"{pretty(n)} = {eqs.rhs(n)}", f"shape {shape}"]
    return Node(n, role, pretty(n), lines, tip, var=n, group=cluster_of(clusters, n),
                side=graph.op(n) in SIDE_KINDS)


def _variables(graph: Graph, scene: Scene, keep, params, clusters, shapes, eqs) -> None:
    for n in graph.named_nodes():
        if _visible(graph, n, keep, params):
            scene.nodes.append(_var_node(graph, n, shapes, eqs, clusters))
    shown = {n.id for n in scene.nodes}
    for v in graph.named_nodes():
        if v not in shown or graph.op(v) in LEAF_OPS:
            continue
        for a, op in sorted(_named_sources(graph, v), key=lambda t: (graph.op(t[0]) not in SIDE_KINDS, 0)):
            if a in shown:
                kind = "side" if graph.op(a) in SIDE_KINDS else "forward"
                scene.edges.append(Edge(a, v, OPS[op].render.symbol, kind,
                                        f"{pretty(v)} = {eqs.rhs(v)}"))


def _ids(graph: Graph) -> dict[str, str]:
    """Stable ids: user names, ``<owner>.<op>`` for anonymous nodes in ``owner``'s definition."""
    ids: dict[str, str] = {}
    taken: set[str] = set(graph.named_nodes())
    for n in graph.named_nodes():
        ids[n] = n
    owners = graph.named_nodes() + [n for n in graph.topo_order() if not graph.is_named(n)]
    for owner in owners:
        stack = [owner]
        while stack:
            m = stack.pop()
            for a in reversed(graph.args(m)):
                if a in ids:
                    continue
                kind = "lit" if graph.op(a) == "literal" else graph.op(a)
                base = f"{owner}.{kind}"
                name, k = base, 1
                while name in taken:
                    k += 1
                    name = f"{base}{k}"
                ids[a] = name
                taken.add(name)
                stack.append(a)
        if owner not in ids:
            ids[owner] = f"expr.{graph.op(owner)}"
    return ids


def _ops(graph: Graph, scene: Scene, keep, params, clusters, ids, eqs) -> None:
    shown: set[str] = set()
    for n in graph.topo_order():
        op = graph.op(n)
        if op == "literal":
            consumers = graph.consumers(n)
            if keep is not None and not any(c in keep for c in consumers):
                continue
            scene.nodes.append(Node(ids[n], "literal", f"{graph.attrs(n)['value']:g}", var=n,
                                    tooltip=[f"the number {graph.attrs(n)['value']:g}"]))
            shown.add(n)
            continue
        if not _visible(graph, n, keep, params):
            continue
        if op in LEAF_OPS:
            node = _var_node(graph, n, True, eqs, clusters)
        else:
            r = OPS[op].render
            named = graph.is_named(n)
            lines = [pretty(n)] if named else []
            tip = [f"{pretty(n)} = {eqs.rhs(n)}" if named else eqs.expr(n), f"op {op}, shape {fmt(graph.shape(n))}"]
            node = Node(ids[n], "op", r.symbol, lines, tip, var=n, symbol_shape=r.shape, color=r.color,
                        group=cluster_of(clusters, _owner(ids[n])))
            if named:
                node.role = "op-loss" if is_scalar(graph.shape(n)) else "op-named"
        node.id = ids[n]
        scene.nodes.append(node)
        shown.add(n)
    for n in graph.topo_order():
        if n not in shown or graph.op(n) in LEAF_OPS:
            continue
        args = graph.args(n)
        ordered = len(args) == 2 and not commutes(graph.op(n))
        for i, a in enumerate(args):
            if a not in shown:
                continue
            label = shape_text(graph.shape(a))
            if ordered:
                label = f"{_CIRCLED[i]} {label}"
            kind = "side" if graph.op(a) in (*SIDE_KINDS, "literal") else "forward"
            scene.edges.append(Edge(ids[a], ids[n], label, kind))


def _owner(node_id: str) -> str:
    return node_id.split(".", 1)[0]


def _backward(graph: Graph, scene: Scene, view: str, ids: dict[str, str], keep, params, eqs,
              only: bool) -> None:
    from ..symbolic import backprop

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
            node = Node(adj_id(v), "adjoint", str(e), var=v, adjoint=True,
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
                        scene.edges.append(Edge(adj_id(src), adj_id(v), rule_text(contrib, sym), "backward",
                                                f"{pretty(v, bar=True)} += {to_text(contrib)}"))
        return
    from ..autodiff import backward as reverse

    bw = reverse(graph, of)
    nodes = [n for n in bw.order if n in shown and graph.op(n) not in ("literal", "size", "const")]
    rules = op_local_rules(graph, [c for n in nodes for c, _ in bw.contributions[n]])
    for v in nodes:
        if v in equations:
            title, tip = str(equations[v]).split(" = ", 1)[0], str(equations[v])
        else:
            title = f"∂{pretty(of)}/∂({eqs.expr(v)})"
            tip = title
        node = Node(adj_id(v), "adjoint", title, var=v, adjoint=True, side=graph.op(v) in SIDE_KINDS,
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
                    scene.edges.append(Edge(adj_id(c), adj_id(v), rules[(c, i)], "backward"))


def _add_adjoint_tip(scene: Scene, v: str, text: str) -> None:
    for n in scene.nodes:
        if n.var == v and not n.adjoint:
            n.tooltip.append(text)


__all__ = ["Node", "Edge", "Scene", "Equations", "VIEWS", "build", "default_of", "rule_text",
           "op_local_rules", "shape_text", "commutes", "keep_between", "cluster_of"]
