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

