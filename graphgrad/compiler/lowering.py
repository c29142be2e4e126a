"""The compiler's back end: the optimised IR (:mod:`graphgrad.compiler.passes`) as NumPy statements.

:func:`lower` turns the IR into a :class:`Program`: straight-line NumPy source, in-place updates
and ``del`` after last uses, and the function exec'd from it.

Storage layout (what users feed): a scalar is a 0-d value, a vector ``[N]`` (and a row ``[1, N]``)
a 1-D array, a matrix 2-D; a batched value has one more, leading, axis. Every IR value has a
*form* -- ``S`` (scalar), ``V`` (column), ``R`` (row), ``M`` (matrix) -- and a batched flag. How an
op is spelled comes from its ``code`` entry in the op table (:attr:`graphgrad.ops.OpSpec.code`,
called with a :class:`Site` describing the operands); an op without one is compiled as a call of
its NumPy kernel, which a standalone module cannot hold (:meth:`Program.module` refuses). What
stays here is op-independent (layout, in-place updates, ``del``) plus three structural facts:
``id`` and ``transpose`` are views (no statement), and which ops the batch sum can be pushed
through (linear ones, and the bilinear contractions in :meth:`Lowerer._contract`). A node can be lowered in two *modes*: ``p`` (per sample) and
``s`` (summed over the batch). Gradients of unbatched variables ask for ``s``; the sum is pushed
down through linear ops, so ``Σ_b z̄_b x_bᵀ`` becomes the single GEMM ``z_bar.T @ x``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import GraphgradError, InputError
from ..naming import CodeNames, check_function_name
from ..ops import LEAF_KINDS, OPS, code_matmul, code_sqnorm
from ..shapes import matrix_form, normalize
from .ir import CORE, IR, IRNode, form_of
from .program import MATRIX_CALL, Program
from .syntax import const, expr, fill, identifier, is_statement, stmt_text, tok

__all__ = ["OutputSpec", "Site", "lower"]

IR_CODE: dict[str, Callable[..., str | None]] = {"sqnorm": code_sqnorm}
"""Code of the ops :mod:`graphgrad.compiler.passes` introduces that are not in the op table (‖t‖²)."""


@dataclass(frozen=True)


class OutputSpec:
    """What a generated function computes and takes: everything :func:`lower` reads besides the IR.

    ``kind``: ``"grad"`` (value and gradients), ``"vjp"`` (the same with the cotangent ``seed`` fed)
    or ``"forward"`` (``outputs`` by name); ``adjoint``: each ``wrt``'s adjoint node in the IR's
    graph (absent: the gradient is zero); ``leaves``: the arguments, in order, with their declared
    shapes in ``leaf_shapes``; ``reduce="sum"``: return the batch-summed value.
    """

    kind: str
    name: str
    of: str | None
    wrt: tuple[str, ...]
    outputs: tuple[str, ...]
    reduce: str | None
    leaves: tuple[str, ...]
    leaf_shapes: Mapping[str, tuple]
    adjoint: Mapping[str, str]
    seed: str | None = None


class Site:
    """What an op's ``code`` entry (:attr:`graphgrad.ops.OpSpec.code`) sees of one application.

    ``forms``/``batched_args``: the operands' storage forms (``S``, ``V``, ``R``, ``M``) and whether
    each has a leading batch axis; ``form``/``batched``: the output's; ``out``: None, or the position
    of the operand whose dead buffer the result is written into; ``literal``: whether each operand
    is a Python number in the source (a code that builds an array from one must give it the dtype
    of an array operand, or float32 code would turn float64).

    >>> from graphgrad.ops import OPS
    >>> e = Site(["V"], [True], "S", True)
    >>> OPS["sum"].code(e, ["x"], type("N", (), {"op": "sum"}))
    'x.sum(axis=-1)'
    """

    def __init__(self, forms: list[str], batched_args: list[bool], form: str, batched: bool,
                 out: int | None = None, aligned: list[str] | None = None,
                 literal: list[bool] | None = None) -> None:
        self.forms, self.batched_args, self.form, self.batched = forms, batched_args, form, batched
        self.out = out
        self.literal = literal or [False] * len(forms)
        self.helpers: dict[str, str] = {}
        self.fresh = True
        self.commutative = False  # op(a, b) = op(b, a) (OpSpec.commutative): either operand's buffer serves
        self._aligned = aligned or [""] * len(forms)

    def core(self, i: int | None = None) -> tuple[str, ...]:
        """Maths axes (``r`` rows, ``c`` columns) that operand ``i`` (None: the output) stores."""
        return CORE[self.form if i is None else self.forms[i]]

    def axes(self, i: int) -> str:
        """Operand ``i``'s maths axes as an ``axis=`` argument (``-1`` or ``(-2, -1)``)."""
        return "-1" if len(self.core(i)) == 1 else "(-2, -1)"

    def T(self, i: int) -> str:  # noqa: N802 - the maths name
        """Operand ``i`` transposed (a view: ``A.T``; a vector is its own transpose in storage)."""
        return tok(i, True)

    def aligned(self, i: int) -> str:
        """Operand ``i`` indexed so that it broadcasts against the output's storage axes."""
        return tok(i) + self._aligned[i]

    def helper(self, name: str, source: str) -> str:
        """Register a NumPy-only helper function the generated code calls; returns its name."""
        self.helpers[name] = source
        return name

    def view(self) -> None:
        """Declare that the result shares memory with an operand (it is never updated in place)."""
        self.fresh = False


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
    bin: tuple | None = None  # (a, b, a_index, b_index) for element-wise binaries with an in-place form
    un: bool = False  # an element-wise unary with a form writing into its operand
    write: dict = field(default_factory=dict)  # operand position -> callable(ref) -> in-place text
    target: str = ""
    aug: tuple | None = None  # in-place form, when chosen: (operand position, operand key)
    inline: bool = False  # written into its single reader instead of a line of its own
    shape_of: bool = False  # the value of an intermediate in wrt (its gradient's shape is read from it)


