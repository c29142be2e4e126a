"""The compiler's middle and back end: IR rewrites, then NumPy statements in storage layout.

:func:`build_ir` copies the needed part of an (extended) graph into a small mutable IR and
optimises it: local rewrites, common sub-expression elimination, dead-code elimination and
matrix-chain re-association. :func:`lower` turns it into a :class:`Program` of NumPy statements.

Storage layout (what users feed): a scalar is a 0-d value, a vector ``[N]`` (and a row ``[1, N]``)
a 1-D array, a matrix 2-D; a batched value has one more, leading, axis. Every IR value has a
*form* -- ``S`` (scalar), ``V`` (column), ``R`` (row), ``M`` (matrix) -- and a batched flag, and
each op has a template per form. A node can be lowered in two *modes*: ``p`` (per sample) and
``s`` (summed over the batch). Gradients of unbatched variables ask for ``s``; the sum is pushed
down through linear ops, so ``Σ_b z̄_b x_bᵀ`` becomes the single GEMM ``z_bar.T @ x``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from .errors import GraphgradError
from .graph import Graph
from .ops import LEAF_KINDS
from .shapes import matrix_form, normalize

ELEMENTWISE_BIN = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
UFUNC = {"add": "np.add", "sub": "np.subtract", "mul": "np.multiply", "div": "np.divide"}
UNARY = {
    "sigmoid": "_sigmoid({a})",
    "tanh": "np.tanh({a})",
    "relu": "np.maximum({a}, 0.0)",
    "exp": "np.exp({a})",
    "log": "np.log({a})",
    "sqrt": "np.sqrt({a})",
    "neg": "-{a}",
    "dsigmoid": "np.exp(-np.logaddexp(0.0, -{a})) * np.exp(-np.logaddexp(0.0, {a}))",
    "dtanh": "1.0 - np.tanh({a}) ** 2",
    "drelu": "({a} > 0).astype({a}.dtype)",
}
# the same ops, writing into a buffer whose old value is dead
UNARY_OUT = {
    "sigmoid": "_sigmoid({a}, out={a})",
    "tanh": "np.tanh({a}, out={a})",
    "relu": "np.maximum({a}, 0.0, out={a})",
    "exp": "np.exp({a}, out={a})",
    "log": "np.log({a}, out={a})",
    "sqrt": "np.sqrt({a}, out={a})",
    "neg": "np.negative({a}, out={a})",
}
CORE = {"S": (), "V": ("r",), "R": ("c",), "M": ("r", "c")}
HELPERS = {
    "_sigmoid": '''def _sigmoid(t, out=None):
    """σ(t) = 1 / (1 + exp(−t)), in one buffer; exp's argument is clipped so it cannot overflow."""
    e = np.negative(t, out=out)
    if e.ndim == 0:
        return 1.0 / (1.0 + np.exp(min(e, 80.0 if e.dtype.itemsize <= 4 else 700.0)))
    np.minimum(e, 80.0 if e.dtype.itemsize <= 4 else 700.0, out=e)
    np.exp(e, out=e)
    e += 1.0
    return np.reciprocal(e, out=e)
''',
    "_unit": '''def _unit(a, axis):
    """a / ‖a‖ over axis (0 where ‖a‖ = 0)."""
    n = np.sqrt(np.sum(a * a, axis=axis, keepdims=True))
    return np.divide(a, n, out=np.zeros_like(a), where=n > 0)
