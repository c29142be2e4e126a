"""The graph IR: a NetworkX DAG of op applications, with validation and topological order.

Each node of the ``networkx.DiGraph`` carries

* ``op``: ``input``, ``param``, ``const`` (declared, fed values), ``literal`` (a number, ``value``
  holds it), ``size`` (a size name used as a scalar), or an op name from :data:`graphgrad.ops.OPS`;
* ``args``: the ordered tuple of operand node names (authoritative: edges carry no order, and
  ``x * x`` uses one operand twice);
* ``shape``: a tuple of ints and/or size names, ``()`` for a scalar;
* optionally ``value`` (literals), ``line``/``col`` (where model text defined it) and ``anon``
  (True for generated sub-expression nodes).

There is an edge u -> v exactly when u is in v's ``args``. Names users write never start with
``_``; generated names (``_t1``, ``_t2``, ...) always do, so they cannot clash.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Iterator
from typing import Any, Union

import networkx as nx

from .errors import (
    ArityError,
    GraphgradError,
    InputError,
    NamingError,
    ShapeError,
    UnknownOpError,
    node_label,
    shown,
)
from .hooks import SVG
from .naming import check_user_name, fresh_name
from .node_rules import LEAF_OPS, _a, _where, check_node, cycle_error, literal_value, parse_shape
from .ops import LEAF_KINDS, OPS, PUBLIC_OPS
from .shapes import Shape, fmt, normalize


class Var:
    """A handle on one node of a :class:`Graph`, with operator overloading (the Python builder).

    >>> g = Graph()
    >>> W, x = g.param("W", ("K", "N")), g.input("x", "N")
    >>> (W @ x).shape
    ('K',)
    """

    __slots__ = ("graph", "name")
    __array_priority__ = 1000  # NumPy scalars defer to Var's reflected operators

    def __init__(self, graph: Graph, name: str) -> None:
        self.graph = graph
        self.name = name

    @property
    def shape(self) -> Shape:
        """The node's shape."""
        return self.graph.shape(self.name)

    @property
    def op(self) -> str:
        """The node's op."""
        return self.graph.op(self.name)

    @property
    def T(self) -> Var:  # noqa: N802 - the maths spelling
        """Transpose."""
        return self.graph.apply("transpose", self)

    def named(self, name: str) -> Var:
        """Give this value a user name (``z = (W1 @ x + b1).named("z")``)."""
        return self.graph.name_node(self, name)

    def _bin(self, op: str, other: Any, reflected: bool = False) -> Var:
        a, b = (other, self) if reflected else (self, other)
        return self.graph.apply(op, a, b)

    def __add__(self, o: Any) -> Var:
        return self._bin("add", o)

    def __radd__(self, o: Any) -> Var:
        return self._bin("add", o, True)

    def __sub__(self, o: Any) -> Var:
        return self._bin("sub", o)

    def __rsub__(self, o: Any) -> Var:
        return self._bin("sub", o, True)

    def __mul__(self, o: Any) -> Var:
        return self._bin("mul", o)

    def __rmul__(self, o: Any) -> Var:
        return self._bin("mul", o, True)

    def __truediv__(self, o: Any) -> Var:
        return self._bin("div", o)

    def __rtruediv__(self, o: Any) -> Var:
        return self._bin("div", o, True)

    def __matmul__(self, o: Any) -> Var:
        return self._bin("matmul", o)

    def __rmatmul__(self, o: Any) -> Var:
        return self._bin("matmul", o, True)

    def __pow__(self, o: Any) -> Var:
        return self._bin("pow", o)

    def __neg__(self) -> Var:
        return self.graph.apply("neg", self)

    def __pos__(self) -> Var:
        return self

    def __repr__(self) -> str:
        return f"Var({self.name!r}, op={self.op!r}, shape={fmt(self.shape)})"

    def __str__(self) -> str:
        return self.name

    def __hash__(self) -> int:
        return hash((id(self.graph), self.name))

    def __eq__(self, other: object) -> bool:  # identity of the node, not an equation
        return isinstance(other, Var) and other.graph is self.graph and other.name == self.name