class Lowerer:
    """Plans (node, mode) values and emits statements for them."""

    def __init__(self, ir: IR, names: CodeNames) -> None:
        self.ir = ir
        self.names = names
        self.plans: dict[Key, Stmt | tuple] = {}
        self.helpers: dict[str, str] = {}
        self.kernels: dict[str, Any] = {}
        self.need_b = False
        self.known_p: set[Key] = set()  # per-sample values the program computes anyway
        # nodes whose value is a Python number in the source (built from literals and sizes only)
        self.numbers: set[str] = set()
        for name, n in ir.nodes.items():  # topological order
            if n.op in ("literal", "size") or (n.args and n.op not in LEAF_KINDS
                                                and all(a in self.numbers for a in n.args)):
                self.numbers.add(name)

    # ---------------------------------------------------------------- value descriptors
    def node(self, key: Key) -> IRNode:
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
            self.need_b = True
            if n.op == "literal":
                return ("expr", expr(f"B * {tok(0)}", const(n.value)), [])
            return Stmt(k, [(name, "p")], stmt_text(f"B * {tok(0)}", [(name, "p")]), n.form, False)
        if mode == "s" and n.op in ("input", "param", "const"):
            return Stmt(k, [(name, "p")], stmt_text(f"{tok(0)}.sum(axis=0)", [(name, "p")]), n.form, False)
        if n.op in ("input", "param", "const", "size"):
            return ("expr", identifier(self.names[name]), [])
        if n.op == "literal":
            return ("expr", const(n.value), [])
        if n.op == "id":
            return ("alias", None, [(n.args[0], mode)])
        if n.op == "transpose":
            a = (n.args[0], mode)
            return ("T" if n.form == "M" else "alias", None, [a])
        if mode == "s":
            return self._plan_sum(k, n)
        return self._plan_p(k, n)

    def _plan_sum(self, k: Key, n: IRNode) -> Stmt:
        """Σ over the batch of a batched node, pushed through ops linear in their batched operands."""
        op, args = n.op, n.args
        if (k[0], "p") in self.known_p:  # computed per sample anyway: one reduction
            return Stmt(k, [(k[0], "p")], stmt_text(f"{tok(0)}.sum(axis=0)", [(k[0], "p")]), n.form, False)
        nb = [self.ir.nodes[a].batched for a in args]
        s = lambda a: (a, "s")
        p = lambda a: (a, "p")
        spec = OPS.get(op)
        if spec is not None:  # the op table says where the sum goes (OpSpec.linear and kin)
            value_args = [i for i in range(len(args)) if i not in spec.shape_only]
            batched = [i for i in value_args if nb[i]]
            if spec.jointly_linear and set(value_args) <= set(spec.linear):  # Σ (x + c) = Σ x + B c
                return self._apply(k, n, [p(a) if i in spec.shape_only else s(a) for i, a in enumerate(args)], False)
            if len(batched) == 1 and batched[0] in spec.linear:  # Σ x_b ⊙ y = (Σ x_b) ⊙ y
                return self._apply(k, n, [s(a) if i in batched else p(a) for i, a in enumerate(args)], False)
        if spec is not None and spec.code is code_matmul and all(nb):  # bilinear: Σ_b a_b b_bᵀ = Aᵀ B
            st = self._contract(k, n)
            if st is not None:
                return st
        if op == "sqnorm" and self.ir.nodes[args[0]].form != "S":
            return Stmt(k, [p(args[0])], stmt_text(f"np.vdot({tok(0)}, {tok(0)})", [p(args[0])]), "S", False)
        # not linear in a batched operand: compute per sample, then sum
        return Stmt(k, [p(k[0])], stmt_text(f"{tok(0)}.sum(axis=0)", [p(k[0])]), n.form, False)

    def _contract(self, k: Key, n: IRNode) -> Stmt | None:
        x, y = n.args
        a, b = (x, "p"), (y, "p")
        fa, fb = self.ir.nodes[x].form, self.ir.nodes[y].form
        deps = [a, b]
        if n.op == "dot" or (fa == "R" and fb == "V"):
            return Stmt(k, deps, stmt_text(f"np.vdot({tok(0)}, {tok(1)})", deps), "S", False)
        if fa == "V" and fb == "R":  # Σ a bᵀ = Aᵀ B
            return Stmt(k, deps, stmt_text(f"{tok(0)}.T @ {tok(1)}", deps), "M", False)
        spec = {("M", "V"): "bij,bj->i", ("R", "M"): "bj,bjk->k", ("M", "M"): "bij,bjk->ik"}.get((fa, fb))
        if spec is None:
            return None
        return Stmt(k, deps, stmt_text(f"np.einsum('{spec}', {tok(0)}, {tok(1)})", deps), n.form, False)

    def _plan_p(self, k: Key, n: IRNode) -> Stmt:
        return self._apply(k, n, [(a, "p") for a in n.args], n.batched)

    # ---------------------------------------------------------------- code
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

    def _code(self, k: Key, n: IRNode) -> Callable[..., str | None]:
        """The op's ``code`` entry; for an op without one, a call of its NumPy kernel."""
        if n.op in IR_CODE:
            return IR_CODE[n.op]
        spec = OPS.get(n.op)
        if spec is None:
            raise GraphgradError(f"the compiler does not know op {n.op!r}", node=k[0],
                                 hint="add it to graphgrad.ops.OPS")
        if spec.code is not None:
            return spec.code
        if not n.op.isidentifier() or not n.op.isascii():
            raise GraphgradError(f"op {n.op!r} has no code entry and its name is no identifier, so the "
                                 "compiler cannot call its kernel", node=k[0], hint="give it a code= entry")
        self.kernels[n.op] = spec.numpy
        fn = f"_op_{n.op}"
        if spec.elementwise:  # the kernel works on the storage layout as it is (never in place)
            return lambda e, args, node: None if e.out is not None else f"{fn}({', '.join(args)})"

        def code(e: Site, args: list[str], node: IRNode) -> str:
            e.helper("_matrix_call", MATRIX_CALL)
            return f"_matrix_call({fn}, {''.join(e.forms)!r}, {e.form!r}, {', '.join(args)})"

        return code

    def _apply(self, k: Key, n: IRNode, deps: list[Key], bo: bool) -> Stmt:
        """The statement computing op node ``n`` from ``deps``, from the op's ``code`` entry."""
        code = self._code(k, n)
        spec = OPS.get(n.op)
        ew = spec is not None and spec.elementwise
        forms = [self.form(d) for d in deps]
        bat = [self.batched(d) for d in deps]
        idx = [self._align(d, n.form, bo) for d in deps]
        args = [tok(i) + (idx[i] if ew else "") for i in range(len(deps))]
        lit = [d[0] in self.numbers for d in deps]

        def site(out: int | None = None) -> Site:
            e = Site(forms, bat, n.form, bo, out, [""] * len(deps) if ew else idx, lit)
            e.commutative = spec is not None and spec.commutative
            return e

        e = site()
        template = code(e, args, n)
        self.helpers.update(e.helpers)
        if not isinstance(template, str):
            raise GraphgradError(f"op {n.op!r}'s code entry gave {template!r}, not NumPy source", node=k[0])

        def spell(r: Any) -> Callable[[int, bool], str]:
            return lambda i, t: r(deps[i], True) if t else r(deps[i])

        fresh = e.fresh and template != tok(0)
        st = Stmt(k, deps, lambda r: fill(template, spell(r)), n.form, bo, fresh)
        texts = [template]
        if ew and len(deps) in (1, 2):  # forms writing into an operand's buffer
            for i in range(len(deps)):
                w = site(i)
                text = code(w, args, n)
                if text is not None and text != template:  # the same text: the code ignores e.out
                    texts.append(text)
                    self.helpers.update(w.helpers)
                    st.write[i] = (lambda t: lambda r: fill(t, spell(r)))(text)
            if len(deps) == 1:
                st.un = bool(st.write)
            elif st.write:
                st.bin = (deps[0], deps[1], idx[0], idx[1])
        # it reads only the operands its code spells (sum_to's ``like`` gives just a shape)
        st.deps = [d for i, d in enumerate(deps) if any(tok(i) in t or tok(i, True) in t for t in texts)]
        return st


