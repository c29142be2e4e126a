"""The compiler's optimisation passes over its IR (:mod:`graphgrad.compiler.ir`).

:func:`build_ir` copies the needed part of an (extended) graph into a small mutable IR and
optimises it: local rewrites (σ′ via the forward σ, ‖t‖ ⊙ unit(t) = t, ‖t‖² as a dot product),
common sub-expression elimination, dead-code elimination and matrix-chain re-association from the
shapes. :mod:`graphgrad.compiler.lowering` turns the result into NumPy statements.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
import sympy as sp

from ..autodiff import sympy_to_ops
from ..graph import Graph, upstream
from ..ops import LEAF_KINDS, OPS
from ..shapes import matrix_form, normalize
from .ir import IR, IRNode, form_of


def build_ir(graph: Graph, targets: list[str], batched: frozenset, sizes: dict[str, int]) -> IR:
    """Copy what ``targets`` need out of ``graph``, mark batched nodes, and optimise."""
    nodes: dict[str, IRNode] = {}
    for n in upstream(graph, targets):
        a = graph.attrs(n)
        nodes[n] = IRNode(a["op"], tuple(a["args"]), normalize(a["shape"]), a.get("value"),
                        named=graph.is_named(n))
    ir = IR(nodes, list(targets), {}, batched, sizes,
            [n for n in nodes if nodes[n].op in LEAF_KINDS or nodes[n].op == "input"])
    _mark_batched(ir)
    _fold(ir)
    _rewrite(ir)
    _cse(ir)
    _dce(ir)
    _reassociate(ir)
    _cse(ir)
    _dce(ir)
    _mark_batched(ir)
    return ir


def _fold(ir: IR) -> None:
    """Ops on numbers alone become numbers (``drelu(0.5)`` -> ``1.0``, ``(-2) ** 2`` -> ``4.0``).

    Computed once, in float64, with the op's own kernel (what the interpreter runs), so the
    generated code never applies an array method to a Python number.
    """
    for name, n in ir.nodes.items():  # topological: operands are folded first
        spec = OPS.get(n.op)
        if spec is None or not n.args or any(ir.nodes[a].op != "literal" for a in n.args):
            continue
        if normalize(n.shape) != ():
            continue
        with np.errstate(all="ignore"):
            try:
                out = spec.numpy(*(np.full((1, 1), ir.nodes[a].value, dtype=np.float64) for a in n.args))
            except (ValueError, TypeError, ZeroDivisionError, OverflowError):
                continue
        v = np.asarray(out, dtype=np.float64).reshape(-1)
        if v.size == 1:
            ir.nodes[name] = IRNode("literal", (), (), float(v[0]), named=n.named)


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
    """Fresh ``_tN`` names, numbered after every name the IR already has; and an index of the
    IR's nodes by (op, operands, value), so that adding a node that exists reuses it."""

    def __init__(self, ir: IR) -> None:
        self.ir = ir
        nums = [int(m[2:]) for m in ir.nodes if m.startswith("_t") and m[2:].isdigit()]
        self.k = max(nums, default=0)
        self.index = {(n.op, n.args, n.value): m for m, n in ir.nodes.items()
                      if n.op not in ("input", "param", "const", "size")}

    def __call__(self, prefix: str = "_t") -> str:
        while True:
            self.k += 1
            if f"{prefix}{self.k}" not in self.ir.nodes:
                return f"{prefix}{self.k}"


def _insert(ir: IR, fresh: _Fresh, name: str, node: IRNode) -> None:
    """Add ``node`` as ``name`` (at the end; :func:`_toposort` restores the order)."""
    ir.nodes[name] = node
    fresh.index.setdefault((node.op, node.args, node.value), name)


