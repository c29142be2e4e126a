"""The reverse pass: a forward graph becomes adjoint equations on the same IR.

:func:`backward` sweeps the forward graph once in reverse topological order. Each node's adjoint
is the sum of the contributions of all its consumers (so the residual branch's two paths both
reach x̄); each contribution comes from the consumer op's ``vjp`` rule in :data:`graphgrad.ops.OPS`,
emitted as ordinary op nodes. The result is an *extended* graph (forward nodes plus adjoint
nodes) that the evaluator runs, the printers print, the renderer draws and the compiler compiles.
The forward graph is never changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import sympy as sp

from .errors import DerivationError, NamingError
from .graph import LEAF_OPS, Graph, upstream
from .naming import adjoint_name, fresh_name
from .ops import OPS
from .shapes import Shape, fmt, is_scalar, normalize, same


class Emitter:
    """Adds op nodes to an extended graph for the reverse pass.

    It reuses an existing node for an identical ``(op, args)`` (hash-consing, so ``exp(x)`` in
    exp's derivative *is* the forward node) and folds trivial arithmetic (``1 ⊙ g = g``,
    ``(xᵀ)ᵀ = x``, literal products). ``b.<op>(...)`` adds op ``<op>``; ``b.lit(v)`` a number.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.g = graph.nx
        self.index: dict[tuple, str] = {}
        for n, a in self.g.nodes(data=True):
            self.index.setdefault(self._key(a["op"], a["args"], a.get("value")), n)
        self.created: set[str] = set()

    @staticmethod
    def _key(op: str, args: tuple, value=None) -> tuple:
        if op in ("input", "param", "const", "size"):
            return (op, object())  # leaves are never shared
        return (op, args, value)

    # -------------------------------------------------------------- queries
    def op_of(self, n: str) -> str:
        """The op of node ``n``."""
        return self.g.nodes[n]["op"]

    def shape(self, n: str) -> Shape:
        """The shape of node ``n``."""
        return self.g.nodes[n]["shape"]

    def is_lit(self, n: str, v: float | None = None) -> bool:
        """Whether ``n`` is a literal (equal to ``v`` when given)."""
        a = self.g.nodes[n]
        return a["op"] == "literal" and (v is None or a["value"] == v)

    def value(self, n: str) -> float:
        """The value of literal node ``n``."""
        a = self.g.nodes[n]
        if a["op"] != "literal":
            raise DerivationError(f"expected a numeric constant, got {self.graph.describe(n)}", node=n)
        return a["value"]

    # -------------------------------------------------------------- node creation
    def lit(self, v: float) -> str:
        """A literal node holding ``v``."""
        v = float(v)
        key = ("literal", (), v)
        if key not in self.index:
            self.graph._counter, name = fresh_name(self.graph._counter, self.g)
            self.graph.add_generated(name, "literal", value=v, anon=True)
            self.index[key] = name
        return self.index[key]

    def size(self, name: str) -> str:
        """The size-name node ``name`` (a scalar)."""
        if name not in self.g:
            self.graph.add_generated(name, "size", anon=False)
        return name

    def numel(self, x: str) -> str:
        """Number of elements of ``x`` as a node (a literal, or a product of size nodes)."""
        count: float = 1.0
        factors = []
        for d in self.shape(x):
            if isinstance(d, int):
                count *= d
            else:
                factors.append(self.size(d))
        node = self.lit(count)
        for f in factors:
            node = self.mul(node, f)
        return node

    def __getattr__(self, name: str) -> Callable[..., str]:
        if name in OPS:
            return partial(self.apply, name)
        raise AttributeError(name)

    def apply(self, op: str, *args: str) -> str:
        """Add (or reuse) ``op(*args)``, after folding trivial arithmetic."""
        folded = self._fold(op, args)
        if folded is not None:
            return folded
        spec = OPS[op]
        key = self._key(op, args)
        if key in self.index:
            return self.index[key]
        shape = normalize(spec.shape(*(self.shape(a) for a in args)))
        self.graph._counter, name = fresh_name(self.graph._counter, self.g)
        self.graph.add_generated(name, op, args, shape, anon=True)
        self.index[key] = name
        self.created.add(name)
        return name

    def _fold(self, op: str, args: tuple[str, ...]) -> str | None:
        lit = self.is_lit
        spec = OPS[op]
        if spec.elementwise and spec.public and all(lit(a) for a in args):
            with np.errstate(all="ignore"):
                v = float(spec.numpy(*(np.array([[self.value(a)]]) for a in args))[0, 0])
            if np.isfinite(v):
                return self.lit(v)
        if op == "mul":
            a, b = args
            if lit(b) and not lit(a):
                return self.mul(b, a)  # numbers first: 2 x, not x 2
            if lit(a, 1.0) and same(self.shape(b), broadcast_or(self.shape(a), self.shape(b))):
                return b
            if lit(a, -1.0):
                return self.neg(b)
            if lit(a) and self.op_of(b) == "mul" and lit(self.g.nodes[b]["args"][0]):
                c, rest = self.g.nodes[b]["args"]
                return self.mul(self.lit(self.value(a) * self.value(c)), rest)
            if lit(a) and self.op_of(b) == "neg":
                return self.mul(self.lit(-self.value(a)), self.g.nodes[b]["args"][0])
            if self.op_of(b) == "div" and lit(self.g.nodes[b]["args"][0], 1.0):
                return self.div(a, self.g.nodes[b]["args"][1])  # g ⊙ (1/x) = g / x
        if op == "div" and lit(args[1], 1.0):
            return args[0]
        if op == "neg" and self.op_of(args[0]) == "neg":
            return self.g.nodes[args[0]]["args"][0]
        if op == "pow" and lit(args[1], 1.0):
            return args[0]
        if op == "transpose":
            (a,) = args
            if self.op_of(a) == "transpose":
                return self.g.nodes[a]["args"][0]
            if is_scalar(self.shape(a)):
                return a
        if op in ("sum_to", "expand") and same(self.shape(args[0]), self.shape(args[1])):
            return args[0]
        return None

    # -------------------------------------------------------------- SymPy -> ops
    def from_sympy_scalar(self, expr: sp.Expr, symbols: dict[sp.Symbol, str]) -> str:
        """Turn a scalar SymPy expression (a derivative from ``sympy.diff``) into op nodes
        (see :func:`sympy_to_ops`)."""
        return sympy_to_ops(self, expr, symbols)