def lower(ir: IR, spec: OutputSpec) -> Program:
    """Lower the IR to a :class:`Program` computing what ``spec`` asks for."""
    check_function_name(spec.name)
    seed = [spec.seed] if spec.kind == "vjp" else []
    lw = Lowerer(ir, CodeNames([*ir.nodes, *spec.leaves, *seed, *spec.wrt], reserved=[spec.name]))
    kind = spec.kind
    of = ir.alias.get(spec.of, spec.of) if spec.of is not None else None
    batched_of = of is not None and ir.nodes[of].batched
    roots: list[Key] = []
    outputs: list[tuple[str, Key | None, str]] = []  # (label, key, leaf)
    if kind == "forward":
        for o in spec.outputs:
            key = (ir.alias[o], "p")
            roots.append(key)
            outputs.append((o, key, None))
    else:
        vkey = (of, "s" if (spec.reduce == "sum" and batched_of) else "p")
        roots.append(vkey)
        outputs.append(("", vkey, None))
        for w in spec.wrt:
            r = ir.alias.get(w, w)  # an intermediate is a target too (its name may be an alias)
            if ir.nodes.get(r) is not None and ir.nodes[r].op not in LEAF_KINDS:
                roots.append((r, "p"))  # an intermediate: its value gives the gradient's shape
            if w not in spec.adjoint:
                outputs.append((w, None, w))
                continue
            adj = ir.alias[spec.adjoint[w]]
            wb = ir.nodes[r].batched if r in ir.nodes else False
            key = (adj, "s" if (batched_of and not wb) else "p")
            roots.append(key)
            outputs.append((w, key, w))
    while True:  # plan; re-plan while sums discover per-sample values computed anyway
        lw.plans, lw.helpers, lw.kernels, lw.need_b = {}, {}, {}, False
        order = lw.plan(roots)
        found = {k for k, p in lw.plans.items() if k[1] == "p" and isinstance(p, Stmt)}
        if found <= lw.known_p:
            break
        lw.known_p |= found
    prefer = {key: leaf for _, key, leaf in outputs if key is not None and key[1] == "s" and leaf is not None}
    stmts, refs = _finish(lw, order, outputs, ir, prefer)
    return _emit(lw, spec, ir, stmts, refs, outputs)


