"""The IR's rules for one node, whoever built it: ops that exist with the right arity, ``args`` that
name nodes, shapes of ints and size names, real finite literals. :meth:`graphgrad.Graph.validate`
(and so :func:`graphgrad.from_networkx`) checks every node with :func:`check_node`.
"""

from __future__ import annotations

import difflib
import math
import numbers
from typing import Any

import networkx as nx

from .errors import (
    ArityError,
    CycleError,
    GraphgradError,
    NamingError,
    ShapeError,
    UnknownOpError,
    node_label,
    shown,
)
from .naming import check_user_name
from .ops import LEAF_KINDS, OPS, PUBLIC_OPS
from .shapes import Shape, normalize

LEAF_OPS = (*LEAF_KINDS, "literal", "size")
"""Leaf ops: the declared kinds, literals (numbers) and sizes used as values."""


def literal_value(v: Any) -> float:
    """The float a literal holds: a real number (int or float, not bool), finite.

    Model text is the reference: ``1e400 * x`` and ``10**400 * x`` are errors there too.

    >>> literal_value(2), literal_value(0.5)
    (2.0, 0.5)
    """
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ShapeError(f"a literal value must be a real number (int or float), got {type(v).__name__} "
                         f"{shown(v)}", hint="write a number, e.g. value=2.0")
    try:
        f = float(v)
    except OverflowError:
        raise ShapeError(f"the number {shown(v)} is too large for a float",
                         hint="write a finite number") from None
    except Exception as e:  # a numbers.Real whose __float__ fails
        raise ShapeError(f"cannot read {shown(v)} as a number: {type(e).__name__}",
                         hint="write a number, e.g. value=2.0") from None
    if not math.isfinite(f):
        raise ShapeError(f"the number {shown(v)} is not finite",
                         hint="write a finite number (as in model text, inf and nan are not literals)")
    return f