Operand = Union[Var, str, numbers.Real]


class Graph:
    """A model: a NetworkX DAG of op applications.

    Build one with the text front end (:func:`graphgrad.parse`), with this builder, or from a
    hand-made ``networkx.DiGraph`` (:func:`graphgrad.from_networkx`).

    >>> g = Graph()
    >>> W, x = g.param("W", (2, 3)), g.input("x", 3)
    >>> h = g.apply("sigmoid", W @ x, name="h")
    >>> g.topo_order()
    ['W', 'x', '_t1', 'h']
    """

    def __init__(self, nxgraph: nx.DiGraph | None = None) -> None:
        self._g = nxgraph if nxgraph is not None else nx.DiGraph()
        self._topo: list[str] | None = None
        self._counter = 0
        self._dims: set[str] | None = None  # size names in declared shapes (None: not yet collected)
        self.cache: dict = {}  # derived results (reverse pass, compiled code); cleared on change

    def _invalidate(self) -> None:
        self._topo = None
        self.cache.clear()

    # ------------------------------------------------------------------ building
    def _declare(self, kind: str, name: str, shape: Any, line=None, col=None) -> Var:
        check_user_name(name, line=line, col=col)
        if name in self._g:
            raise NamingError(f"{name!r} is already defined", node=name, line=line, col=col,
                             hint="give it another name")
        try:
            dims = parse_shape(shape)
        except ShapeError as e:
            raise ShapeError(e.message, node=name, line=line, col=col, hint=e.hint) from None
        for d in dims:
            if isinstance(d, str) and d in self._g and self._g.nodes[d]["op"] != "size":
                raise NamingError(f"{d!r} is {_a(self._g.nodes[d]['op'])}, so it cannot also be a size",
                                  node=name, line=line, col=col, hint="rename the variable or the size")
        if self._dims is None:
            self._dims = {d for _, a in self._g.nodes(data=True) if a.get("op") in LEAF_KINDS
                          for d in a.get("shape", ()) if isinstance(d, str)}
        if name in self._dims:
            raise NamingError(f"{name!r} is used as a size, so it cannot also be a variable", node=name,
                              line=line, col=col, hint="rename the variable or the size")
        self._dims.update(d for d in dims if isinstance(d, str))
        self._g.add_node(name, op=kind, args=(), shape=dims, line=line, col=col, anon=False)
        self._invalidate()
        return Var(self, name)

    def input(self, name: str, shape: Any = ()) -> Var:
        """Declare an input (data fed at evaluation; may carry a leading batch axis)."""
        return self._declare("input", name, shape)

    def param(self, name: str, shape: Any = ()) -> Var:
        """Declare a parameter (what one trains)."""
        return self._declare("param", name, shape)

    def const(self, name: str, shape: Any = ()) -> Var:
        """Declare a constant (fed, but not trained)."""
        return self._declare("const", name, shape)

    def literal(self, value: float) -> Var:
        """A numeric constant node."""
        v = literal_value(value)
        name = self._fresh()
        self._g.add_node(name, op="literal", args=(), shape=(), value=v, anon=True)
        self._invalidate()
        return Var(self, name)

    def size(self, name: str) -> Var:
        """A size name (``n`` in ``input X[n, d]``) used as a scalar value."""
        if name in self._g:
            if self._g.nodes[name]["op"] != "size":
                raise NamingError(f"{name!r} is a variable, not a size", node=name)
            return Var(self, name)
        check_user_name(name)
        self._g.add_node(name, op="size", args=(), shape=(), anon=False)
        self._invalidate()
        return Var(self, name)

    def _fresh(self) -> str:
        self._counter, name = fresh_name(self._counter, self._g)
        return name

    def _operand(self, a: Operand) -> str:
        if isinstance(a, Var):
            if a.graph is not self:
                raise GraphgradError(f"{a.name!r} belongs to another graph",
                                     hint="build each model from one Graph")
            return a.name
        if isinstance(a, bool):
            raise ShapeError(f"{a!r} is not a number graphgrad can use")
        if isinstance(a, numbers.Real):
            return self.literal(float(a)).name
        if isinstance(a, str):
            if a not in self._g:
                raise NamingError(f"{a!r} is not defined", node=a, hint="declare it first")
            return a
        raise GraphgradError(f"cannot use {type(a).__name__} {a!r} as an operand",
                             hint="use a Var, a node name or a number")

    def apply(self, op: str, *args: Operand, name: str | None = None, line: int | None = None,
              col: int | None = None) -> Var:
        """Add ``op(*args)`` as a node (checked: known op, arity, shapes) and return it."""
        where = dict(node=name, line=line, col=col)
        spec = OPS.get(op)
        if spec is None:
            raise UnknownOpError(f"unknown op {op!r}", **where,
                                 hint="known ops: " + ", ".join(PUBLIC_OPS))
        if len(args) != spec.arity:
            raise ArityError(f"{op} takes {spec.arity} operand{'s' * (spec.arity != 1)}, "
                             f"got {len(args)}", **where)
        if name is not None:
            check_user_name(name, line=line, col=col)
            if name in self._g:
                raise NamingError(f"{name!r} is already defined", **where, hint="give it another name")
        names = tuple(self._operand(a) for a in args)
        for i in spec.const_args:
            if self._g.nodes[names[i]]["op"] != "literal":
                raise ShapeError(f"operand {i + 1} of {op} must be a numeric constant, "
                                 f"got {self.describe(names[i])}", **where,
                                 hint="write a number, e.g. x**2; for a variable exponent use exp(b * log(a))")
        try:
            shape = spec.shape(*(self._g.nodes[n]["shape"] for n in names))
        except ShapeError as e:
            hint = e.hint
            if op == "matmul" and hint and hint.startswith("did you mean to transpose"):
                a, b = (self._label(n) for n in names)
                hint = f"did you mean {a}.T @ {b}?" if "left" in hint else f"did you mean {a} @ {b}.T?"
            raise ShapeError(f"{op}: {e.message}", **where, hint=hint) from None
        node = name if name is not None else self._fresh()
        self._g.add_node(node, op=op, args=names, shape=normalize(shape), line=line, col=col,
                         anon=name is None)
        for n in set(names):
            self._g.add_edge(n, node)
        self._invalidate()
        return Var(self, node)

    def _label(self, n: str) -> str:
        """How messages refer to an operand: its name, or (…) for a sub-expression."""
        return n if self.is_named(n) else "(…)"

    def name_node(self, v: Operand, name: str, line: int | None = None, col: int | None = None) -> Var:
        """Give a value a user name: renames a fresh sub-expression, else adds an ``id`` node."""
        node = self._operand(v)
        check_user_name(name, line=line, col=col)
        if name in self._g:
            raise NamingError(f"{name!r} is already defined", node=name, line=line, col=col,
                             hint="give it another name")
        attrs = self._g.nodes[node]
        if attrs.get("anon") and attrs["op"] not in LEAF_OPS:
            relabel(self._g, node, name)
            attrs = self._g.nodes[name]
            attrs["anon"] = False
            if line is not None:
                attrs["line"], attrs["col"] = line, col
            for s in self._g.successors(name):
                sa = self._g.nodes[s]
                sa["args"] = tuple(name if a == node else a for a in sa["args"])
            self._invalidate()
            return Var(self, name)
        return self.apply("id", node, name=name, line=line, col=col)

    # ------------------------------------------------------------------ what graphgrad adds
    def add_generated(self, name: str, op: str, args: tuple[str, ...] = (), shape: Shape = (), **attrs: Any) -> str:
        """Add a node graphgrad itself made -- a reverse-pass op, a placeholder or tangent leaf, a
        literal -- with no user-name check (``name`` comes from :mod:`graphgrad.naming`); edges come
        from ``args``. The one way besides the builders that a graph grows.

        >>> g = Graph(); x = g.input("x", "N")
        >>> g.add_generated("x_bar", "input", shape=("N",), anon=False, adjoint_of="x")
        'x_bar'
        """
        self._g.add_node(name, op=op, args=tuple(args), shape=normalize(shape), **attrs)
        for a in set(args):
            self._g.add_edge(a, name)
        self._invalidate()
        return name

    def rename_generated(self, mapping: dict[str, str], attrs: dict[str, dict] | None = None) -> None:
        """Rename generated nodes ``old -> new`` in one pass (consumers' ``args`` follow) and update
        the renamed nodes' attributes (``attrs[new]``); linear in the nodes touched."""
        nx.relabel_nodes(self._g, mapping, copy=False)
        for new in mapping.values():
            self._g.nodes[new].update((attrs or {}).get(new, {}))
            for s in self._g.successors(new):
                self._g.nodes[s]["args"] = tuple(mapping.get(a, a) for a in self._g.nodes[s]["args"])
        self._invalidate()

    # ------------------------------------------------------------------ queries
    @property
    def nx(self) -> nx.DiGraph:
        """The underlying ``networkx.DiGraph`` (read it; change it through this class)."""
        return self._g

    def names_text(self, limit: int = 60) -> str:
        """Every named node (inputs, params and consts too), for a message: ``x, W1, h, L``; past
        ``limit`` names, the first and last halves around ``… (N more) …``.

        >>> Graph().input("x", "N").graph.names_text()
        'x'
        """
        names = [node_label(n) for n in self.named_nodes()]
        if len(names) > limit:
            half = limit // 2
            names = [*names[:half], f"… ({len(names) - 2 * half} more) …", *names[-half:]]
        return ", ".join(names)

    def to_networkx(self) -> nx.DiGraph:
        """A copy of the underlying DiGraph, with every node attribute."""
        return self._g.copy()

    def __contains__(self, name: object) -> bool:
        return name in self._g

    def __len__(self) -> int:
        return self._g.number_of_nodes()

    def __iter__(self) -> Iterator[str]:
        return iter(self.topo_order())

    def __getitem__(self, name: str) -> Var:
        if name not in self._g:
            raise NamingError(f"{name!r} is not defined", node=name,
                             hint="defined names: " + ", ".join(self.named_nodes()))
        return Var(self, name)

    def op(self, n: str) -> str:
        """The node's op."""
        return self._g.nodes[n]["op"]

    def args(self, n: str) -> tuple[str, ...]:
        """The node's ordered operands."""
        return self._g.nodes[n]["args"]

    def shape(self, n: str) -> Shape:
        """The node's shape."""
        return self._g.nodes[n]["shape"]

    def attrs(self, n: str) -> dict[str, Any]:
        """All of the node's attributes."""
        return self._g.nodes[n]

    def is_named(self, n: str) -> bool:
        """Whether the user named this node (leaves and named equations)."""
        a = self._g.nodes[n]
        return not a.get("anon", False) and a["op"] != "literal"

    def named_nodes(self) -> list[str]:
        """User-named nodes in topological order."""
        return [n for n in self.topo_order() if self.is_named(n)]

    def leaves(self, *kinds: str) -> list[str]:
        """Declared leaves of the given kinds (default: input, param, const), in order."""
        kinds = kinds or LEAF_KINDS
        return [n for n in self.topo_order() if self.op(n) in kinds]

    def consumers(self, n: str) -> list[str]:
        """Nodes that use ``n`` as an operand."""
        return list(self._g.successors(n))

    def size_names(self) -> list[str]:
        """Every size name used in a shape or as a value."""
        seen: dict[str, None] = {}
        for n in self.topo_order():
            for d in self.shape(n):
                if isinstance(d, str):
                    seen[d] = None
            if self.op(n) == "size":
                seen[n] = None
        return list(seen)

    def topo_order(self) -> list[str]:
        """Nodes in a topological order (operands first), stable in insertion order."""
        if self._topo is None:
            try:
                pos = {m: i for i, m in enumerate(self._g.nodes)}
                self._topo = list(nx.lexicographical_topological_sort(self._g, key=pos.__getitem__))
            except nx.NetworkXUnfeasible:
                raise cycle_error(self._g) from None
        return self._topo

    def ancestors(self, n: str) -> set[str]:
        """Everything ``n`` depends on (iterative)."""
        return nx.ancestors(self._g, n)

    def describe(self, n: str) -> str:
        """One phrase for messages: ``'z' (add, [K])``."""
        a = self._g.nodes[n]
        if a["op"] == "literal":
            return f"the number {a['value']:g}"
        return f"{n!r} ({a['op']}, {fmt(a['shape'])})"

    def where(self, n: str) -> dict[str, Any]:
        """Keyword arguments locating node ``n`` for an error."""
        a = self._g.nodes[n]
        return dict(node=n, line=a.get("line"), col=a.get("col"))

    # ------------------------------------------------------------------ checking
    def validate(self) -> Graph:
        """Check the whole graph and bring every node to the IR's form. Returns self.

        Checks names (strings), ops, ``args`` (a tuple of existing node names, of the op's arity,
        matching the edges), acyclicity, shapes (required on input/param/const; computed, or
        checked when given, for ops), literal values (finite real numbers), and that no size name
        is also a variable. Normalises as the builder stores nodes: leaves get ``args=()``,
        literals a float ``value``, every node ``anon`` (and ``line``/``col``, None when unknown).
        """
        g = self._g
        for n in g:
            if not isinstance(n, str):
                raise NamingError(f"node names must be strings, got {type(n).__name__} {shown(n)}",
                                  node=shown(n), hint="name every node with a str (any string, e.g. 'h1')")
        sizes: dict[str, str] = {}  # size name -> a node whose shape uses it
        for n, a in g.nodes(data=True):
            check_node(g, n, a, sizes)
        for d, user in sizes.items():
            if d in g and g.nodes[d]["op"] != "size":
                raise NamingError(f"{shown(d)} is a size name (in the shape of {shown(user)}), so it cannot "
                                  f"also be {_a(g.nodes[d]['op'])} node", **_where(d, g.nodes[d]),
                                  hint="rename the node or the size")
        self._invalidate()
        order = self.topo_order()
        for n in order:
            a = g.nodes[n]
            if a["op"] in LEAF_OPS:
                continue
            spec = OPS[a["op"]]
            for i in spec.const_args:
                if g.nodes[a["args"][i]]["op"] != "literal":
                    raise ShapeError(f"operand {i + 1} of {spec.name} must be a literal", **self.where(n),
                                     hint="make that operand a node with op='literal' and a value")
            try:
                shape = normalize(spec.shape(*(g.nodes[x]["shape"] for x in a["args"])))
            except ShapeError as e:
                raise ShapeError(f"{spec.name}: {e.message}", **self.where(n), hint=e.hint) from None
            if a.get("shape") is not None:
                try:
                    stored = parse_shape(a["shape"])
                except ShapeError as e:
                    raise ShapeError(f"bad 'shape': {e.message}", **self.where(n),
                                     hint="fix or drop the 'shape' attribute") from None
                if stored != shape:
                    raise ShapeError(f"stored shape {fmt(stored)} but the shape rule gives {fmt(shape)}",
                                     **self.where(n), hint="fix or drop the 'shape' attribute")
            a["shape"] = shape
        return self

    # ------------------------------------------------------------------ comparing and showing
    def __eq__(self, other: object) -> bool:
        """Structural equality: same named nodes computing the same expressions."""
        if not isinstance(other, Graph):
            return NotImplemented
        return self._canonical() == other._canonical()

    def _canonical(self) -> frozenset:
        # a Merkle hash per node: op, shape, value, user name, and the operands' hashes in order;
        # anonymous sub-expressions are thereby compared by structure, not by generated name
        key: dict[str, int] = {}
        for n in self.topo_order():
            a = self._g.nodes[n]
            key[n] = hash((a["op"], tuple(a["shape"]), a.get("value"),
                           n if self.is_named(n) else None, tuple(key[x] for x in a["args"])))
        return frozenset((n, key[n]) for n in self.named_nodes())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        named = self.named_nodes()
        return f"<graphgrad.Graph: {len(self)} nodes, named: {', '.join(named[:12])}" + \
            (", ..." if len(named) > 12 else "") + ">"

    def _repr_svg_(self) -> str | None:
        """The picture in a notebook (the renderer's, registered by the facade in graphgrad.hooks)."""
        draw = SVG.get("graph")
        return None if draw is None else draw(self)

    def copy(self) -> Graph:
        """A deep-enough copy (node attribute dicts are copied)."""
        g = Graph(self._g.copy())
        g._counter = self._counter
        return g