def _join(group: dict, root: dict, cb: Key, s: Stmt) -> None:
    """Statement ``s`` updates ``cb``'s buffer in place: the buffer's statements take s's name."""
    r0 = root[cb]
    old = group[r0][-1].target
    for t in group[r0]:
        if t.target == old:
            t.target = s.target
    root[s.key] = r0
    group[r0].append(s)


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
    names = lw.names
    for s in stmts:
        name, mode = s.key
        s.target = names[name] if (mode == "p" or (name, "p") not in lw.plans) else names.derived(name, "_sum")
    for k, leaf in prefer.items():  # a batch-summed gradient is named after its variable: x_bar
        if k in by_key and names[leaf] + "_bar" not in names.taken:
            by_key[k].target = names.derived(leaf, "_bar")
    # in place: an element-wise result overwrites a fresh operand nobody reads later
    root: dict[Key, Key] = {s.key: s.key for s in stmts}
    group: dict[Key, list[Stmt]] = {s.key: [s] for s in stmts}  # statements writing one buffer
    for s in stmts:
        if s.un and s.form != "S":
            a = s.deps[0]
            cb = base[a][0]
            if cb is not None and not base[a][1] and uses[cb] == 1 and cb not in out_keys \
                    and by_key[cb].fresh and by_key[cb].form == s.form and by_key[cb].batched == s.batched:
                c = by_key[cb]
                if c.target.startswith("_"):
                    _join(group, root, cb, s)
                s.aug = (0, a)
            continue
        if s.bin is None or not s.fresh or s.form == "S":
            continue
        a, b, ia, ib = s.bin
        cands = [(a, b, ia, ib, 0), (b, a, ib, ia, 1)]
        cands = [c for c in cands if c[4] in s.write]
        cands.sort(key=lambda c: base[c[0]][0] is None or not by_key[base[c[0]][0]].target.startswith("_"))
        for cand, other, idx, _, pos in cands:
            cb = base[cand][0]
            if cb is None or base[cand][1] or idx or uses[cb] != 1 or cb in out_keys:
                continue
            c = by_key[cb]
            if not c.fresh or c.form != s.form or c.batched != s.batched or base[other][0] == cb:
                continue
            if c.target.startswith("_"):  # an anonymous temporary takes the result's name
                _join(group, root, cb, s)
            s.aug = (pos, cand)
            break
    # a single-use anonymous scalar is written into its one reader (``S = 0.5 * np.vdot(d, d)``)
    readers: dict[Key, list[Stmt]] = {}
    for s in stmts:
        for d in s.deps:
            if base[d][0] is not None:
                readers.setdefault(base[d][0], []).append(s)
    for _, _, leaf in outputs:  # an intermediate in wrt: its value gives its gradient's shape
        r = (ir.alias.get(leaf, leaf), "p")
        if leaf is not None and r in base and base[r][0] is not None:
            by_key[base[r][0]].shape_of = True
    for s in stmts:
        rs = readers.get(s.key, [])
        if s.form == "S" and s.target.startswith("_") and uses[s.key] == 1 and len(rs) == 1 \
                and s.key not in out_keys and not s.shape_of and not rs[0].aug and s.aug is None:
            s.inline = True
    return stmts, base