def parse_shape(shape: Any) -> Shape:
    """A shape from the forms the builder takes: ``None``/``()``, one dim, or a tuple/list of dims.

    A dim is an int >= 0 or a size name (a valid user name: :func:`check_user_name`).
    """
    if shape is None:
        return ()
    if isinstance(shape, (str, numbers.Integral)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise ShapeError(f"a shape must be a tuple of dims, got {type(shape).__name__} {shown(shape)}",
                         hint="e.g. shape=('K', 'N'); shape=() for a scalar")
    if len(shape) > 2:
        raise ShapeError(f"graphgrad shapes have at most 2 dims, got {len(shape)}: {shown(tuple(shape))}",
                         hint="use vectors [N] and matrices [R, C]")
    dims: list[int | str] = []
    for d in shape:
        if isinstance(d, numbers.Integral) and not isinstance(d, bool):
            if d < 0:
                raise ShapeError(f"a dim must be >= 0, got {int(d)}", hint="use sizes >= 0 or a size name")
            dims.append(int(d))
        elif isinstance(d, str):
            try:
                check_user_name(d)
            except NamingError as e:
                raise ShapeError(f"a size name must be a valid name: {e.message}", hint=e.hint) from None
            dims.append(d)
        else:
            raise ShapeError(f"a dim must be an int or a size name, got {type(d).__name__} {shown(d)}",
                             hint="e.g. shape=('K', 'N') or (3,)")
    return normalize(tuple(dims))


def cycle_error(g: nx.DiGraph) -> CycleError:
    cycle = nx.find_cycle(g)
    nodes = [u for u, _ in cycle]
    path = " -> ".join([*map(str, nodes), str(nodes[0])])
    first = g.nodes[nodes[0]]
    return CycleError(f"the graph has a cycle: {path}", node=str(nodes[0]), line=first.get("line"),
                      col=first.get("col"), hint="a model must be a DAG; define each name once, "
                      "before it is used")


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _where(n: str, a: dict) -> dict[str, Any]:
    return dict(node=node_label(n), line=a.get("line"), col=a.get("col"))


_SHAPE_HINT = "give it shape=(...): () for a scalar, ('N',) for a vector [N], ('K', 'N') for a matrix"


def check_node(g: nx.DiGraph, n: str, a: dict, sizes: dict[str, str]) -> None:
    """Check one node's attributes (not its shape rule) and normalise them in place."""
    for k in ("line", "col"):
        v = a.get(k)
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise GraphgradError(f"{k!r} must be a line/column number >= 1, got {shown(v)}",
                                     node=node_label(n), hint=f"drop {k!r} or set it to a positive int")
            a[k] = int(v)
    where = _where(n, a)
    op = a.get("op")
    if op is None:
        raise UnknownOpError("node has no 'op' attribute", **where,
                             hint="set op to input, param, const, literal, size or an op name")
    if not isinstance(op, str) or (op not in LEAF_OPS and op not in OPS):
        close = difflib.get_close_matches(op, [*LEAF_OPS, *PUBLIC_OPS], n=1) if isinstance(op, str) else []
        raise UnknownOpError(f"unknown op {shown(op)}", **where,
                             hint=(f"did you mean {close[0]}? " if close else "") + "known ops: "
                             + ", ".join([*LEAF_OPS, *PUBLIC_OPS]))
    leaf = op in LEAF_OPS
    arity = 0 if leaf else OPS[op].arity
    if "args" not in a or (leaf and a["args"] is None):
        if not leaf:
            raise ArityError(f"{op} node has no 'args'", **where,
                             hint=f"set args to the tuple of its {arity} operand name{'s' * (arity != 1)}, "
                             f"e.g. args=({', '.join(repr(c) for c in 'abc'[:arity])}{',' * (arity == 1)})")
        a["args"] = ()
    args = a["args"]
    if isinstance(args, list):
        args = a["args"] = tuple(args)
    if not isinstance(args, tuple):
        raise ArityError(f"'args' must be a tuple of node names, got {type(args).__name__} {shown(args)}",
                         **where, hint="e.g. args=('W', 'x'); args=() for a leaf")
    if len(args) != arity:
        raise ArityError(f"{op} takes {arity} operand{'s' * (arity != 1)}, got {len(args)}", **where,
                         hint="leaves (input, param, const, literal, size) take args=()" if leaf else
                         f"give args {arity} node name{'s' * (arity != 1)}")
    for i, x in enumerate(args):
        if not isinstance(x, str):
            raise NamingError(f"operand {i + 1} is {type(x).__name__} {shown(x)}, not a node name", **where,
                              hint="args holds node names (str)")
        if x not in g:
            raise NamingError(f"operand {shown(x)} is not a node", **where,
                              hint="add that node, or fix the name in args")
    preds = g.pred[n]
    if len(preds) != len(set(args)) or any(x not in preds for x in args):
        missing = [x for x in args if x not in preds]
        extra = [p for p in preds if p not in set(args)]
        what = (f"operand {shown(missing[0])} has no edge to this node" if missing else
                f"the edge from {shown(extra[0])} is not an operand")
        raise GraphgradError(f"edges do not match args: {what}", **where,
                             hint="add exactly one edge u -> v for each operand u in v's args")
    anon = a.get("anon")
    if anon is not None and not isinstance(anon, bool):
        raise NamingError(f"'anon' must be True or False, got {shown(anon)}", **where,
                          hint="anon=True marks a generated sub-expression")
    if "value" in a and op != "literal":
        raise GraphgradError(f"only literals carry a 'value', but this is {_a(op)} node", **where,
                             hint="drop 'value', or make it op='literal'")
    if op in ("literal", "size"):
        if a.get("shape") is not None:
            try:
                stored = parse_shape(a["shape"])
            except ShapeError as e:
                stored = e
            if stored != ():
                raise ShapeError(f"{_a(op)} is a scalar, but its 'shape' is {shown(a['shape'])}", **where,
                                 hint="drop 'shape' or set shape=()")
        a["shape"] = ()
    if op == "literal":
        if "value" not in a:
            raise ShapeError("literal has no 'value'", **where, hint="set value to a number, e.g. value=2.0")
        try:
            a["value"] = literal_value(a["value"])
        except ShapeError as e:
            raise ShapeError(e.message, **where, hint=e.hint) from None
        a["anon"] = True
        return
    if anon and leaf:
        raise NamingError(f"{_a(op)} node cannot be anonymous (anon=True)", **where,
                          hint="drop anon: declared leaves and sizes are named")
    a["anon"] = bool(anon)
    a.setdefault("line", None)
    a.setdefault("col", None)
    if op == "size":
        try:
            check_user_name(n)
        except NamingError as e:
            raise NamingError(f"a size node's name must be a valid size name: {e.message}", **where,
                              hint=e.hint) from None
        sizes.setdefault(n, n)
    elif leaf:
        if a.get("shape") is None:
            raise ShapeError(f"{op} has no 'shape'", **where, hint=_SHAPE_HINT)
        try:
            a["shape"] = parse_shape(a["shape"])
        except ShapeError as e:
            raise ShapeError(f"bad 'shape': {e.message}", **where, hint=e.hint) from None
        for d in a["shape"]:
            if isinstance(d, str):
                sizes.setdefault(d, n)
