"""Hypothesis strategies for graphgrad: random well-formed models with domain-safe values.

:func:`models` draws a :class:`Model`: a random DAG over the public ops of the op table (named
and anonymous nodes, aliases, shared sub-expressions, fan-out, residual branches, literals and
size names used as scalars), values for every leaf, and a scalar loss ``L`` that every sink
reaches. Values are *domain-safe*: while the model is drawn, each node's value is computed with
the op's own kernel, and an operand outside the op's smooth domain (``spec.domain``, ``spec.kinks``)
is first wrapped (``x*x + c`` for ops that need positive operands, ``x + c`` away from a kink);
values that grow large are squashed with ``tanh``. So finite differences are meaningful on every
drawn model.

:func:`to_text` writes a graph as model text (the format of :mod:`graphgrad.frontends.text`), and
:func:`model_texts` draws valid model texts, e.g. as seeds for the parser fuzzers.

Hypothesis profiles: ``ci`` (derandomised, no example database, bounded counts) is loaded when
the ``CI`` environment variable is set, else ``dev``; ``HYPOTHESIS_PROFILE`` picks one by name
(``fuzz`` runs 20x the examples). Tests size their example counts with :func:`examples`.

>>> examples(40) in (40, 800)
True
"""

from __future__ import annotations

import keyword
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import graphgrad as gg
from graphgrad.errors import ShapeError
from graphgrad.ops import OPS, PUBLIC_OPS
from graphgrad.shapes import matrix_form, normalize