def _emit(lw: Lowerer, spec: OutputSpec, ir: IR, stmts: list[Stmt], base: dict, outputs: list) -> Program:
    by_key = {s.key: s for s in stmts}
    names = lw.names

    def transposed_of(value: ast.expr, batched: bool) -> ast.expr:
        return expr(f"{tok(0)}.swapaxes(-1, -2)" if batched else f"{tok(0)}.T", value)

    def ref(k: Key, transposed: bool = False) -> ast.expr:
        b, t, tree = base[k]
        t ^= transposed
        if b is None:
            return transposed_of(tree, lw.batched(k)) if t and lw.form(k) == "M" else tree
        if by_key[b].inline:
            return by_key[b].text(ref)
        name = identifier(by_key[b].target)
        return transposed_of(name, by_key[b].batched) if t and by_key[b].form == "M" else name

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
    dies: dict[int, list[str]] = {}
    for t, j in last.items():
        dies.setdefault(j, []).append(t)
    returned: set = set()
    # an array argument whose dtype numbers take when returned (float32 code returns float32)
    dtype_of = next((names[n] for n in spec.leaves if n in ir.nodes and ir.nodes[n].op in LEAF_KINDS), None)

    def like(leaf: str) -> ast.expr:
        leaf = ir.alias.get(leaf, leaf)
        if leaf not in ir.nodes or ir.nodes[leaf].op in LEAF_KINDS:
            return identifier(names[leaf])
        return ref((leaf, "p"))

    def number(value: ast.expr) -> ast.expr:
        if dtype_of is None:
            return expr(f"np.array({tok(0)})", value)
        return expr(f"np.full_like({tok(0)}, {tok(1)}, shape=())", identifier(dtype_of), value)

    def broadcast(val: ast.expr, leaf: str) -> ast.expr:
        if ir.alias.get(leaf, leaf) in lw.numbers:  # a number-valued intermediate is a scalar
            return number(val)
        return expr(f"np.broadcast_to({tok(0)}, {tok(1)}.shape).copy()", val, like(leaf))

    def out_tree(label: str, key: Key | None, leaf: str | None) -> ast.expr:
        number_leaf = leaf is not None and ir.alias.get(leaf, leaf) in lw.numbers
        if key is None:
            return number(const(0.0)) if number_leaf else expr(f"np.zeros_like({tok(0)})", like(leaf))
        b, _, _ = base[key]
        val = ref(key)
        if key[0] in lw.numbers:  # a Python number: an array of the leaf's shape and dtype
            if leaf is not None and not number_leaf:
                return expr(f"np.full_like({tok(0)}, {tok(1)})", like(leaf), val)
            return number(val)
        if b is None:
            return broadcast(val, leaf) if leaf is not None else expr(f"np.array({tok(0)})", val)
        if leaf is not None and (number_leaf or not _same_storage(lw, key, ir, leaf)):
            return broadcast(val, leaf)
        if not by_key[b].fresh or b in returned or by_key[b].inline:
            return expr(f"np.array({tok(0)})" if by_key[b].inline else f"{tok(0)}.copy()", val)
        returned.add(b)
        return val

    if spec.kind == "forward":
        ret: ast.expr = ast.Dict([ast.Constant(lab) for lab, _, _ in outputs],
                                 [_row_external(ir, key[0], out_tree(lab, key, None)) for lab, key, _ in outputs])
    else:
        grads = ast.Dict([ast.Constant(lab) for lab, _, _ in outputs[1:]],
                         [_as_external(ir, spec, leaf, out_tree(lab, key, leaf)) for lab, key, leaf in outputs[1:]])
        ret = ast.Tuple([_row_external(ir, outputs[0][1][0], out_tree(*outputs[0])), grads], ast.Load())
    keep = {by_key[base[key][0]].target for _, key, _ in outputs if key is not None and base[key][0]}
    keep |= {s.target for s in stmts if s.shape_of}  # alive until the return, which reads their shape
    params = list(spec.leaves)  # in the order CompiledFunction passes them
    body: list[ast.stmt] = []

    def assign(target: str, value: ast.expr) -> None:
        body.append(ast.Assign([ast.Name(identifier(target).id, ast.Store())], value, lineno=0))

    if lw.need_b:
        bsrc = next((n for n in spec.leaves if n in ir.batched), None)
        assign("B", expr(f"{tok(0)}.shape[0]", identifier(names[bsrc])) if bsrc is not None else ast.Constant(1))
    for size, leaf, axis in _size_bindings(ir, spec):  # a size used as a value, in the arrays' dtype
        src = identifier(names[leaf])
        assign(names[size], expr(f"{tok(0)}.dtype.type({tok(0)}.shape[{axis}])", src))
    for i, s in enumerate(stmts):
        if s.inline:
            continue
        if s.aug:  # written into the dead buffer of operand s.aug[1]
            buf, tree = ref(s.aug[1]), s.write[s.aug[0]](ref)
            same = isinstance(buf, ast.Name) and buf.id == s.target
            if is_statement(tree):  # an augmented assignment (buf += other)
                body.append(tree)
                if not same:
                    assign(s.target, buf)
            elif same:
                body.append(ast.Expr(tree))
            else:
                assign(s.target, tree)
        else:
            assign(s.target, s.text(ref))
        dead = sorted(set(dies.get(i, ())) - keep - {s.target})
        if dead:
            body.append(ast.Delete([ast.Name(identifier(d).id, ast.Del()) for d in dead]))
    body.append(ast.Return(ret))
    if spec.kind == "vjp" and spec.seed not in params:
        params.append(spec.seed)
    fn = ast.FunctionDef(
        name=check_function_name(spec.name),
        args=ast.arguments(posonlyargs=[], args=[ast.arg(identifier(names[p]).id) for p in params], vararg=None,
                           kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]),
        body=body, decorator_list=[], returns=None, lineno=0)
    if "type_params" in ast.FunctionDef._fields:  # Python 3.12+
        fn.type_params = []
    src = ast.unparse(ast.fix_missing_locations(ast.Module([fn], type_ignores=[]))) + "\n"
    doc = _doc(spec, ir, params, names)
    return Program(spec.name, params, src, sorted(lw.helpers), doc, dict(lw.helpers), dict(lw.kernels))


