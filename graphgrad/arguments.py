"""Argument checks at the public entry points: a clear one-line error, never a deep TypeError.

>>> from graphgrad import parse
>>> g = parse("input x\\nL = x * x")
>>> wrt_list(g, "x"), check_outputs(g, None)
(['x'], ['x', 'L'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import DerivationError, InputError, NamingError, node_label, shown
from .graph import Graph


def check_graph(graph: Any, fn: str) -> Graph:
    """``graph`` must be a :class:`Graph`."""
    if not isinstance(graph, Graph):
        raise InputError(f"{fn} takes a graphgrad.Graph, got {type(graph).__name__} {shown(graph)}",
                         hint="build one with graphgrad.parse, graphgrad.load or graphgrad.from_networkx")
    return graph


def check_node_name(graph: Graph, name: Any, what: str) -> str:
    """``name`` (the argument ``what``) must be a str naming a node of ``graph``."""
    if not isinstance(name, str):
        raise NamingError(f"{what} must be a node name (str), got {type(name).__name__} {shown(name)}",
                          node=node_label(name), hint=f"pass {what}='L'; named nodes: "
                          + graph.names_text())
    if name not in graph:
        raise NamingError(f"{what} {shown(name)} is not defined", node=node_label(name),
                          hint=f"{what} must name a node: " + graph.names_text())
    return name


def check_wrt(graph: Graph, wrt: Any) -> str | list[str] | None:
    """``wrt`` must be None, one node name or an iterable of them; returns it with a list for an
    iterable (so a generator is read once)."""
    if wrt is None or isinstance(wrt, str):
        return wrt if wrt is None else check_node_name(graph, wrt, "wrt")
    if isinstance(wrt, (bytes, Mapping)) or not isinstance(wrt, Iterable):
        raise NamingError(f"wrt must be a node name or a list of them, got {type(wrt).__name__} {shown(wrt)}",
                          node=node_label(wrt), hint="pass wrt='x' or wrt=['x', 'W1']")
    ws = list(wrt)
    for w in ws:
        check_node_name(graph, w, "wrt")
    return ws


def check_mapping(x: Any, what: str, *, keys: str = "names") -> dict:
    """``x`` (the argument ``what``) must be None or a mapping with str keys; returns a dict."""
    if x is None:
        return {}
    if not isinstance(x, Mapping):
        raise InputError(f"{what} must be a dict {{name: value}}, got {type(x).__name__} {shown(x)}",
                         hint=f"pass {what}={{'x': ...}}")
    for k in x:
        if not isinstance(k, str):
            raise InputError(f"{what} keys must be {keys} (str), got {type(k).__name__} {shown(k)}",
                             node=node_label(k), hint=f"pass {what}={{'x': ...}}")
    return dict(x)


def check_outputs(graph: Graph, outputs: Iterable[str] | None) -> list[str]:
    """``outputs`` as a list of node names (default: every named node), each checked."""
    if outputs is None:
        return graph.named_nodes()
    if isinstance(outputs, str):
        outputs = [outputs]
    if isinstance(outputs, (bytes, Mapping)) or not isinstance(outputs, Iterable):
        raise NamingError(f"outputs must be a list of names, got {type(outputs).__name__}",
                          hint="e.g. outputs=['h', 'L']")
    return [check_node_name(graph, o, "outputs") for o in outputs]


def wrt_list(graph: Graph, wrt: str | Iterable[str] | None) -> list[str]:
    """``wrt`` as a list of node names (default: every leaf), none of them a number."""
    if wrt is None:
        return graph.leaves()
    ws = check_wrt(graph, wrt)
    ws = [ws] if isinstance(ws, str) else ws
    for w in ws:
        if graph.op(w) in ("literal", "size"):
            raise DerivationError(f"cannot differentiate with respect to {graph.describe(w)}", node=w)
    return ws