def sympy_to_ops(b: Any, expr: sp.Expr, symbols: dict[sp.Symbol, str]) -> str:
    """Build scalar SymPy ``expr`` as element-wise op nodes with builder ``b``; returns the top node.

    ``b`` makes nodes: ``b.lit(v)`` a literal, ``b.apply(op, *args)`` an op node (the reverse
    pass's :class:`Emitter`, or the compiler's rewrite of σ′ in :mod:`graphgrad.compiler.passes`);
    ``symbols`` maps SymPy symbols to existing nodes. Knows numbers, symbols, +, −, ×, ÷, powers,
    and functions named like an element-wise op (exp, log, tanh...).
    """
    done: dict[sp.Basic, str] = {}
    stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
    while stack:
        e, visited = stack.pop()
        if e in done:
            continue
        if not visited and e.args and not e.is_Number:
            stack.append((e, True))
            stack.extend((a, False) for a in e.args)
            continue
        done[e] = _sympy_node(b, e, done, symbols)
    return done[expr]


def _sympy_node(b: Any, e: sp.Basic, done: dict, symbols: dict) -> str:
    if e in symbols:
        return symbols[e]
    if e.is_Number:
        return b.lit(float(e))
    if e.is_Add:
        terms = list(e.args)
        terms.sort(key=lambda t: t.could_extract_minus_sign())  # positive terms first
        node = None
        for t in terms:
            if t.could_extract_minus_sign():
                pos = sympy_to_ops(b, -t, symbols)
                node = b.apply("neg", pos) if node is None else b.apply("sub", node, pos)
            else:
                node = done[t] if node is None else b.apply("add", node, done[t])
        return node
    if e.is_Mul:
        num, den = sp.fraction(e)
        if den != 1:
            return b.apply("div", sympy_to_ops(b, num, symbols), sympy_to_ops(b, den, symbols))
        node = None
        for f in e.args:
            node = done[f] if node is None else b.apply("mul", node, done[f])
        return node
    if e.is_Pow:
        base, ex = e.args
        x = done[base]
        if ex == sp.Rational(1, 2):
            return b.apply("sqrt", x)
        if ex == -1:
            return b.apply("div", b.lit(1.0), x)
        if ex.is_Number and ex < 0:
            return b.apply("div", b.lit(1.0), sympy_to_ops(b, base ** (-ex), symbols))
        if ex.is_Number:
            return b.apply("pow", x, b.lit(float(ex)))
    if isinstance(e, sp.Function) and len(e.args) == 1:
        name = type(e).__name__.lower()
        if name in OPS and OPS[name].elementwise:
            return b.apply(name, done[e.args[0]])
    raise DerivationError(f"cannot turn the SymPy expression {e} into graphgrad ops",
                          hint="declare the op's derivative with deriv= in its OpSpec")