_GENERATED = re.compile(r"_t([0-9]{1,15})\Z")


def from_networkx(G: nx.DiGraph) -> Graph:
    """Wrap (a copy of) a hand-built DiGraph as a validated :class:`Graph`.

    Node names are strings (any: ``"h 1"`` is fine; generated code mangles it). Nodes need
    ``op``, ``args`` for ops (leaves may omit it), and ``shape`` on input/param/const (``()`` for
    a scalar); op shapes are computed. Literals need a finite real ``value``. There is one edge
    u -> v for each operand u in v's ``args``. The copy is normalised as :meth:`Graph.validate`
    says, so it is stored exactly as the text and Python front ends store the same model; ``G``
    itself is not changed.

    >>> G = nx.DiGraph()
    >>> G.add_node("x", op="input", shape=("N",)); G.add_node("L", op="sum", args=("x",))
    >>> G.add_edge("x", "L")
    >>> g = from_networkx(G)
    >>> g.args("x"), g.shape("L")
    ((), ())
    """
    if not isinstance(G, nx.DiGraph) or G.is_multigraph():
        raise InputError(f"expected a networkx.DiGraph, got {type(G).__name__}",
                         hint="build a networkx.DiGraph with op/args/shape node attributes")
    g = Graph(nx.DiGraph())
    g._g.add_nodes_from((n, dict(a)) for n, a in G.nodes(data=True))
    g._g.add_edges_from(G.edges())
    g.validate()
    counter = 0
    for n in g._g:
        m = _GENERATED.match(n)
        if m:
            counter = max(counter, int(m.group(1)))
    g._counter = counter
    return g