# ----------------------------------------------------------------------------- profiles

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                     HealthCheck.filter_too_much])
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("dev", **_COMMON)
settings.register_profile("fuzz", **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

SCALE = 20 if settings._current_profile == "fuzz" else 1  # noqa: SLF001 - no public getter


def examples(n: int) -> int:
    """Example count for a test: ``n``, times 20 under the ``fuzz`` profile."""
    return n * SCALE


# ----------------------------------------------------------------------------- the model generator

SIZES = ("N", "K")
LEAF_SHAPES: tuple[tuple, ...] = ((), ("N",), ("K",), ("K", "N"), ("N", "K"), ("N", "N"))
UNARY = tuple(o for o in PUBLIC_OPS if OPS[o].arity == 1)
BINARY = tuple(o for o in PUBLIC_OPS if OPS[o].arity == 2)
EXPONENTS = (2.0, 3.0, 0.5, -1.0, 1.5, -0.5)
LITERALS = (-2.0, -0.5, 0.5, 1.5, 2.0, 3.0)
STEMS = ("h", "z", "W", "y", "a", "alpha", "out", "x_bar", "t", "h_bar")
BIG = 20.0  # values larger than this are squashed with tanh before reuse
KINK_MARGIN = 0.05
NORM_MIN = 0.1


@dataclass
class Model:
    """A drawn model: ``graph``, the values to feed (``inputs``, external shapes) and the loss."""

    graph: gg.Graph
    inputs: dict[str, np.ndarray]
    of: str = "L"
    sizes: dict[str, int] = field(default_factory=dict)
    batch: int | None = None

    @property
    def text(self) -> str:
        """The model as model text."""
        return to_text(self.graph)

    def params(self) -> list[str]:
        """Leaves that carry no batch axis (every leaf when unbatched)."""
        return [n for n in self.graph.leaves() if not (self.batch and self.graph.op(n) == "input")]

    def __iter__(self):  # (graph, inputs) unpacking
        return iter((self.graph, self.inputs))

    def _repr_pretty_(self, p, cycle) -> None:  # how hypothesis shows a falsifying example
        p.text(repr(self))

    def __repr__(self) -> str:
        vals = "\n".join(f"  {k} = {np.array2string(np.asarray(v), precision=17)}" for k, v in self.inputs.items())
        return f"Model(sizes={self.sizes}, batch={self.batch})\n{self.text}values:\n{vals}"


class _Builder:
    """Builds one random model, tracking every node's value to keep operands in their domain."""

    def __init__(self, draw, sizes: dict[str, int], batch: int | None, rng: np.random.Generator,
                 max_ops: int) -> None:
        self.draw, self.sizes, self.batch, self.rng = draw, sizes, batch, rng
        self.g = gg.Graph()
        self.val: dict[str, np.ndarray] = {}  # matrix forms, with a batch axis where batched
        self.pool: list[str] = []  # nodes that may be operands
        self.inputs: dict[str, np.ndarray] = {}
        self.names = 0
        self.max_ops = max_ops

    # -------------------------------------------------------------- leaves and values
    def dims(self, shape: tuple) -> tuple[int, ...]:
        return tuple(self.sizes[d] if isinstance(d, str) else d for d in shape)

    def leaf(self, shape: tuple, kind: str | None = None) -> str:
        kind = kind or self.draw(st.sampled_from(("input", "param", "const")))
        name = self.fresh_name(kind[0] if kind != "param" else "W")
        getattr(self.g, kind)(name, shape)
        ext = self.dims(normalize(shape))
        if kind == "input" and self.batch:
            ext = (self.batch, *ext)
        v = self.rng.uniform(-1.5, 1.5, ext)
        # feed a vector as (N,) or (N, 1) at random: both are accepted
        if len(normalize(shape)) == 1 and not (kind == "input" and self.batch) and self.draw(st.booleans()):
            v = v.reshape(*v.shape, 1)
        self.inputs[name] = v
        lead = (self.batch,) if kind == "input" and self.batch else ()
        self.val[name] = v.reshape(lead + matrix_form(self.dims(normalize(shape))))
        self.pool.append(name)
        return name

    def fresh_name(self, stem: str | None = None) -> str:
        stem = stem or self.draw(st.sampled_from(STEMS))
        self.names += 1
        name = f"{stem}{self.names}"
        assert name.isidentifier() and not keyword.iskeyword(name)
        return name

    def literal(self, values=LITERALS) -> str:
        return self.g.literal(self.draw(st.sampled_from(values))).name

    def node(self, op: str, *args: str, name: str | None = None) -> str | None:
        """Add op(*args) if shapes fit; compute and record its value. None if shapes do not fit."""
        if not self.fits(op, *args):
            return None
        var = self.g.apply(op, *args, name=name)
        with np.errstate(all="ignore"):
            out = OPS[op].numpy(*(self._v(a) for a in args))
        self.val[var.name] = np.asarray(out, dtype=np.float64)
        return var.name

    def _v(self, n: str) -> np.ndarray:
        if n not in self.val:  # literals and size nodes
            a = self.g.attrs(n)
            self.val[n] = np.full((1, 1), a["value"] if a["op"] == "literal" else self.sizes[n], float)
        return self.val[n]

    def fits(self, op: str, *args: str) -> bool:
        """Whether op's shape rule accepts the operands, both as declared and at the drawn sizes
        (a size name agrees with any int statically; the values must agree too)."""
        shapes = [self.g.shape(a) for a in args]
        try:
            OPS[op].shape(*shapes)
            OPS[op].shape(*(self.dims(s) for s in shapes))
            return True
        except ShapeError:
            return False

    def is_leafish(self, n: str) -> bool:
        return self.g.op(n) in ("literal", "size")

    # -------------------------------------------------------------- domain safety
    def safe(self, op: str, a: str) -> str:
        """``a``, or a wrapped version of it inside op's smooth domain."""
        spec = OPS[op]
        lo = spec.domain[0]
        v = self._v(a)
        if op == "exp" and np.max(v) > 3.0:
            a = self.node("tanh", a)
            v = self._v(a)
        if lo > 0 and np.min(v) < lo:
            if self.is_leafish(a):
                return self.literal(tuple(x for x in LITERALS if x >= lo))
            a = self.node("add", self.node("mul", a, a), self.g.literal(lo + 0.25).name)
            v = self._v(a)
        for k in spec.kinks:
            while np.min(np.abs(v - k)) < KINK_MARGIN:
                a = self.node("add", a, self.g.literal(0.125).name)
                v = self._v(a)
        return a

    def settle(self, n: str | None) -> str | None:
        """Put a new node in the pool, squashed with tanh if its values are large."""
        if n is None:
            return None
        v = self._v(n)
        if not np.all(np.isfinite(v)):
            raise AssertionError(f"generator made a non-finite value at {n}")  # a generator bug
        if np.max(np.abs(v)) > BIG:
            n = self.node("tanh", n)
        self.pool.append(n)
        return n

    def maybe_name(self) -> str | None:
        return self.fresh_name() if self.draw(st.booleans()) else None

    # -------------------------------------------------------------- steps
    def pick(self) -> str:
        return self.draw(st.sampled_from(self.pool))

    def unary_step(self) -> None:
        op = self.draw(st.sampled_from(UNARY))
        a = self.safe(op, self.pick())
        if op == "norm" and np.min(np_norm(self._v(a))) < NORM_MIN:
            op = "sum"
        self.settle(self.node(op, a, name=self.maybe_name()))

    def binary_step(self) -> None:
        op = self.draw(st.sampled_from(BINARY))
        a = self.pick()
        if op == "pow":
            a = self.safe(op, a)
            p = self.literal(EXPONENTS)
            self.settle(self.node(op, a, p, name=self.maybe_name()))
            return
        how = self.draw(st.sampled_from(("pool", "pool", "same", "literal", "size", "new")))
        spec = OPS[op]
        if how == "same":
            b = a  # x * x: one operand used twice
        elif how == "literal" and spec.elementwise:
            b = self.literal()
        elif how == "size" and spec.elementwise:
            used = [d for n in self.g.leaves() for d in self.g.shape(n) if isinstance(d, str)]
            b = self.g.size(self.draw(st.sampled_from(sorted(set(used))))).name if used else self.literal()
        else:
            fits = [b for b in self.pool if self.fits(op, a, b)]
            if how == "new" or not fits:
                b = self.leaf(self.partner_shape(op, self.g.shape(a)))
            else:
                b = self.draw(st.sampled_from(fits))
        if self.draw(st.booleans()):
            a, b = b, a
        if spec.elementwise and spec.domain[0] > 0:
            a, b = self.safe(op, a), self.safe(op, b)
        if op in ("add", "sub", "mul", "div") and self.is_leafish(a) and self.is_leafish(b):
            a = self.pick()  # no op between two numbers (the parser would fold it)
            if spec.domain[0] > 0:
                a = self.safe(op, a)
        self.settle(self.node(op, a, b, name=self.maybe_name()))

    def partner_shape(self, op: str, shape: tuple) -> tuple:
        if op == "matmul":
            return normalize((matrix_form(shape)[1], self.draw(st.sampled_from((1, *SIZES)))))
        if op == "dot":
            return shape if len(shape) == 1 else ("N",)
        return self.draw(st.sampled_from((shape, ())))

    def residual_step(self) -> None:
        """y = a + f(a): a residual branch (a reaches y along two paths)."""
        a = self.pick()
        shape = self.g.shape(a)
        if self.draw(st.booleans()) and len(shape) >= 1:
            rows = matrix_form(shape)[0]
            W = self.leaf((rows, rows), "param")
            branch = self.node("matmul", W, self.node("tanh", a))
        else:
            branch = self.node(self.draw(st.sampled_from(("tanh", "sigmoid", "neg"))), a)
        self.settle(self.node("add", a, branch, name=self.maybe_name()))

    def alias_step(self) -> None:
        """y = h: a second name for a named value (an ``id`` node)."""
        named = [n for n in self.pool if self.g.is_named(n)]
        if named:
            old = self.draw(st.sampled_from(named))
            new = self.g.name_node(old, self.fresh_name()).name
            self.val[new] = self._v(old)
            self.settle(new)

    def build(self) -> Model:
        first = self.leaf(self.draw(st.sampled_from(LEAF_SHAPES[1:])), "input")
        for _ in range(self.draw(st.integers(0, 2))):
            self.leaf(self.draw(st.sampled_from(LEAF_SHAPES)))
        steps = self.draw(st.lists(st.sampled_from(("unary", "binary", "binary", "residual", "alias")),
                                   min_size=1, max_size=self.max_ops))
        for s in steps:
            getattr(self, s + "_step")()
        self.loss(first)
        return Model(self.g, self.inputs, "L", dict(self.sizes), self.batch)

    def loss(self, first: str) -> None:
        """L = sum of one scalar reduction per sink, so every node reaches L."""
        used = {a for n in self.g.nx for a in self.g.args(n)}
        sinks = [n for n in self.pool if n not in used and not self.is_leafish(n)] or [first]
        terms = []
        for s in sinks:
            how = self.draw(st.sampled_from(("sum", "mean", "norm2", "dot")))
            if self.g.shape(s) == ():
                terms.append(s)
            elif how == "norm2" and np.min(np_norm(self._v(s))) >= NORM_MIN:
                terms.append(self.node("pow", self.node("norm", s), self.g.literal(2.0).name))
            elif how == "dot" and len(self.g.shape(s)) == 1:
                terms.append(self.node("dot", s, self.leaf(self.g.shape(s), "const")))
            else:
                terms.append(self.node("mean" if how == "mean" else "sum", s))
        total = terms[0]
        for t in terms[1:]:
            total = self.node("add", total, t)
        self.g.name_node(total, "L")


def np_norm(v: np.ndarray) -> np.ndarray:
    """Norm over the maths axes (one per sample)."""
    return np.sqrt(np.sum(v * v, axis=(-2, -1)))




@st.composite
def models(draw, max_ops: int = 8, batch: bool | None = False, max_size: int = 3) -> Model:
    """A random well-formed model with domain-safe values and scalar loss ``L``.

    ``batch``: False (no batch axis), True (inputs carry a leading batch axis of 2 or 3), None
    (either). Sizes N and K are drawn from 1..max_size.
    """
    b = draw(st.sampled_from((2, 3))) if batch or (batch is None and draw(st.booleans())) else None
    # with a batch axis, sizes of 1 are ambiguous: x[N] fed (B, 1) reads as one (N, 1) column
    sizes = {d: draw(st.integers(2 if b else 1, max(max_size, 2))) for d in SIZES}
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return _Builder(draw, sizes, b, rng, max_ops).build()


def graphs_and_inputs(**kw: Any) -> st.SearchStrategy[tuple[gg.Graph, dict[str, np.ndarray]]]:
    """``(graph, inputs)`` pairs (see :func:`models`)."""
    return models(**kw).map(lambda m: (m.graph, m.inputs))


# ----------------------------------------------------------------------------- model text


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@", "pow": "**"}


def to_text(graph: gg.Graph) -> str:
    """Model text for a graph: declarations, then one equation per named node.

    Anonymous sub-expressions are written inline (fully parenthesised); literals as Python
    floats. ``parse(to_text(g)) == g`` for graphs without shared anonymous sub-expressions.

    >>> g = gg.parse("input x[N]\\nparam W[K, N]\\nh = sigmoid(W @ x + 1.5)")
    >>> print(to_text(g), end="")
    input x[N]
    param W[K, N]
    h = sigmoid(((W @ x) + 1.5))
    """
    lines = []
    for n in graph.leaves():
        dims = ", ".join(str(d) for d in graph.shape(n))
        lines.append(f"{graph.op(n)} {n}" + (f"[{dims}]" if dims else ""))
    expr: dict[str, str] = {}
    for n in graph.topo_order():  # iterative: operands are written before their users
        a = graph.attrs(n)
        op = a["op"]
        if op == "literal":
            v = a["value"]
            expr[n] = repr(v) if v >= 0 else f"({v!r})"
            continue
        if op in ("input", "param", "const", "size"):
            expr[n] = n
            continue
        args = [expr[x] for x in a["args"]]
        if op in _INFIX:
            e = f"({args[0]} {_INFIX[op]} {args[1]})"
        elif op == "neg":
            e = f"(-{args[0]})"
        elif op == "transpose":
            e = f"{args[0]}.T"
        elif op == "id":
            e = args[0]
        else:
            e = f"{op}({', '.join(args)})"
        if graph.is_named(n):
            lines.append(f"{n} = {e}")
            expr[n] = n
        else:
            expr[n] = e
    return "\n".join(lines) + "\n"


@st.composite
def model_texts(draw, max_ops: int = 6) -> str:
    """Valid model text (from a drawn model)."""
    return to_text(draw(models(max_ops=max_ops)).graph)


def chain_text(n: int, op: str = "tanh") -> str:
    """A model of ``n`` chained equations ``h{i} = op(h{i-1})`` and a loss ``L = sum(h{n})``."""
    lines = ["input x[N]", f"h0 = {op}(x)"]
    lines += [f"h{i} = {op}(h{i - 1})" for i in range(1, n)]
    lines.append(f"L = sum(h{n - 1})")
    return "\n".join(lines) + "\n"



# ----------------------------------------------------------------------------- typed expressions
# Small typed expressions as model *text*: the adversarial fuzzer's generator. Trees are drawn by
# target shape (so every one type-checks), printed with exactly the parentheses Python's grammar
# needs (sometimes more), over every public op, and evaluated as they are drawn, with the op
# table's own kernels, so that operands are kept in each op's domain and values stay moderate.

EXPR_SIZES = ("N", "K")
DECLARABLE: tuple[tuple, ...] = ((), ("N",), ("K",), ("N", "K"), (1, "N"))
"""Shapes of declared leaves (input/param/const)."""
EXPR_SHAPES: tuple[tuple, ...] = DECLARABLE + (("K", "N"), (1, "K"), ("N", "N"), ("K", "K"))
"""Every shape a sub-expression may have (the others come from transposes and products)."""
EXPR_LITERALS = (0.0, 1.0, 2.0, 0.5, 0.25, 1.5, 3.0, -0.5, -1.0, -2.0, -1.5)
EXPR_EXPONENTS = (2.0, 3.0, 1.0, 0.0, -1.0, -2.0, 0.5, 1.5, -0.5, 2.5)
POS_MIN = 0.25  # log, sqrt, a divisor and a base with a fractional or negative exponent: >= this
EXP_MAX = 5.0  # exp's operand is squashed above this (exp(5) ~ 148)
EXPR_BIG = 100.0  # values larger than this are squashed with tanh before they are used
P_ATOM, P_POSTFIX, P_POW, P_UNARY, P_MUL, P_ADD = 100, 90, 30, 25, 20, 10  # binding strengths
_INFIX_PREC = {"add": P_ADD, "sub": P_ADD, "mul": P_MUL, "div": P_MUL, "matmul": P_MUL, "pow": P_POW}


def _op_classes() -> dict[str, tuple[str, ...]]:
    """The public ops by how the typed generator draws them (``other``: ops it cannot draw yet;
    tests/test_engines_agree.py fails while there are any)."""
    classes: dict[str, list[str]] = {"unary": [], "binary": [], "power": [], "reduce": [], "matmul": [],
                                     "dot": [], "transpose": [], "other": []}
    for name in PUBLIC_OPS:
        s = OPS[name]
        if name in ("matmul", "dot", "transpose"):
            classes[name].append(name)
        elif s.const_args:
            classes["power"].append(name)
        elif s.elementwise and s.arity == 1:
            classes["unary"].append(name)
        elif s.elementwise and s.arity == 2:
            classes["binary"].append(name)
        elif s.arity == 1 and normalize(s.shape(("N", "K"))) == ():
            classes["reduce"].append(name)
        else:
            classes["other"].append(name)
    return {k: tuple(v) for k, v in classes.items()}


OP_CLASSES = _op_classes()


def _shape_table(op: str, arity: int) -> dict[tuple, list[tuple]]:
    """For each shape in EXPR_SHAPES: the operand shapes (from EXPR_SHAPES) op maps to it."""
    import itertools

    table: dict[tuple, list[tuple]] = {s: [] for s in EXPR_SHAPES}
    for args in itertools.product(EXPR_SHAPES, repeat=arity):
        try:
            out = normalize(OPS[op].shape(*args))
        except ShapeError:
            continue
        if out in table:
            table[out].append(args)
    return table


_BINARY_SHAPES = _shape_table("add", 2)
_MATMUL_SHAPES = _shape_table("matmul", 2)
_DOT_SHAPES = _shape_table("dot", 2)[()]
_TRANSPOSE_SHAPES = _shape_table("transpose", 1)


@dataclass
class Expr:
    """A drawn sub-expression: its text (and binding strength), shape and value (matrix form)."""

    text: str
    prec: int
    shape: tuple
    value: np.ndarray
    num: bool = False  # a pure number: the parser folds arithmetic on numbers
    depth: int = 0


@dataclass
class TypedModel:
    """A drawn model text with its parsed graph, the values to feed, and ``wrt``.

    ``expected`` is the generator's own value of every named node (external form, computed
    with the op table's kernels as the tree was drawn): the parsed text must evaluate to it.
    ``unsafe``: operands were *not* kept in their ops' domains (log of negatives, 0 ** -1, ...).
    """

    text: str
    graph: gg.Graph
    inputs: dict[str, Any]
    wrt: list[str]
    sizes: dict[str, int]
    batch: int | None
    expected: dict[str, np.ndarray]
    unsafe: bool = False
    ops: frozenset = frozenset()
    of: str = "L"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))

    def __repr__(self) -> str:
        vals = "\n".join(f"  {k} = {np.array2string(np.asarray(v), precision=17)}" for k, v in self.inputs.items())
        return (f"TypedModel(sizes={self.sizes}, batch={self.batch}, unsafe={self.unsafe}, wrt={self.wrt})\n"
                f"{self.text}values:\n{vals}")