def broadcast_or(a: Shape, b: Shape) -> Shape:
    """Broadcast shape of ``a`` and ``b`` (``b`` when they do not broadcast)."""
    from .shapes import broadcast

    out = broadcast(a, b)
    return b if out is None else out


@dataclass
class Backward:
    """The reverse pass of ``forward`` for ``of``.

    ``graph`` holds the forward nodes and the adjoint nodes; ``adjoint[v]`` names the node that
    holds v̄ = ∂of/∂v; ``order`` lists the forward nodes that got an adjoint, ``of`` first;
    ``contributions[v]`` lists ``(consumer, node)`` pairs, one per path through a consumer.
    """

    forward: Graph
    of: str
    graph: Graph
    adjoint: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    contributions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    seed: str = ""
    placeholder: dict[str, str] = field(default_factory=dict)

    def needed(self, targets: list[str]) -> list[str]:
        """Nodes of ``graph`` the given targets depend on, in topological order."""
        return upstream(self.graph, targets)  # one sweep (ancestors per target was quadratic)


def check_of(graph: Graph, of: str, scalar: bool = True) -> None:
    """Check that ``of`` names a node (and, by default, a scalar one)."""
    if of not in graph:
        raise NamingError(f"{of!r} is not defined", node=str(of),
                         hint="of must name a node: " + graph.names_text())
    if scalar and not is_scalar(graph.shape(of)):
        raise DerivationError(
            f"of={of!r} has shape {fmt(graph.shape(of))}, not a scalar", **graph.where(of),
            hint="take a scalar loss (e.g. sum(...) or norm(...)**2), or use jacobian/vjp for vector outputs")