def _as_external(ir: IR, spec: OutputSpec, w: str, tree: ast.expr) -> ast.expr:
    """A gradient in the form users get: a row intermediate ``[1, N]`` keeps its two axes (a fed
    row is reshaped back by :class:`~graphgrad.compiler.CompiledFunction` instead)."""
    if w in spec.leaves:
        return tree
    return _row_external(ir, ir.alias.get(w, w), tree)


def _row_external(ir: IR, node: str, tree: ast.expr) -> ast.expr:
    """A value of row form ``[1, N]`` as :func:`graphgrad.evaluate` gives it, ``(1, N)`` (``(B, 1, N)``
    batched): the storage layout holds it 1-D."""
    r = ir.nodes.get(node)
    if r is None or r.form != "R":
        return tree
    return expr(f"{tok(0)}[..., None, :]", tree)


def _same_storage(lw: Lowerer, key: Key, ir: IR, leaf: str) -> bool:
    leaf = ir.alias.get(leaf, leaf)
    return lw.batched(key) == (ir.nodes[leaf].batched if leaf in ir.nodes else False)


def _size_bindings(ir: IR, spec: OutputSpec) -> list[tuple[str, str, int]]:
    """(size, leaf, axis): each size used as a value, read from ``leaf.shape[axis]``."""
    out = []
    for name, n in ir.nodes.items():
        if n.op != "size":
            continue
        for leaf in spec.leaves:  # (a leaf fed only to bind a size is no IR node: read the graph)
            shape = normalize(spec.leaf_shapes[leaf])
            core, f = matrix_form(shape), form_of(shape)
            for ax, d in zip(("r", "c"), core):
                if d == name and ax in CORE[f]:
                    pos = CORE[f].index(ax) - len(CORE[f])
                    out.append((name, leaf, pos))
                    break
            else:
                continue
            break
        else:
            raise InputError(f"size {name} is not bound: it is used as a value but no array fed binds it",
                             node=name, hint=f"feed an array whose shape uses {name}, or pass "
                             f"sizes={{'{name}': ...}} (graphgrad.grad then runs the interpreter)")
    return out


