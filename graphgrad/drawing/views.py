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
from collections.abc import Mapping

from ..errors import RenderError
from ..graph import LEAF_OPS, Graph
from ..naming import pretty
from ..ops import OPS
from ..shapes import fmt, is_scalar
from .backward import add_backward
from .scene import SIDE_KINDS, VIEWS, NodeEquations, Scene, SceneEdge, SceneNode, shape_label

_CIRCLED = "①②③④⑤⑥⑦⑧⑨"


# ============================================================================= helpers


def default_of(graph: Graph) -> str:
    """The last user-named scalar node that is not a leaf (the loss), for the backward view."""
    for n in reversed(graph.topo_order()):
        if graph.is_named(n) and graph.op(n) not in LEAF_OPS and is_scalar(graph.shape(n)):
            return n
    raise RenderError("the graph has no named scalar node to draw the backward pass of",
                      hint="name a scalar loss, or pass of='NAME'")


def commutes(op: str) -> bool:
    """Whether a binary op's operands may be swapped (its OpSpec.commutative): drawn unordered.

    >>> commutes("add"), commutes("matmul"), commutes("sub")
    (True, False, False)
    """
    return OPS[op].commutative


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
          shapes: bool = True, equations: NodeEquations | None = None) -> Scene:
    """The :class:`Scene` of ``graph`` in ``view``; ``backward`` True adds the adjoint graph,
    ``"only"`` draws the adjoint graph alone."""
    if view not in VIEWS:
        raise RenderError(f"unknown view {view!r}", hint="use view='variables' or view='ops'")
    if backward not in (False, True, "only"):
        raise RenderError(f"backward must be True, False or 'only', got {backward!r}")
    keep = keep_between(graph, between)
    eqs = equations or NodeEquations(graph)
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
        add_backward(graph, scene, view, ids, eqs, only=backward == "only")
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


def _var_node(graph: Graph, n: str, shapes: bool, eqs: NodeEquations, clusters: object) -> SceneNode:
    role = _var_role(graph, n)
    shape = fmt(graph.shape(n))
    lines = [shape] if shapes and not is_scalar(graph.shape(n)) else []
    if graph.op(n) in LEAF_OPS:
        tip = [f"{pretty(n)}: {graph.op(n) if graph.op(n) != 'size' else 'size'} {shape}"]
    else:
        tip = [f"{pretty(n)} = {eqs.rhs(n)}", f"shape {shape}"]
    return SceneNode(n, role, pretty(n), lines, tip, var=n, group=cluster_of(clusters, n),
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
                scene.edges.append(SceneEdge(a, v, OPS[op].render.symbol, kind,
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
            scene.nodes.append(SceneNode(ids[n], "literal", f"{graph.attrs(n)['value']:g}", var=n,
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
            node = SceneNode(ids[n], "op", r.symbol, lines, tip, var=n, symbol_shape=r.shape, color=r.color,
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
            label = shape_label(graph.shape(a))
            if ordered:
                label = f"{_CIRCLED[i]} {label}"
            kind = "side" if graph.op(a) in (*SIDE_KINDS, "literal") else "forward"
            scene.edges.append(SceneEdge(ids[a], ids[n], label, kind))


def _owner(node_id: str) -> str:
    return node_id.split(".", 1)[0]


__all__ = ["build", "default_of",
           "commutes", "keep_between", "cluster_of"]