def _ext(shape: tuple, v: np.ndarray) -> np.ndarray:
    """Matrix form -> what evaluate returns (scalars 0-d, vectors 1-D, batch axis kept)."""
    n = len(normalize(shape))
    return v[..., 0, 0] if n == 0 else v[..., :, 0] if n == 1 else v


def _vmin(v: np.ndarray) -> float:
    return float(np.min(v, initial=np.inf))


def _vabsmax(v: np.ndarray) -> float:
    return float(np.max(np.abs(v), initial=0.0))


class _TypedBuilder:
    """Draws one typed model: declarations, a few named lines, and a scalar loss ``L``."""

    def __init__(self, draw, sizes: dict[str, int], batch: int | None, rng: np.random.Generator,
                 depth: int, unsafe: bool) -> None:
        self.draw, self.sizes, self.batch, self.rng = draw, sizes, batch, rng
        self.max_depth, self.unsafe = depth, unsafe
        self.decls: list[tuple[str, str, tuple]] = []  # (kind, name, shape)
        self.lines: list[tuple[str, str]] = []  # (name, text)
        self.named: dict[str, Expr] = {}  # every name so far -> an Expr that stands for it
        self.used: set[str] = set()
        self.inputs: dict[str, Any] = {}
        self.ops: set[str] = set()
        self.count = 0

    # -------------------------------------------------------------- values
    def dims(self, shape: tuple) -> tuple[int, int]:
        return tuple(self.sizes[d] if isinstance(d, str) else d for d in matrix_form(shape))

    def lead(self, batched: bool) -> tuple:
        return (self.batch,) if batched and self.batch else ()

    def apply(self, op: str, *args: Expr) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = OPS[op].numpy(*(a.value for a in args))
        return np.asarray(out, dtype=np.float64)

    # -------------------------------------------------------------- text
    @staticmethod
    def paren(e: Expr) -> str:
        return f"({e.text})"

    def side(self, e: Expr, need: int, strict: bool) -> str:
        """e's text as an operand that must bind at least ``need`` (more, when ``strict``)."""
        ok = e.prec > need if strict else e.prec >= need
        if not ok or (e.prec < P_ATOM and self.draw(st.integers(0, 9)) == 0):  # sometimes redundant
            return self.paren(e)
        return e.text

    def mk(self, op: str, *args: Expr, text: str | None = None, prec: int = P_ATOM) -> Expr:
        """The Expr of op(*args), spelled as an infix/prefix/postfix operator or a call."""
        self.ops.add(op)
        shape = normalize(OPS[op].shape(*(a.shape for a in args)))
        value = self.apply(op, *args)
        num = all(a.num for a in args) and op in ("neg", "add", "sub", "mul", "div", "pow")
        depth = 1 + max(a.depth for a in args)
        if text is None:
            style = self.draw(st.sampled_from(("op", "op", "op", "call")))
            if style == "call" or op not in (*_INFIX_PREC, "neg", "transpose"):
                text, prec = f"{op}({', '.join(a.text for a in args)})", P_ATOM
            elif op in _INFIX_PREC:
                p = _INFIX_PREC[op]
                sym = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@", "pow": "**"}[op]
                if op == "pow":  # right-associative; the exponent is a number
                    text = f"{self.side(args[0], P_POW, True)} ** {args[1].text}"
                else:
                    text = f"{self.side(args[0], p, False)} {sym} {self.side(args[1], p, True)}"
                prec = p
            elif op == "neg":
                text, prec = f"-{self.side(args[0], P_UNARY, False)}", P_UNARY
            else:  # transpose
                text, prec = f"{self.side(args[0], P_POSTFIX, False)}.T", P_POSTFIX
        return Expr(text, prec, shape, value, num, depth)

    # -------------------------------------------------------------- leaves
    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def declare(self, shape: tuple) -> Expr:
        kind = self.draw(st.sampled_from(("input", "param", "const")))
        name = self.fresh({"input": "x", "param": "w", "const": "c"}[kind])
        self.decls.append((kind, name, shape))
        batched = kind == "input" and bool(self.batch)
        r, c = self.dims(shape)
        v = self.rng.uniform(-1.5, 1.5, self.lead(batched) + (r, c))
        if v.size and self.draw(st.integers(0, 7)) == 0:  # an exact 0 now and then (relu's kink, 0 ** p)
            v.reshape(-1)[self.draw(st.integers(0, v.size - 1))] = 0.0
        n = len(normalize(shape))
        lead = self.lead(batched)
        if n == 0:
            fed: Any = v.reshape(lead)
            if not batched and self.draw(st.booleans()):
                fed = float(fed)
        elif n == 1:
            fed = v.reshape(lead + (r,))
            if not batched and self.draw(st.booleans()):
                fed = v.reshape(r, 1)  # a column fed (N, 1)
        else:
            fed = v.reshape(lead + (r, c))
        self.inputs[name] = fed
        e = Expr(name, P_ATOM, normalize(shape), v)
        self.named[name] = e
        return e

    def size_value(self) -> Expr:
        """A size name used as a value (N); some declaration then uses it (perhaps one L needs not)."""
        d = self.draw(st.sampled_from(EXPR_SIZES))
        if not any(d in shape for _, _, shape in self.decls):
            self.declare(self.draw(st.sampled_from([s for s in DECLARABLE if d in s])))
        return Expr(d, P_ATOM, (), np.full((1, 1), float(self.sizes[d])))

    def terminal(self, shape: tuple) -> Expr:
        choices = ["name"] * 3 + (["new"] if shape in DECLARABLE else [])
        if shape == ():
            choices += ["literal", "literal", "size"]
        if shape not in DECLARABLE:
            choices += ["composite"] * 3
        how = self.draw(st.sampled_from(choices))
        have = [n for n, e in self.named.items() if e.shape == shape]
        if how == "name" and have:
            n = self.draw(st.sampled_from(have))
            self.used.add(n)
            return self.named[n]
        if how == "literal":
            v = self.draw(st.sampled_from(EXPR_LITERALS))
            text = repr(v) if self.draw(st.booleans()) or v != int(v) else str(int(v))
            prec = P_ATOM if v >= 0 else P_UNARY
            return Expr(text, prec, (), np.full((1, 1), v), num=True)
        if how == "size":
            return self.size_value()
        if shape in DECLARABLE:
            return self.declare(shape)
        # (K, N), (1, K), (N, N), (K, K): a transpose, or an outer product, of simpler terminals
        t = [a for (a,) in _TRANSPOSE_SHAPES[shape]]
        if t and (t[0] in DECLARABLE or shape[0] == 1):
            return self.mk("transpose", self.terminal(t[0]))
        col, row = (shape[0],), (1, shape[1])
        return self.mk("matmul", self.terminal(col), self.terminal(row))

    # -------------------------------------------------------------- domain safety
    def positive(self, e: Expr) -> Expr:
        """e, or e wrapped so that its values are >= POS_MIN (unless the model is unsafe)."""
        if self.unsafe or _vmin(e.value) >= POS_MIN:
            return e
        short = len(e.text) <= 30  # e * e writes e twice: only for short e (texts stay linear)
        how = self.draw(st.sampled_from(("square", "exp", "sigmoid", "hypot") if short else ("exp", "sigmoid")))
        lit = lambda v: Expr(repr(v), P_ATOM, (), np.full((1, 1), v), num=True)  # noqa: E731
        if how == "square":
            return self.mk("add", self.mk("mul", e, e), lit(POS_MIN))
        if how == "exp":
            return self.mk("exp", self.mk("tanh", e))
        if how == "sigmoid":
            return self.mk("add", self.mk("sigmoid", e), lit(0.5))
        return self.mk("sqrt", self.mk("add", self.mk("mul", e, e), lit(1.0)))

    def settle(self, e: Expr) -> Expr:
        """Squash large values with tanh, so that later ops see moderate numbers."""
        v = e.value
        if np.all(np.isfinite(v)) and _vabsmax(v) > EXPR_BIG:
            return self.mk("tanh", e)
        return e

    def not_number(self, e: Expr) -> Expr:
        """e, or a non-number of its shape in its place (the parser would fold number op number)."""
        return self.terminal_nonnum(e.shape) if e.num else e

    def terminal_nonnum(self, shape: tuple) -> Expr:
        for _ in range(5):
            t = self.terminal(shape)
            if not t.num:
                return t
        return self.declare(shape) if shape in DECLARABLE else self.terminal(shape)

    # -------------------------------------------------------------- the tree
    def expr(self, shape: tuple, depth: int, top: bool = False) -> Expr:
        if depth <= 0 or (not top and self.draw(st.integers(0, 4)) == 0):
            return self.terminal(shape)
        kinds = ["unary", "unary", "binary", "binary", "power", "neg"]
        if shape == ():
            kinds += ["reduce", "reduce", "dot"]
        if _MATMUL_SHAPES[shape]:
            kinds += ["matmul"]
        if shape != () and _TRANSPOSE_SHAPES[shape]:
            kinds += ["transpose"]
        kind = self.draw(st.sampled_from(kinds))
        sub = depth - 1
        if kind == "neg":
            return self.settle(self.mk("neg", self.expr(shape, sub)))
        if kind == "unary":
            op = self.draw(st.sampled_from(OP_CLASSES["unary"]))
            a = self.expr(shape, sub)
            if OPS[op].domain[0] > 0:  # log, sqrt
                a = self.positive(a)
            if op == "exp" and not self.unsafe and np.max(a.value, initial=-np.inf) > EXP_MAX:
                a = self.mk("tanh", a)
            return self.settle(self.mk(op, a))
        if kind == "binary":
            op = self.draw(st.sampled_from(OP_CLASSES["binary"]))
            pairs = _BINARY_SHAPES[shape]
            sa, sb = self.draw(st.sampled_from([(shape, shape)] * len(pairs) + pairs))
            a, b = self.expr(sa, sub), self.expr(sb, sub)
            if OPS[op].domain[0] > 0 and op == "div":
                b = self.positive(b) if _vmin(np.abs(b.value)) < POS_MIN else b
            elif OPS[op].domain[0] > 0:
                a, b = self.positive(a), self.positive(b)
            if a.num and b.num:
                a = self.not_number(a)
            return self.settle(self.mk(op, a, b))
        if kind == "power":
            op = self.draw(st.sampled_from(OP_CLASSES["power"]))
            p = self.draw(st.sampled_from(EXPR_EXPONENTS))
            a = self.not_number(self.expr(shape, sub))
            if not (p >= 1 and p == int(p)):  # fractional or non-positive exponents: a positive base
                a = self.positive(a)
            spellings = [repr(p)] + ([str(int(p))] if p == int(p) else [])
            spellings += [f"({t})" for t in spellings if p < 0]
            ptext = self.draw(st.sampled_from(spellings))  # 2.0, 2, -1.0, (-1), ...
            pe = Expr(ptext, P_ATOM if p >= 0 else P_UNARY, (), np.full((1, 1), p), num=True)
            return self.settle(self.mk(op, a, pe))
        if kind == "reduce":
            op = self.draw(st.sampled_from(OP_CLASSES["reduce"]))
            a = self.expr(self.draw(st.sampled_from(EXPR_SHAPES)), sub)
            return self.settle(self.mk(op, a))
        if kind == "dot":
            sa, sb = self.draw(st.sampled_from(_DOT_SHAPES))
            a, b = self.expr(sa, sub), self.expr(sb, sub)
            if a.num and b.num:
                a = self.not_number(a)
            return self.settle(self.mk("dot", a, b))
        if kind == "matmul":
            sa, sb = self.draw(st.sampled_from(_MATMUL_SHAPES[shape]))
            a, b = self.expr(sa, sub), self.expr(sb, sub)
            if a.num and b.num:
                a = self.not_number(a)
            return self.settle(self.mk("matmul", a, b))
        (st_,) = self.draw(st.sampled_from(_TRANSPOSE_SHAPES[shape]))
        a = self.expr(st_, sub)
        if st_ == ():
            a = self.not_number(a)
        return self.mk("transpose", a)

    def reduce_to_scalar(self, e: Expr) -> Expr:
        if e.shape == ():
            return e
        how = self.draw(st.sampled_from(("sum", "mean", "norm", "norm2", "dot")))
        if how == "dot" and len(e.shape) == 1:
            return self.mk("dot", e, self.terminal(e.shape))
        if how == "norm2":
            two = Expr("2", P_ATOM, (), np.full((1, 1), 2.0), num=True)
            return self.mk("pow", self.mk("norm", e), two)
        return self.mk(how if how in ("sum", "mean", "norm") else "sum", e)

    def line(self, name: str, e: Expr) -> None:
        self.lines.append((name, e.text))
        self.named[name] = Expr(name, P_ATOM, e.shape, e.value)

    def build(self) -> TypedModel:
        for _ in range(self.draw(st.integers(0, 3))):
            name = self.fresh("h")
            kind = self.draw(st.sampled_from(("expr", "expr", "expr", "expr", "size", "alias", "number")))
            have = [n for n in self.named]
            if kind == "size":  # a size used as a value, under a name (h = N)
                self.line(name, self.size_value())
            elif kind == "alias" and have:  # y = h: a second name (an id node)
                old = self.draw(st.sampled_from(have))
                self.used.add(old)
                self.line(name, self.named[old])
            elif kind == "number":
                v = self.draw(st.sampled_from(EXPR_LITERALS))
                self.line(name, Expr(repr(v), P_ATOM if v >= 0 else P_UNARY, (), np.full((1, 1), v), num=True))
            else:
                shape = self.draw(st.sampled_from(EXPR_SHAPES))
                self.line(name, self.expr(shape, self.draw(st.integers(1, self.max_depth)), top=True))
        loss = self.expr((), self.max_depth, top=True)
        for n in [n for n in self.named if n.startswith("h") and n not in self.used]:
            if self.draw(st.integers(0, 3)) > 0:  # most intermediates reach L
                loss = self.mk("add", loss, self.reduce_to_scalar(self.named[n]))
        if loss.num:  # L must depend on something fed
            loss = self.mk("add", loss, self.reduce_to_scalar(self.terminal_nonnum(("N",))))
        self.line("L", loss)
        text = self.text()
        graph = gg.parse(text)
        named = [n for n in graph.named_nodes() if graph.op(n) not in ("literal", "size")]
        wrt = self.draw(st.lists(st.sampled_from(named), min_size=1, max_size=len(named), unique=True))
        expected = {n: _ext(e.shape, e.value) for n, e in self.named.items()}
        return TypedModel(text, graph, self.inputs, wrt, dict(self.sizes), self.batch, expected, self.unsafe,
                          frozenset(self.ops))

    def text(self) -> str:
        out = []
        for kind, name, shape in self.decls:
            dims = ", ".join(str(d) for d in shape)
            out.append(f"{kind} {name}" + (f"[{dims}]" if dims else ""))
        out += [f"{n} = {t}" for n, t in self.lines]
        return "\n".join(out) + "\n"