''',
}


def form_of(shape: tuple) -> str:
    """``S``, ``V``, ``R`` or ``M`` for a graphgrad shape.

    >>> [form_of(s) for s in [(), ("N",), (1, "N"), ("K", "N")]]
    ['S', 'V', 'R', 'M']
    """
    r, c = matrix_form(normalize(shape))
    if c == 1:
        return "S" if r == 1 else "V"
    return "R" if r == 1 else "M"


# ============================================================================ the IR


@dataclass
class Node:
    """One IR node: an op application (or leaf) with its shape and batched flag."""

    op: str
    args: tuple[str, ...]
    shape: tuple
    value: float | None = None
    batched: bool = False
    named: bool = False

    @property
    def form(self) -> str:
        """The node's form (S, V, R, M)."""
        return form_of(self.shape)


@dataclass
class IR:
    """Nodes in topological order, the outputs, and what the signature binds."""

    nodes: dict[str, Node]
    targets: list[str]
    alias: dict[str, str]  # original target name -> IR node computing it
    batched: frozenset
    sizes: dict[str, int]
    leaves: list[str] = field(default_factory=list)

    def consumers(self) -> dict[str, int]:
        """Use count of each node (outputs count once)."""
        uses = dict.fromkeys(self.nodes, 0)
        for n in self.nodes.values():
            for a in n.args:
                uses[a] += 1
        for t in self.targets:
            uses[self.alias.get(t, t)] += 1
        return uses


def build_ir(graph: Graph, targets: list[str], batched: frozenset, sizes: dict[str, int]) -> IR:
    """Copy what ``targets`` need out of ``graph``, mark batched nodes, and optimise."""
    keep = set(targets)
    for t in targets:
        keep |= graph.ancestors(t)
    nodes: dict[str, Node] = {}
    for n in graph.topo_order():
        if n not in keep:
            continue
        a = graph.attrs(n)
        nodes[n] = Node(a["op"], tuple(a["args"]), normalize(a["shape"]), a.get("value"),
                        named=graph.is_named(n))
    ir = IR(nodes, list(targets), {}, batched, sizes,
            [n for n in nodes if nodes[n].op in LEAF_KINDS or nodes[n].op == "input"])
    _mark_batched(ir)
    _rewrite(ir)
    _cse(ir)
    _dce(ir)
    _reassociate(ir)
    _cse(ir)
    _dce(ir)
    _mark_batched(ir)
    return ir


def _mark_batched(ir: IR) -> None:
    for name, n in ir.nodes.items():
        if n.op in ("input", "param", "const"):
            n.batched = name in ir.batched
        elif n.op in ("literal", "size"):
            n.batched = False
        elif n.op in ("sum_to", "expand"):
            n.batched = ir.nodes[n.args[0]].batched
        else:
            n.batched = any(ir.nodes[a].batched for a in n.args)


class _Fresh:
    """Fresh ``_tN`` names, numbered after every name the IR already has."""

    def __init__(self, ir: IR) -> None:
        self.ir = ir
        nums = [int(m[2:]) for m in ir.nodes if m.startswith("_t") and m[2:].isdigit()]
        self.k = max(nums, default=0)

    def __call__(self, prefix: str = "_t") -> str:
        while True:
            self.k += 1
            if f"{prefix}{self.k}" not in self.ir.nodes:
                return f"{prefix}{self.k}"


def _insert(ir: IR, before: str, name: str, node: Node) -> None:
    """Insert ``node`` as ``name`` just before ``before`` (keeps the dict topologically ordered)."""
    items = list(ir.nodes.items())
    i = next(k for k, (m, _) in enumerate(items) if m == before)
    items.insert(i, (name, node))
    ir.nodes = dict(items)


def _literal(ir: IR, fresh: _Fresh, v: float, before: str) -> str:
    for name, n in ir.nodes.items():
        if n.op == "literal" and n.value == v:
            if list(ir.nodes).index(name) < list(ir.nodes).index(before):
                return name
    name = fresh()
    _insert(ir, before, name, Node("literal", (), (), float(v)))
    return name


def _find_or_add(ir: IR, fresh: _Fresh, op: str, args: tuple, shape: tuple, before: str) -> str:
    order = list(ir.nodes)
    for name, n in ir.nodes.items():
        if n.op == op and n.args == args and order.index(name) < order.index(before):
            return name
    name = fresh()
    _insert(ir, before, name, Node(op, args, shape))
    return name


def _rewrite(ir: IR) -> None:
    """Local rewrites that make the code read (and run) like hand-written backprop."""
    fresh = _Fresh(ir)
    for name in list(ir.nodes):
        n = ir.nodes[name]
        if n.op in ("dsigmoid", "dtanh"):
            # σ′(z) = h ⊙ (1 − h) with h = σ(z), the forward value; tanh′(z) = 1 − t ⊙ t
            f = "sigmoid" if n.op == "dsigmoid" else "tanh"
            h = _find_or_add(ir, fresh, f, n.args, n.shape, name)
            one = _literal(ir, fresh, 1.0, name)
            if f == "sigmoid":
                omh = _find_or_add(ir, fresh, "sub", (one, h), n.shape, name)
                ir.nodes[name] = Node("mul", (h, omh), n.shape, named=n.named)
            else:
                hh = _find_or_add(ir, fresh, "mul", (h, h), n.shape, name)
                ir.nodes[name] = Node("sub", (one, hh), n.shape, named=n.named)
        elif n.op == "mul":
            a, b = (ir.nodes[x] for x in n.args)
            # ‖t‖ ⊙ unit(t) = t (also at t = 0, where unit(t) = 0)
            if a.op == "norm" and b.op == "unit" and a.args == b.args:
                ir.nodes[name] = Node("id", a.args, n.shape, named=n.named)
            elif b.op == "norm" and a.op == "unit" and a.args == b.args:
                ir.nodes[name] = Node("id", a.args, n.shape, named=n.named)
            else:
                # expand(c, like) ⊙ y = c y when y already has the product's shape (the adjoint of sum)
                for e, y in ((a, n.args[1]), (b, n.args[0])):
                    if e.op == "expand" and ir.nodes[e.args[0]].op == "literal" \
                            and ir.nodes[y].shape == n.shape:
                        c = ir.nodes[e.args[0]].value
                        ir.nodes[name] = Node("id", (y,), n.shape, named=n.named) if c == 1.0 else \
                            Node("mul", (e.args[0], y), n.shape, named=n.named)
                        break
        elif n.op == "pow":
            a, p = (ir.nodes[x] for x in n.args)
            if a.op == "norm" and p.op == "literal" and p.value == 2.0:
                ir.nodes[name] = Node("sqnorm", a.args, n.shape, named=n.named)  # ‖t‖² = tᵀt
    _mark_batched(ir)


def _resolve(ir: IR, name: str) -> str:
    while ir.nodes[name].op == "id":
        name = ir.nodes[name].args[0]
    return name


def _cse(ir: IR) -> None:
    """Merge nodes computing the same (op, operands); ``id`` nodes become aliases."""
    seen: dict[tuple, str] = {}
    repl: dict[str, str] = {}
    for name in list(ir.nodes):
        n = ir.nodes[name]
        n.args = tuple(repl.get(a, a) for a in n.args)
        if n.op == "id":
            repl[name] = n.args[0]
            continue
        if n.op in ("input", "param", "const", "size"):
            continue
        key = (n.op, n.args, n.value)
        if key in seen:
            repl[name] = seen[key]
        else:
            seen[key] = name
    def final(r: str) -> str:
        while r in repl:
            r = repl[r]
        return r

    for t in ir.targets:
        ir.alias[t] = final(ir.alias.get(t, t))
    # prefer a user's (or an adjoint's) name for a merged value: rename an anonymous survivor
    done: set[str] = set()
    for old in list(repl):
        new = final(old)
        if new in done or not ir.nodes[old].named or ir.nodes[new].named:
            continue
        ir.nodes = {m: n for m, n in ir.nodes.items() if m != old}
        _rename(ir, new, old)
        repl = {k: (old if v == new else v) for k, v in repl.items() if k != old}
        done.add(old)


def _rename(ir: IR, old: str, new: str) -> None:
    items = []
    for m, n in ir.nodes.items():
        n.args = tuple(new if a == old else a for a in n.args)
        items.append((new if m == old else m, n))
    ir.nodes = dict(items)
    ir.nodes[new].named = True
    for t, r in ir.alias.items():
        if r == old:
            ir.alias[t] = new


def _dce(ir: IR) -> None:
    live = {ir.alias[t] for t in ir.targets}
    for name in reversed(list(ir.nodes)):
        if name in live:
            live.update(ir.nodes[name].args)
    live.update(n for n in ir.leaves if n in ir.nodes)
    ir.nodes = {m: n for m, n in ir.nodes.items() if m in live}


# ---------------------------------------------------------------------------- matrix chains

NOMINAL = 100  # the size assumed for a size name not bound when the code is generated


def _dim(d: Any, sizes: dict[str, int]) -> Any:
    if isinstance(d, int):
        return d
    return sizes.get(d, sp.Symbol(d, positive=True))


def _reassociate(ir: IR) -> None:
    """Re-associate products of three or more factors into the cheapest order for the shapes.

    A factor is folded into a chain when it is a product used only there. Cost of a product of
    a p×q and a q×r factor: p·q·r multiply-adds (times B when a factor is batched). With every
    size bound the cheapest order wins; a size not bound (code generated ahead of any call)
    counts as ``NOMINAL``; ties keep the written order.
    """
    fresh = _Fresh(ir)
    # (a b)ᵀ = bᵀ aᵀ, so that products under a transpose join chains too
    changed = True
    while changed:
        changed = False
        for name in list(ir.nodes):
            n = ir.nodes[name]
            if n.op == "transpose" and ir.nodes[n.args[0]].op == "matmul":
                a, b = ir.nodes[n.args[0]].args
                ta, tb = (_transposed(ir, fresh, x, name) for x in (a, b))
                ir.nodes[name] = Node("matmul", (tb, ta), n.shape, named=n.named)
                changed = True
    _dce(ir)
    _mark_batched(ir)
    readers: dict[str, set[str]] = {}
    for m, node in ir.nodes.items():
        for a in node.args:
            readers.setdefault(a, set()).add(ir.nodes[m].op)
    outs = {ir.alias[t] for t in ir.targets}
    bsym = sp.Symbol("B", positive=True)
    for name in list(ir.nodes):
        n = ir.nodes.get(name)
        if n is None or n.op != "matmul":
            continue
        # collect the chain's factors, left to right (iteratively)
        factors: list[str] = []
        inner: list[str] = []
        stack = [name]
        while stack:
            m = stack.pop()
            node = ir.nodes[m]
            # a product joins the chain when only products read it (it is then recomputed, or dead)
            if m != name and not (node.op == "matmul" and readers.get(m) == {"matmul"} and m not in outs):
                factors.append(m)
                continue
            if m != name:
                inner.append(m)
            stack.extend(reversed(node.args))
        if len(factors) < 3:
            continue
        dims = [tuple(_dim(d, ir.sizes) for d in matrix_form(ir.nodes[f].shape)) for f in factors]
        bat = [ir.nodes[f].batched for f in factors]
        batch = ir.sizes.get("__batch__", bsym)
        original = _tree_of(ir, name, set(inner))
        best = _best_tree(dims, bat, batch, original)
        if best is None or best == original:
            continue
        # rebuild: name keeps its identity, sub-products are fresh anonymous nodes
        ir.nodes[name].args = tuple(_build(ir, t, factors, name, fresh) for t in best)
    _mark_batched(ir)


def _transposed(ir: IR, fresh: Any, x: str, before: str) -> str:
    n = ir.nodes[x]
    if n.op == "transpose":
        return n.args[0]
    if n.form == "S":
        return x
    r, c = matrix_form(n.shape)
    return _find_or_add(ir, fresh, "transpose", (x,), normalize((c, r)), before)


def _build(ir: IR, tree: Any, factors: list[str], before: str, fresh: Any) -> str:
    """Insert the products of ``tree`` before node ``before``; returns the node of the top."""
    if isinstance(tree, int):
        return factors[tree]
    a = _build(ir, tree[0], factors, before, fresh)
    b = _build(ir, tree[1], factors, before, fresh)
    shape = normalize((matrix_form(ir.nodes[a].shape)[0], matrix_form(ir.nodes[b].shape)[1]))
    name = fresh()
    _insert(ir, before, name, Node("matmul", (a, b), shape))
    return name


def _tree_of(ir: IR, name: str, inner: set) -> Any:
    """The written association of a chain as a nested pair tree of factor positions."""
    vals: list[Any] = []
    count = 0
    stack: list[tuple[str, bool]] = [(name, False)]
    while stack:
        m, done = stack.pop()
        if done:
            right, left = vals.pop(), vals.pop()
            vals.append((left, right))
        elif m == name or m in inner:
            a, b = ir.nodes[m].args
            stack += [(m, True), (b, False), (a, False)]
        else:
            vals.append(count)
            count += 1
    return vals[0]


def _trees(lo: int, hi: int) -> list:
    """Every association of factors lo..hi (chains are at most 7 long, so the depth is bounded)."""
    if lo == hi:
        return [lo]
    return [(left, right) for k in range(lo, hi) for left in _trees(lo, k) for right in _trees(k + 1, hi)]


def _cost(tree: Any, dims: list, bat: list, batch: Any) -> tuple:
    """(multiply-adds, rows, cols, batched) of a product tree (bounded depth)."""
    if isinstance(tree, int):
        return (0, dims[tree][0], dims[tree][1], bat[tree])
    ca, ra, ka, ba = _cost(tree[0], dims, bat, batch)
    cb, _, cc, bb = _cost(tree[1], dims, bat, batch)
    return (ca + cb + ra * ka * cc * (batch if (ba or bb) else 1), ra, cc, ba or bb)


def _best_tree(dims: list, bat: list, batch: Any, original: Any) -> Any:
    """The cheapest association, or None when none beats the written one for sure."""
    if len(dims) > 7:
        return None  # Catalan growth; long chains keep their written order
    def cost(t: Any) -> float:
        c = sp.sympify(_cost(t, dims, bat, batch)[0])
        return float(c.subs({x: NOMINAL for x in c.free_symbols}))

    best, best_cost = None, cost(original)
    for t in _trees(0, len(dims) - 1):
        c = cost(t)
        if c < best_cost:
            best, best_cost = t, c
    return best


# ============================================================================ lowering

Key = tuple  # (node, mode)


@dataclass
class Stmt:
    """One statement: ``target = expr`` (or an in-place update), with what it reads."""

    key: Key
    deps: list[Key]
    text: Any  # callable(ref) -> expression text
    form: str
    batched: bool
    fresh: bool = True  # the value is a new array nobody else holds (may be updated in place)
    bin: tuple | None = None  # (op, a, b, a_index, b_index) for element-wise binaries
    un: str | None = None  # for element-wise unaries: the template writing into its operand
    target: str = ""
    aug: tuple | None = None  # in-place form, when chosen
    inline: bool = False  # written into its single reader instead of a line of its own


@dataclass
class Program:
    """A lowered program: its source text, and a way to get the function."""

    name: str
    params: list[str]
    source: str
    helpers: list[str]
    doc: str
    _fn: Any = None

    def function(self) -> Any:
        """The generated function (exec'd once)."""
        if self._fn is None:
            ns: dict[str, Any] = {"np": np}
            code = "\n".join(HELPERS[h] for h in self.helpers) + "\n" + self.source
            exec(compile(code, f"<graphgrad {self.name}>", "exec"), ns)  # noqa: S102
            self._fn = ns[self.name]
        return self._fn

    def module(self, model: str = "") -> str:
        """Standalone module text (needs only NumPy)."""
        head = f'"""Generated by graphgrad{" from " + model if model else ""}: {self.doc}\n"""\n\n'
        helpers = "".join("\n\n" + HELPERS[h] for h in self.helpers)
        return head + "import numpy as np\n" + helpers + "\n\n" + self.source


class Lowerer:
    """Plans (node, mode) values and emits statements for them."""

    def __init__(self, ir: IR) -> None:
        self.ir = ir
        self.plans: dict[Key, Stmt | tuple] = {}
        self.helpers: set[str] = set()
        self.need_b = False
        self.known_p: set[Key] = set()  # per-sample values the program computes anyway

    # ---------------------------------------------------------------- value descriptors
    def node(self, key: Key) -> Node:
        return self.ir.nodes[key[0]]

    def batched(self, key: Key) -> bool:
        return key[1] == "p" and self.node(key).batched

    def form(self, key: Key) -> str:
        return self.node(key).form

    # ---------------------------------------------------------------- planning
    def plan(self, roots: list[Key]) -> list[Key]:
        """Plan every value the roots need; returns them in emission order."""
        stack = list(roots)
        while stack:
            k = stack.pop()
            if k in self.plans:
                continue
            p = self._plan_one(k)
            self.plans[k] = p
            deps = p.deps if isinstance(p, Stmt) else p[2]
            stack.extend(d for d in deps if d not in self.plans)
        pos = {n: i for i, n in enumerate(self.ir.nodes)}
        return sorted(self.plans, key=lambda k: (pos[k[0]], k[1] == "s"))

    def _plan_one(self, k: Key) -> Stmt | tuple:
        name, mode = k
        n = self.ir.nodes[name]
        if mode == "s" and not n.batched:
            if n.op == "literal":
                self.need_b = True
                return ("expr", f"B * {n.value!r}", [])
            self.need_b = True
            return Stmt(k, [(name, "p")], lambda r: f"B * {r((name, 'p'))}", n.form, False)
        if mode == "s" and n.op in ("input", "param", "const"):
            return Stmt(k, [(name, "p")], lambda r: f"{r((name, 'p'))}.sum(axis=0)", n.form, False)
        if n.op in ("input", "param", "const"):
            return ("expr", name, [])
        if n.op == "literal":
            return ("expr", repr(float(n.value)), [])
        if n.op == "size":
            return ("expr", name, [])
        if n.op == "id":
            return ("alias", None, [(n.args[0], mode)])
        if n.op == "transpose":
            a = (n.args[0], mode)
            return ("T" if n.form == "M" else "alias", None, [a])
        if mode == "s":
            return self._plan_sum(k, n)
        return self._plan_p(k, n)

    def _sum_operand(self, a: str) -> Key:
        return (a, "s")

    def _plan_sum(self, k: Key, n: Node) -> Stmt:
        """Σ over the batch of a batched node, pushed through linear ops."""
        op, args = n.op, n.args
        if (k[0], "p") in self.known_p:  # computed per sample anyway: one reduction
            return Stmt(k, [(k[0], "p")], lambda r: f"{r((k[0], 'p'))}.sum(axis=0)", n.form, False)
        nb = [self.ir.nodes[a].batched for a in args]
        s = lambda a: (a, "s")
        p = lambda a: (a, "p")
        if op in ("add", "sub"):
            return self._elementwise(k, n, [s(a) for a in args], False)
        if op in ("neg", "sum", "mean", "sqnorm") and op != "sqnorm":
            return self._unary_like(k, n, s(args[0]), False)
        if op in ("sum_to", "expand"):
            return self._sum_to_expand(k, n, s(args[0]), p(args[1]), False)
        if op == "mul" and nb.count(True) == 1:
            return self._elementwise(k, n, [s(a) if b else p(a) for a, b in zip(args, nb)], False)
        if op == "div" and nb == [True, False]:
            return self._elementwise(k, n, [s(args[0]), p(args[1])], False)
        if op in ("matmul", "dot") and nb.count(True) == 1:
            return self._matmul(k, n, [s(a) if b else p(a) for a, b in zip(args, nb)], False)
        if op in ("matmul", "dot") and all(nb):
            st = self._contract(k, n)
            if st is not None:
                return st
        if op == "sqnorm" and self.ir.nodes[args[0]].form != "S":
            return Stmt(k, [p(args[0])], lambda r: f"np.vdot({r(p(args[0]))}, {r(p(args[0]))})", "S", False)
        # not linear in a batched operand: compute per sample, then sum
        return Stmt(k, [p(k[0])], lambda r: f"{r(p(k[0]))}.sum(axis=0)", n.form, False)

    def _contract(self, k: Key, n: Node) -> Stmt | None:
        x, y = n.args
        a, b = (x, "p"), (y, "p")
        fa, fb = self.ir.nodes[x].form, self.ir.nodes[y].form
        deps = [a, b]
        if n.op == "dot" or (fa == "R" and fb == "V"):
            return Stmt(k, deps, lambda r: f"np.vdot({r(a)}, {r(b)})", "S", False)
        if fa == "V" and fb == "R":
            return Stmt(k, deps, lambda r: f"{r(a)}.T @ {r(b)}", "M", False)  # Σ a bᵀ = Aᵀ B
        spec = {("M", "V"): "bij,bj->i", ("R", "M"): "bj,bjk->k", ("M", "M"): "bij,bjk->ik"}.get((fa, fb))
        if spec is None:
            return None
        return Stmt(k, deps, lambda r: f"np.einsum('{spec}', {r(a)}, {r(b)})", n.form, False)

    def _plan_p(self, k: Key, n: Node) -> Stmt:
        op, args = n.op, n.args
        p = lambda a: (a, "p")
        if op in ELEMENTWISE_BIN:
            return self._elementwise(k, n, [p(a) for a in args], n.batched)
        if op in ("matmul", "dot"):
            return self._matmul(k, n, [p(a) for a in args], n.batched)
        if op in ("sum_to", "expand"):
            return self._sum_to_expand(k, n, p(args[0]), p(args[1]), n.batched)
        return self._unary_like(k, n, p(args[0]), n.batched)

    # ---------------------------------------------------------------- templates
    def _align(self, a: Key, out_form: str, out_batched: bool) -> str:
        """Index that broadcasts operand ``a`` into the output's storage axes."""
        fa, ba = self.form(a), self.batched(a)
        if fa == out_form:
            return ""
        parts = [":"] if ba else []
        parts += [":" if ax in CORE[fa] else "None" for ax in CORE[out_form]]
        if not ba:
            while parts and parts[0] == "None":
                parts.pop(0)
        if all(x == ":" for x in parts):
            return ""
        return "[" + ", ".join(parts) + "]"

    def _elementwise(self, k: Key, n: Node, deps: list[Key], bo: bool) -> Stmt:
        fo = n.form
        idx = [self._align(d, fo, bo) for d in deps]
        if n.op in ELEMENTWISE_BIN:
            sym = ELEMENTWISE_BIN[n.op]
            a, b = deps
            return Stmt(k, deps, lambda r: f"{r(a)}{idx[0]} {sym} {r(b)}{idx[1]}", fo, bo,
                        bin=(n.op, a, b, idx[0], idx[1]))
        raise GraphgradError(f"no template for {n.op}")

    def _unary_like(self, k: Key, n: Node, a: Key, bo: bool) -> Stmt:
        op, fa, ba = n.op, self.form(a), self.batched(a)
        core = "-1" if len(CORE[fa]) == 1 else "(-2, -1)"
        if op in UNARY:
            t = UNARY[op]
            if op == "sigmoid":
                self.helpers.add("_sigmoid")
            return Stmt(k, [a], lambda r: t.format(a=r(a)), n.form, bo, un=UNARY_OUT.get(op))
        if op in ("sum", "mean"):
            if fa == "S":
                return Stmt(k, [a], lambda r: r(a), "S", bo, fresh=False)
            if ba:
                return Stmt(k, [a], lambda r: f"{r(a)}.{op}(axis={core})", "S", bo)
            return Stmt(k, [a], lambda r: f"np.{op}({r(a)})", "S", bo)
        if op in ("sqnorm", "norm"):
            if fa == "S":
                body = (lambda r: f"{r(a)} * {r(a)}") if op == "sqnorm" else (lambda r: f"np.abs({r(a)})")
                return Stmt(k, [a], body, "S", bo)
            if ba:
                spec = "bi,bi->b" if fa in "VR" else "bij,bij->b"
                inner = lambda r: f"np.einsum('{spec}', {r(a)}, {r(a)})"
            else:
                inner = lambda r: f"np.vdot({r(a)}, {r(a)})"
            if op == "sqnorm":
                return Stmt(k, [a], inner, "S", bo)
            return Stmt(k, [a], lambda r: f"np.sqrt({inner(r)})", "S", bo)
        if op == "unit":
            if fa == "S":
                return Stmt(k, [a], lambda r: f"np.sign({r(a)})", "S", bo)
            self.helpers.add("_unit")
            return Stmt(k, [a], lambda r: f"_unit({r(a)}, axis={core})", n.form, bo)
        raise GraphgradError(f"the compiler has no template for op {op!r}", node=k[0],
                             hint="add one to graphgrad/lowering.py")

    def _sum_to_expand(self, k: Key, n: Node, g: Key, like: Key, bo: bool) -> Stmt:
        fg, fo = self.form(g), n.form
        if n.op == "sum_to":
            axes = [i - len(CORE[fg]) for i, ax in enumerate(CORE[fg]) if ax not in CORE[fo]]
            if self.batched(g) and not bo:
                axes = [0] + axes
            if not axes:
                return Stmt(k, [g], lambda r: r(g), fo, bo, fresh=False)
            ax = str(axes[0]) if len(axes) == 1 else "(" + ", ".join(map(str, axes)) + ")"
            return Stmt(k, [g], lambda r: f"{r(g)}.sum(axis={ax})", fo, bo)
        # expand: broadcast g up to like's form
        idx = self._align(g, fo, bo)
        lb = self.batched(like)
        if bo and not lb:
            shape = lambda r: f"{r(g)}.shape[:1] + {r(like)}.shape"
        elif not bo and lb:
            shape = lambda r: f"{r(like)}.shape[1:]"
        else:
            shape = lambda r: f"{r(like)}.shape"
        return Stmt(k, [g, like], lambda r: f"np.broadcast_to({r(g)}{idx}, {shape(r)})", fo, bo,
                    fresh=False)

    def _matmul(self, k: Key, n: Node, deps: list[Key], bo: bool) -> Stmt:
        a, b = deps
        fa, fb, fo = self.form(a), self.form(b), n.form
        ba, bb = self.batched(a), self.batched(b)
        if n.op == "dot":
            fa, fb = ("R" if fa == "V" else fa), fb
        if "S" in (fa, fb):  # a product with a 1 x 1 factor is a scaling
            idx = [self._align(d, fo, bo) for d in deps]
            return Stmt(k, deps, lambda r: f"{r(a)}{idx[0]} * {r(b)}{idx[1]}", fo, bo)
        if fa == "M" and fb == "V":
            if ba and bb:
                return Stmt(k, deps, lambda r: f"np.einsum('bij,bj->bi', {r(a)}, {r(b)})", fo, bo)
            if bb:
                return Stmt(k, deps, lambda r: f"{r(b)} @ {r(a, True)}", fo, bo)  # X Aᵀ: one GEMM
            return Stmt(k, deps, lambda r: f"{r(a)} @ {r(b)}", fo, bo)
        if fa == "R" and fb == "M":
            if ba and bb:
                return Stmt(k, deps, lambda r: f"np.einsum('bj,bjk->bk', {r(a)}, {r(b)})", fo, bo)
            return Stmt(k, deps, lambda r: f"{r(a)} @ {r(b)}", fo, bo)
        if fa == "R" and fb == "V":
            if ba and bb:
                return Stmt(k, deps, lambda r: f"np.einsum('bi,bi->b', {r(a)}, {r(b)})", fo, bo)
            if ba or not bb:
                return Stmt(k, deps, lambda r: f"{r(a)} @ {r(b)}", fo, bo)
            return Stmt(k, deps, lambda r: f"{r(b)} @ {r(a)}", fo, bo)
        if fa == "V" and fb == "R":
            if not ba and not bb:
                return Stmt(k, deps, lambda r: f"np.outer({r(a)}, {r(b)})", fo, bo)
            ia = "[..., :, None]"
            ib = "[..., None, :]"
            return Stmt(k, deps, lambda r: f"{r(a)}{ia} * {r(b)}{ib}", fo, bo)
        if fa == "M" and fb == "M":
            return Stmt(k, deps, lambda r: f"{r(a)} @ {r(b)}", fo, bo)
        raise GraphgradError(f"the compiler has no matmul template for forms {fa} @ {fb}", node=k[0])


def lower(ir: IR, cf: Any) -> Program:
    """Lower the IR to a :class:`Program` for the compiled function ``cf``."""
    lw = Lowerer(ir)
    kind = cf.kind
    of = ir.alias.get(cf.of, cf.of) if cf.of else None
    batched_of = of is not None and ir.nodes[of].batched
    roots: list[Key] = []
    outputs: list[tuple[str, Key | None, str]] = []  # (label, key, leaf)
    if kind == "forward":
        for o in cf.outputs:
            key = (ir.alias[o], "p")
            roots.append(key)
            outputs.append((o, key, ""))
    else:
        vkey = (of, "s" if (cf.reduce == "sum" and batched_of) else "p")
        roots.append(vkey)
        outputs.append(("", vkey, ""))
        for w in cf.wrt:
            if ir.nodes.get(w) is not None and ir.nodes[w].op not in LEAF_KINDS:
                roots.append((w, "p"))  # an intermediate: its value gives the gradient's shape
            if w not in cf._adjoint:
                outputs.append((w, None, w))
                continue
            adj = ir.alias[cf._adjoint[w]]
            wb = ir.nodes[w].batched if w in ir.nodes else False
            key = (adj, "s" if (batched_of and not wb) else "p")
            roots.append(key)
            outputs.append((w, key, w))
    while True:  # plan; re-plan while sums discover per-sample values computed anyway
        lw.plans, lw.helpers, lw.need_b = {}, set(), False
        order = lw.plan(roots)
        found = {k for k, p in lw.plans.items() if k[1] == "p" and isinstance(p, Stmt)}
        if found <= lw.known_p:
            break
        lw.known_p |= found
    prefer = {key: f"{leaf}_bar" for _, key, leaf in outputs if key is not None and key[1] == "s" and leaf}
    stmts, refs = _finish(lw, order, outputs, ir, prefer)
    return _emit(lw, cf, ir, stmts, refs, outputs)


def _finish(lw: Lowerer, order: list[Key], outputs: list, ir: IR, prefer: dict):
    """Resolve aliases, pick in-place updates and names."""
    base: dict[Key, tuple[Key | None, bool, str | None]] = {}  # key -> (stmt key, transposed, text)
    stmts: list[Stmt] = []
    for k in order:
        p = lw.plans[k]
        if isinstance(p, Stmt):
            base[k] = (k, False, None)
            stmts.append(p)
        elif p[0] == "expr":
            base[k] = (None, False, p[1])
        else:
            src = base[p[2][0]]
            base[k] = (src[0], src[1] ^ (p[0] == "T"), src[2])
    uses: dict[Key, int] = {s.key: 0 for s in stmts}
    for s in stmts:
        for d in s.deps:
            b = base[d][0]
            if b is not None:
                uses[b] += 1
    out_keys = set()
    for _, key, _ in outputs:
        if key is not None and base[key][0] is not None:
            uses[base[key][0]] += 1
            out_keys.add(base[key][0])
    by_key = {s.key: s for s in stmts}
    # names: the node's name; the summed variant of a node also used per sample gets _sum
    for s in stmts:
        name, mode = s.key
        s.target = name if (mode == "p" or (name, "p") not in lw.plans) else f"{name}_sum"
    taken = {s.target for s in stmts}
    for k, name in prefer.items():
        if k in by_key and name not in taken and name not in ir.nodes:
            by_key[k].target = name
            taken.add(name)
    # in place: an element-wise result overwrites a fresh operand nobody reads later
    root: dict[Key, Key] = {s.key: s.key for s in stmts}
    for s in stmts:
        if s.un and s.form != "S":
            a = s.deps[0]
            cb = base[a][0]
            if cb is not None and not base[a][1] and uses[cb] == 1 and cb not in out_keys \
                    and by_key[cb].fresh and by_key[cb].form == s.form and by_key[cb].batched == s.batched:
                c = by_key[cb]
                if c.target.startswith("_"):
                    old, r0 = c.target, root[cb]
                    for t in stmts:
                        if root[t.key] == r0 and t.target == old:
                            t.target = s.target
                    root[s.key] = r0
                s.aug = ("un", s.un, None, "", a, False)
            continue
        if s.bin is None or not s.fresh or s.form == "S":
            continue
        op, a, b, ia, ib = s.bin
        if op == "pow":
            continue
        cands = [(a, b, ia, ib, False), (b, a, ib, ia, True)]
        cands.sort(key=lambda c: base[c[0]][0] is None or not by_key[base[c[0]][0]].target.startswith("_"))
        for cand, other, idx, oidx, right in cands:
            cb = base[cand][0]
            if cb is None or base[cand][1] or idx or uses[cb] != 1 or cb in out_keys:
                continue
            c = by_key[cb]
            if not c.fresh or c.form != s.form or c.batched != s.batched or base[other][0] == cb:
                continue
            if c.target.startswith("_"):  # an anonymous temporary takes the result's name
                old, r0 = c.target, root[cb]
                for t in stmts:
                    if root[t.key] == r0 and t.target == old:
                        t.target = s.target
                root[s.key] = r0
                s.aug = ("aug", op, other, oidx, cand, right)
            else:
                s.aug = ("named", op, other, oidx, cand, right)
            break
    # a single-use anonymous scalar is written into its one reader (``S = 0.5 * np.vdot(d, d)``)
    readers: dict[Key, list[Stmt]] = {}
    for s in stmts:
        for d in s.deps:
            if base[d][0] is not None:
                readers.setdefault(base[d][0], []).append(s)
    for s in stmts:
        rs = readers.get(s.key, [])
        if s.form == "S" and s.target.startswith("_") and uses[s.key] == 1 and len(rs) == 1 \
                and s.key not in out_keys and not rs[0].aug and s.aug is None:
            s.inline = True
    return stmts, base


def _emit(lw: Lowerer, cf: Any, ir: IR, stmts: list[Stmt], base: dict, outputs: list) -> Program:
    by_key = {s.key: s for s in stmts}

    def ref(k: Key, transposed: bool = False) -> str:
        b, t, text = base[k]
        t ^= transposed
        if b is None:
            if t and lw.form(k) == "M":
                return f"{text}.swapaxes(-1, -2)" if lw.batched(k) else f"{text}.T"
            return text
        if by_key[b].inline:
            return _atom(by_key[b].text(ref))
        name = by_key[b].target
        if t and by_key[b].form == "M":
            return f"{name}.swapaxes(-1, -2)" if by_key[b].batched else f"{name}.T"
        return name

    # where each statement's reads happen: an inlined one reads at its reader's line
    pos: dict[Key, int] = {}
    readers: dict[Key, Key] = {}
    for s in stmts:
        for d in s.deps:
            if base[d][0] is not None:
                readers[base[d][0]] = s.key
    for i in range(len(stmts) - 1, -1, -1):
        s = stmts[i]
        pos[s.key] = pos[readers[s.key]] if s.inline else i
    last: dict[str, int] = {}
    for s in stmts:
        for d in s.deps:
            b = base[d][0]
            if b is not None and not by_key[b].inline:
                last[by_key[b].target] = max(last.get(by_key[b].target, -1), pos[s.key])
    keep = {by_key[base[key][0]].target for _, key, _ in outputs if key is not None and base[key][0]}
    params = [n for n in ir.leaves if n in ir.nodes or n in cf.wrt]
    params = [n for n in cf.leaves if n in params or n in cf.wrt] or params
    lines = []
    if lw.need_b:
        bsrc = next((n for n in cf.leaves if n in ir.batched), None)
        lines.append(f"B = {bsrc}.shape[0]" if bsrc else "B = 1")
    for sz in _size_bindings(ir, cf):
        lines.append(sz)
    for i, s in enumerate(stmts):
        if s.inline:
            continue
        if s.aug and s.aug[0] == "un":
            call = s.aug[1].format(a=ref(s.aug[4]))
            lines.append(call if ref(s.aug[4]) == s.target else f"{s.target} = {call}")
        elif s.aug:
            style, op, other, oidx, cand, right = s.aug
            buf, oth = ref(cand), ref(other) + oidx
            if style == "aug" and not (right and op in ("sub", "div")):
                lines.append(f"{s.target} {ELEMENTWISE_BIN[op]}= {oth}")
            else:
                ops = f"{oth}, {buf}" if right else f"{buf}, {oth}"
                call = f"{UFUNC[op]}({ops}, out={buf})"
                lines.append(call if buf == s.target else f"{s.target} = {call}")
        else:
            lines.append(f"{s.target} = {s.text(ref)}")
        dead = sorted({t for t, j in last.items() if j == i} - keep - {s.target})
        if dead:
            lines.append("del " + ", ".join(dead))
    returned: set = set()

    def like(leaf: str) -> str:
        if leaf not in ir.nodes or ir.nodes[leaf].op in LEAF_KINDS:
            return leaf
        return ref((leaf, "p"))

    def out_text(label: str, key: Key | None, leaf: str) -> str:
        if key is None:
            return f"np.zeros_like({like(leaf)})"
        b, _, text = base[key]
        txt = ref(key)
        if b is None:
            try:
                float(text)
                return f"np.full_like({like(leaf)}, {text})" if leaf else f"np.array({text})"
            except ValueError:
                return f"np.broadcast_to({txt}, {like(leaf)}.shape).copy()" if leaf else f"np.array({txt})"
        if leaf and not _same_storage(lw, key, ir, leaf):
            return f"np.broadcast_to({txt}, {like(leaf)}.shape).copy()"
        if not by_key[b].fresh or b in returned or by_key[b].inline:
            return f"np.array({txt})" if by_key[b].inline else f"{txt}.copy()"
        returned.add(b)
        return txt

    if cf.kind == "forward":
        ret = "{" + ", ".join(f'"{lab}": {out_text(lab, key, "")}' for lab, key, _ in outputs) + "}"
        lines.append(f"return {ret}")
    else:
        value = out_text(*outputs[0])
        grads = ", ".join(f'"{lab}": {out_text(lab, key, leaf)}' for lab, key, leaf in outputs[1:])
        lines.append(f"return {value}, {{{grads}}}")
    if cf.kind == "vjp" and cf.seed not in params:
        params.append(cf.seed)
    header = f"def {cf.name}({', '.join(params)}):"
    src = header + "\n" + "".join(f"    {ln}\n" for ln in lines)
    doc = _doc(cf, ir)
    return Program(cf.name, params, src, sorted(lw.helpers), doc)


def _atom(text: str) -> str:
    """``text`` parenthesised unless it already is one operand (a name, call or subscript)."""
    depth = 0
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and ch == " ":
            return f"({text})"
    return text


def _same_storage(lw: Lowerer, key: Key, ir: IR, leaf: str) -> bool:
    return lw.batched(key) == (ir.nodes[leaf].batched if leaf in ir.nodes else False)


def _size_bindings(ir: IR, cf: Any) -> list[str]:
    out = []
    for name, n in ir.nodes.items():
        if n.op != "size":
            continue
        for leaf in cf.leaves:
            if leaf not in ir.nodes:
                continue
            core = matrix_form(ir.nodes[leaf].shape)
            f = ir.nodes[leaf].form
            for ax, d in zip(("r", "c"), core):
                if d == name and ax in CORE[f]:
                    pos = CORE[f].index(ax) - len(CORE[f])
                    out.append(f"{name} = {leaf}.shape[{pos}]")
                    break
            else:
                continue
            break
        else:
            raise GraphgradError(f"size {name} is used as a value but no input's shape binds it",
                                 node=name, hint="declare an input whose shape uses it")
    return out


def _doc(cf: Any, ir: IR) -> str:
    if cf.kind == "forward":
        return "forward pass of " + ", ".join(cf.outputs)
    what = "vector-Jacobian product" if cf.kind == "vjp" else "value and gradients"
    return f"{what} of {cf.of} with respect to {', '.join(cf.wrt)}"