# ----------------------------------------------------------------------------- checking API arguments
# The public functions check what they are given at the entry, so a wrong type is a one-line
# GraphgradError there rather than a TypeError deep inside.


def relabel(g: nx.DiGraph, old: str, new: str) -> None:
    """Rename node ``old`` to ``new`` in place, in time proportional to its degree.

    (``networkx.relabel_nodes(copy=False)`` scans every node on each call, which made naming
    10,000 nodes one by one quadratic.) Like it, the renamed node moves to the end of the node
    order; the ``args`` of consumers are the caller's to update.

    >>> g = nx.DiGraph([("a", "b")])
    >>> relabel(g, "a", "c"); sorted(g.edges())
    [('c', 'b')]
    """
    g.add_node(new, **g.nodes[old])
    g.add_edges_from((new, s, d) for s, d in g.succ[old].items())
    g.add_edges_from((p, new, d) for p, d in g.pred[old].items())
    g.remove_node(old)


def upstream(graph: Graph, targets: Iterable[str]) -> list[str]:
    """The targets and everything they depend on, in topological order: one sweep for all
    targets (asking ``ancestors`` per target was quadratic when every node is a target).

    >>> g = Graph(); x = g.input("x"); y = g.apply("neg", x, name="y"); z = g.apply("exp", x, name="z")
    >>> upstream(g, ["y"])
    ['x', 'y']
    """
    pred = graph.nx.pred
    keep: set[str] = set()
    stack = list(targets)
    while stack:
        n = stack.pop()
        if n not in keep:
            keep.add(n)
            stack.extend(p for p in pred[n] if p not in keep)
    return [n for n in graph.topo_order() if n in keep]


def iter_unique(xs: Iterable[str]) -> list[str]:
    """Items in first-seen order without repeats."""
    return list(dict.fromkeys(xs))