def backward(graph: Graph, of: str, seed: str | None = None, symbolic: bool = False) -> Backward:
    """The adjoint equations of ``of``: one adjoint per node that ``of`` depends on.

    ``of`` must be a scalar unless ``seed="cotangent"``, which adds an input leaf named
    ``<of>_bar`` of ``of``'s shape as the seed (for vector-Jacobian products).

    ``symbolic=True`` is the form the printers read: each user-named node's rules take its
    adjoint as a placeholder leaf (``placeholder[v]``, printed v̄) instead of the node summing its
    contributions, so equations read ``z̄ = h̄ ⊙ σ′(z)`` rather than repeating h̄'s expression; a
    vector ``of`` is then seeded with its cotangent. Numbers come from the default form.
    Results are cached on the graph until it changes.
    """
    key = ("backward", of, seed, symbolic)
    if key in graph.cache:
        return graph.cache[key]
    cotangent = seed is not None or (symbolic and of in graph and not is_scalar(graph.shape(of)))
    check_of(graph, of, scalar=not cotangent)
    ext = graph.copy()
    b = Emitter(ext)
    bw = Backward(graph, of, ext)

    def placeholder(v: str) -> str:
        name = ext.add_generated(adjoint_name(v, ext.nx), "input", shape=graph.shape(v), anon=False, adjoint_of=v)
        bw.placeholder[v] = name
        return name

    bw.seed = placeholder(of) if cotangent else b.lit(1.0)
    pending: dict[str, list[tuple[str | None, str]]] = {of: [(None, bw.seed)]}
    owners: dict[str, str] = {}  # emitted adjoint total -> the variable it is named after
    for node in reversed(graph.topo_order()):
        contribs = pending.pop(node, None)
        if contribs is None:
            continue
        total = contribs[0][1]
        for _, c in contribs[1:]:
            total = b.add(total, c)
        if total in b.created and not symbolic:
            # name the adjoint after its variable: h_bar (a named variable wins over a sub-expression)
            owner = owners.get(total)
            if owner is None or (graph.is_named(node) and not graph.is_named(owner)):
                owners[total] = node
        bw.adjoint[node] = total
        bw.order.append(node)
        bw.contributions[node] = [(c, n) for c, n in contribs if c is not None]
        op = graph.op(node)
        if op in LEAF_OPS:
            continue
        g = total
        if symbolic and graph.is_named(node):
            g = bw.seed if (cotangent and node == of) else placeholder(node)
        args = graph.args(node)
        for arg, c in zip(args, OPS[op].vjp(b, node, g, *args)):
            if c is None or graph.op(arg) in ("literal", "size"):
                continue
            pending.setdefault(arg, []).append((node, c))
    _name_adjoints(bw, owners)
    graph.cache[key] = bw
    return bw


def _name_adjoints(bw: Backward, owners: dict[str, str]) -> None:
    """Rename each emitted adjoint total after its variable, in one pass (linear in the graph)."""
    taken = set(bw.graph.nx)
    mapping = {}
    for node, var in owners.items():
        mapping[node] = name = adjoint_name(var, taken)
        taken.add(name)
    bw.graph.rename_generated(mapping, {mapping[node]: dict(anon=not bw.forward.is_named(var), adjoint_of=var)
                                        for node, var in owners.items()})
    bw.adjoint = {v: mapping.get(n, n) for v, n in bw.adjoint.items()}
    bw.contributions = {v: [(c, mapping.get(n, n)) for c, n in lst] for v, lst in bw.contributions.items()}


def local_vjps(graph: Graph, nodes: Iterable[str]) -> tuple[Graph, dict[tuple[str, int], str]]:
    """Each op node's own VJP rule, emitted once with a placeholder leaf for its adjoint (printed
    ``·``): ``(extended graph, {(consumer, operand index): contribution node})``. What the ops view
    of a picture writes on each backward edge (``W₁ᵀ·`` for operand 2 of ``W₁ @ x``): the op's
    derivative alone, with no sum over consumers.

    >>> from graphgrad import parse
    >>> g = parse("input x[N]\\nparam W[K, N]\\nL = sum(W @ x)")
    >>> ext, rules = local_vjps(g, ["_t1"])
    >>> [ext.op(rules[("_t1", i)]) for i in (0, 1)]
    ['matmul', 'matmul']
    """
    ext = graph.copy()
    b = Emitter(ext)
    rules: dict[tuple[str, int], str] = {}
    for c in nodes:
        op = graph.op(c)
        if op in LEAF_OPS:
            continue
        ph = ext.add_generated(adjoint_name(c, ext.nx), "input", shape=graph.shape(c), anon=False, adjoint_of=c)
        for i, (arg, contrib) in enumerate(zip(graph.args(c), OPS[op].vjp(b, c, ph, *graph.args(c)))):
            if contrib is not None and graph.op(arg) not in ("literal", "size"):
                rules[(c, i)] = contrib
    return ext, rules