def _toposort(ir: IR) -> None:
    """Reorder the nodes topologically, keeping the present order wherever it already is one."""
    pos = {m: i for i, m in enumerate(ir.nodes)}
    readers: dict[str, list[str]] = {}
    missing = {}
    for m, n in ir.nodes.items():
        missing[m] = len(set(n.args))
        for a in set(n.args):
            readers.setdefault(a, []).append(m)
    ready = [(pos[m], m) for m, k in missing.items() if k == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, m = heapq.heappop(ready)
        order.append(m)
        for r in readers.get(m, ()):
            missing[r] -= 1
            if missing[r] == 0:
                heapq.heappush(ready, (pos[r], r))
    ir.nodes = {m: ir.nodes[m] for m in order}


def _literal(ir: IR, fresh: _Fresh, v: float) -> str:
    key = ("literal", (), float(v))
    if key in fresh.index:
        return fresh.index[key]
    name = fresh()
    _insert(ir, fresh, name, IRNode("literal", (), (), float(v)))
    return name


def _find_or_add(ir: IR, fresh: _Fresh, op: str, args: tuple, shape: tuple) -> str:
    key = (op, args, None)
    if key in fresh.index and fresh.index[key] in ir.nodes:
        return fresh.index[key]
    name = fresh()
    _insert(ir, fresh, name, IRNode(op, args, shape))
    return name


def _rewrite(ir: IR) -> None:
    """Local rewrites that make the code read (and run) like hand-written backprop."""
    fresh = _Fresh(ir)
    for name in list(ir.nodes):
        n = ir.nodes[name]
        spec = OPS.get(n.op)
        if spec is not None and spec.of_output is not None:
            # σ′(z) = h ⊙ (1 − h) with h = σ(z), the forward value; tanh′(z) = 1 − t ⊙ t (op table)
            f, g = spec.of_output
            h = _find_or_add(ir, fresh, f, n.args, n.shape)
            t = sp.Dummy("t")
            top = sympy_to_ops(_Builder(ir, fresh, n.shape), g(t), {t: h})
            ir.nodes[name] = IRNode("id", (top,), n.shape, named=n.named)
        elif n.op == "mul":
            a, b = (ir.nodes[x] for x in n.args)
            # ‖t‖ ⊙ unit(t) = t (also at t = 0, where unit(t) = 0)
            if a.op == "norm" and b.op == "unit" and a.args == b.args:
                ir.nodes[name] = IRNode("id", a.args, n.shape, named=n.named)
            elif b.op == "norm" and a.op == "unit" and a.args == b.args:
                ir.nodes[name] = IRNode("id", a.args, n.shape, named=n.named)
            elif _unit_times_norm(ir, fresh, name, n):
                pass
            else:
                # expand(c, like) ⊙ y = c y when y already has the product's shape (the adjoint of sum)
                for e, y in ((a, n.args[1]), (b, n.args[0])):
                    if e.op == "expand" and ir.nodes[e.args[0]].op == "literal" \
                            and ir.nodes[y].shape == n.shape:
                        c = ir.nodes[e.args[0]].value
                        ir.nodes[name] = IRNode("id", (y,), n.shape, named=n.named) if c == 1.0 else \
                            IRNode("mul", (e.args[0], y), n.shape, named=n.named)
                        break
        elif n.op == "pow":
            a, p = (ir.nodes[x] for x in n.args)
            if a.op == "norm" and p.op == "literal" and p.value == 2.0:
                ir.nodes[name] = IRNode("sqnorm", a.args, n.shape, named=n.named)  # ‖t‖² = tᵀt
    _toposort(ir)
    _mark_batched(ir)


class _Builder:
    """Makes element-wise IR nodes of one shape for :func:`graphgrad.autodiff.sympy_to_ops`."""

    def __init__(self, ir: IR, fresh: _Fresh, shape: tuple) -> None:
        self.ir, self.fresh, self.shape = ir, fresh, shape

    def lit(self, v: float) -> str:
        return _literal(self.ir, self.fresh, v)

    def apply(self, op: str, *args: str) -> str:
        return _find_or_add(self.ir, self.fresh, op, args, self.shape)


def _without_norm(ir: IR, fresh: _Fresh, s: str, t: tuple, depth: int = 0) -> str | None:
    """``s / ‖t‖`` when scalar ``s`` is a product with the factor ``‖t‖`` (``""``: it is 1), else None.

    ``s`` is searched through a few levels of scalar products (an adjoint such as
    ``(L̄ · (1/n)) · (2 ‖t‖)``); new nodes are added, shared ones are left as they are.
    """
    n = ir.nodes[s]
    if n.op == "norm" and n.args == t:
        return ""
    if n.op != "mul" or depth >= 6 or form_of(n.shape) != "S":
        return None
    a, b = n.args
    for keep, look in ((a, b), (b, a)):
        rest = _without_norm(ir, fresh, look, t, depth + 1)
        if rest is not None:
            return keep if rest == "" else _find_or_add(ir, fresh, "mul", (keep, rest), n.shape)
    return None


def _unit_times_norm(ir: IR, fresh: _Fresh, name: str, n: IRNode) -> bool:
    """``unit(t) ⊙ (c ‖t‖) = c t``: the adjoint of ``‖t‖²`` reads ``2 t``, not ``2 ‖t‖ unit(t)``."""
    for u, s in (n.args, n.args[::-1]):
        if ir.nodes[u].op != "unit":
            continue
        rest = _without_norm(ir, fresh, s, ir.nodes[u].args)
        if rest is None:
            continue
        t = ir.nodes[u].args[0]
        ir.nodes[name] = IRNode("id", (t,), n.shape, named=n.named) if rest == "" else \
            IRNode("mul", (rest, t), n.shape, named=n.named)
        return True
    return False


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
                ta, tb = (_transposed(ir, fresh, x) for x in (a, b))
                ir.nodes[name] = IRNode("matmul", (tb, ta), n.shape, named=n.named)
                changed = True
    _toposort(ir)
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
        ir.nodes[name].args = tuple(_build(ir, t, factors, fresh) for t in best)
    _toposort(ir)
    _mark_batched(ir)


def _transposed(ir: IR, fresh: Any, x: str) -> str:
    n = ir.nodes[x]
    if n.op == "transpose":
        return n.args[0]
    if n.form == "S":
        return x
    r, c = matrix_form(n.shape)
    return _find_or_add(ir, fresh, "transpose", (x,), normalize((c, r)))


def _build(ir: IR, tree: Any, factors: list[str], fresh: Any) -> str:
    """Add the products of ``tree`` (bounded depth); returns the node of the top."""
    if isinstance(tree, int):
        return factors[tree]
    a = _build(ir, tree[0], factors, fresh)
    b = _build(ir, tree[1], factors, fresh)
    shape = normalize((matrix_form(ir.nodes[a].shape)[0], matrix_form(ir.nodes[b].shape)[1]))
    name = fresh()
    _insert(ir, fresh, name, IRNode("matmul", (a, b), shape))
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