@st.composite
def typed_models(draw, depth: int = 4, batch: bool | None = False) -> TypedModel:
    """A random small typed model (see the section comment above), its values and a ``wrt``.

    Declared leaves of shapes ``[]``, ``[N]``, ``[K]``, ``[N, K]``, ``[1, N]`` (N ≠ K, from 0..4;
    0 rarely; >= 2 with a batch); sizes as values (``N * x``, ``h = N``); literals (negative, 0,
    fractional); expression trees of depth <= ``depth`` over every public op, with unary minus,
    powers with negative and fractional exponents, broadcasting of scalars, columns and rows into
    matrices, redundant parentheses; named lines reused later, aliases, and a scalar loss ``L``.
    One model in 20 is *unsafe*: operands are not kept in their ops' domains.
    ``batch``: False, True (every input has a leading axis of 2 or 3) or None (either).
    """
    b = draw(st.sampled_from((2, 3))) if batch or (batch is None and draw(st.booleans())) else None
    lo = 2 if b else 0
    pool = [n for n in range(lo, 5) for _ in range(1 if n == 0 else 4)]  # 0 is rare
    n = draw(st.sampled_from(pool))
    k = draw(st.sampled_from([m for m in pool if m != n]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    unsafe = draw(st.integers(0, 19)) == 19  # (shrinks to safe)
    return _TypedBuilder(draw, {"N": n, "K": k}, b, rng, depth, unsafe).build()