def _doc(spec: OutputSpec, ir: IR, params: list[str], names: CodeNames) -> str:
    """The module docstring: what the function computes, its call, and its arguments' layout."""
    if spec.kind == "forward":
        what = "forward pass of " + ", ".join(spec.outputs)
        returns = "{" + ", ".join(f'"{o}": ...' for o in spec.outputs) + "}"
    else:
        kind = "vector-Jacobian product" if spec.kind == "vjp" else "value and gradients"
        what = f"{kind} of {spec.of} with respect to {', '.join(spec.wrt)}"
        returns = f"({spec.of}, {{" + ", ".join(f'"{w}": {w}_bar' for w in spec.wrt) + "})"
    rows = []
    for p in params:
        n = ir.nodes.get(p)
        shown = names[p] if names[p] == p else f"{names[p]} ({p!r})"  # a mangled name: the original too
        if n is None:
            rows.append((shown, "", "not read"))
            continue
        r, c = matrix_form(n.shape)
        core = {"S": (), "V": (r,), "R": (c,), "M": (r, c)}[n.form]
        dims = (("B",) if n.batched else ()) + core
        kind = "cotangent of " + str(spec.of) if p == spec.seed else n.op
        rows.append((shown, "(" + ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")", kind))
    w1 = max(len(r[0]) for r in rows) if rows else 0
    w2 = max(len(r[1]) for r in rows) if rows else 0
    table = "".join(f"    {a:<{w1}}  {b:<{w2}}  {c}\n" for a, b, c in rows)
    return (f"{what}.\n\n{spec.name}({', '.join(names[p] for p in params)}) -> {returns}\n\n"
            "Arguments: NumPy arrays of one float dtype, in graphgrad's storage layout (vectors [N] and\n"
            "rows [1, N] 1-D, matrices 2-D, a batch as the leading axis B):\n" + table
            + ("Gradients have their variable's shape; those of unbatched variables are summed over the batch.\n"
               if spec.kind != "forward" else ""))

