"""The compiler: a graph and its adjoint equations become straight-line NumPy source.

``compile(graph, of, wrt)`` returns a :class:`CompiledFunction` ``f``; ``f(**inputs)`` returns
``(value, grads)`` exactly like :func:`graphgrad.value_and_grad`, and ``f.source`` is the Python
source it runs: one line per equation, with the reverse pass's names (``h_bar``, ``z_bar``).
:func:`compile_forward` and :func:`compile_vjp` are the forward-only and vector-Jacobian variants.

How (see ``docs/compiler.md``):

1. the reverse pass (:func:`graphgrad.autodiff.backward`) gives the adjoint equations as op nodes;
2. rewrites: ``σ′(z)`` becomes ``h ⊙ (1 − h)`` with ``h = σ(z)`` (likewise tanh′), ``‖t‖ ⊙ unit(t)``
   becomes ``t``, ``‖t‖²`` a dot product; then common sub-expressions are merged, dead code dropped,
   and matrix chains re-associated from the shapes (``(v vᵀ) x`` -> ``v (vᵀ x)``);
3. lowering (:mod:`graphgrad.compiler.lowering`) to the *storage layout* (vectors and rows 1-D, the
   batch as a leading axis): an unbatched matrix times a batch of vectors is one GEMM
   (``x @ W1.T``), transposes are BLAS flags, never copies; gradients of unbatched variables are
   summed over the batch *inside* the products (``z_bar.T @ x``), never per sample;
4. memory: each intermediate is ``del``-eted after its last use, and element-wise results and
   adjoint sums are accumulated in place (``x_bar += y_bar``) into buffers nothing else reads.

Code is generated per input signature (which inputs carry a batch axis, and the sizes, which
the chain re-association reads) and cached; the first call of a signature checks its inputs like
:func:`graphgrad.evaluate` does, later calls go straight to the generated function (no finiteness
check). Results are deterministic: the same inputs give bitwise the same outputs on every call.

>>> import numpy as np, graphgrad as gg
>>> g = gg.parse('''
... input x[N]
... param w[N]
... L = sigmoid(dot(w, x))
... ''')
>>> f = gg.compile(g, of="L", wrt=["w"])
>>> value, grads = f(x=np.array([1.0, 2.0]), w=np.zeros(2))
>>> float(value), grads["w"].tolist()
(0.5, [0.25, 0.5])
>>> print(f.source.splitlines()[0])
def value_and_grad_L(x, w):
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..arguments import check_graph, check_node_name, check_outputs, wrt_list
from ..autodiff import backward, check_of
from ..errors import GraphgradError, NamingError, ShapeError
from ..feed import prepare, with_size_binders
from ..graph import Graph, upstream
from ..naming import CodeNames, check_function_name
from ..ops import LEAF_KINDS, OPS
from ..shapes import normalize
from .ir import form_of
from .lowering import OutputSpec, lower
from .passes import build_ir
from .program import Program

_SIGNATURE = operator.attrgetter("shape", "dtype")

__all__ = ["CompiledFunction", "compile", "compile_forward", "compile_vjp", "source"]


class CompiledFunction:
    """A graph compiled to NumPy: call it with the inputs by name.

    ``kind`` is ``"grad"`` (returns ``(value, grads)``), ``"vjp"`` (the same, with the cotangent
    ``<of>_bar`` fed as one more input) or ``"forward"`` (returns ``{name: value}``).
    ``source`` is the generated source of the latest signature called (before any call: the
    signature given by ``batched=``/``sizes=`` at compile time, unbatched by default).
    """

    def __init__(self, graph: Graph, kind: str, of: str | None, wrt: list[str], outputs: list[str],
                 reduce: str | None, batched: Iterable[str] | None, sizes: Mapping[str, int] | None,
                 name: str | None) -> None:
        self.graph = graph
        self.kind = kind
        self.of = of
        self.wrt = wrt
        self.outputs = outputs
        self.reduce = reduce
        self.name = check_function_name(name) if name is not None else _default_name(kind, of)
        self.seed: str | None = None
        adjoint: dict[str, str] = {}
        if kind == "forward":
            self._ext = graph
            self._targets = list(outputs)
        else:
            bw = backward(graph, of, seed="cotangent" if kind == "vjp" else None)
            self._ext = bw.graph
            adjoint = {w: bw.adjoint[w] for w in wrt if w in bw.adjoint}
            inner = [w for w in wrt if graph.op(w) not in LEAF_KINDS and w != of]  # their values give shapes
            self._targets = list(dict.fromkeys([of, *adjoint.values(), *inner]))
            self.seed = bw.seed
            if kind == "vjp":  # the cotangent is an argument even where no gradient reads it (drelu)
                self._targets.append(bw.seed)
        needed = set(with_size_binders(self._ext, upstream(self._ext, self._targets))) | set(wrt)
        self.leaves = [n for n in self._ext.leaves() if n in needed]
        self._order = upstream(self._ext, self._targets)
        self.spec = OutputSpec(kind, self.name, of, tuple(wrt), tuple(outputs), reduce, tuple(self.leaves),
                               {n: self._ext.shape(n) for n in self.leaves}, adjoint, self.seed)
        self._sizes_checked: set[tuple] = set()
        self._take = operator.itemgetter(*self.leaves) if len(self.leaves) > 1 else \
            (lambda d, _n=tuple(self.leaves): tuple(d[k] for k in _n))
        self._last_key: tuple | None = None
        self._last_fn: Any = None
        self._fast: dict[tuple, Any] = {}
        self._programs: dict[tuple, Program] = {}
        self._latest: Program | None = None
        self._default = (frozenset(batched or ()), tuple(sorted((sizes or {}).items())))

    # ------------------------------------------------------------------ code
    def program(self, batched: Iterable[str] = (), sizes: Mapping[str, int] | None = None) -> Program:
        """The generated program for inputs ``batched`` (names fed with a batch axis) and ``sizes``."""
        bset = frozenset(batched)
        for b in bset:
            if b not in self.leaves or self._ext.op(b) != "input":
                raise NamingError(f"{b!r} is not an input of this function, so it cannot be batched",
                                 node=str(b), hint="batch only inputs: " + ", ".join(
                                     n for n in self.leaves if self._ext.op(n) == "input"))
        key = (bset, tuple(sorted((sizes or {}).items())))
        prog = self._programs.get(key)
        if prog is None:
            ir = build_ir(self._ext, self._targets, bset, dict(sizes or {}))
            prog = lower(ir, self.spec)
            self._programs[key] = prog
        self._latest = prog
        return prog

    @property
    def source(self) -> str:
        """Python source of the generated function (see the class docstring for which one)."""
        if self._latest is None:
            b, s = self._default
            self.program(b, dict(s))
        return self._latest.source

    def module_source(self, model: str = "") -> str:
        """A standalone module (NumPy only) holding :attr:`source`, with a docstring on its use."""
        prog = self._latest or self.program(*self._default[:1], dict(self._default[1]))
        return prog.module(model)

    def specialize(self, /, **example: Any) -> Any:
        """The generated function for ``example``'s signature, called with no checks at all.

        For hot loops: ``step = f.specialize(**inputs)`` checks ``inputs`` once, like a call
        does; ``step(**inputs)`` (keywords, or positionally in the order of :attr:`leaves`) then
        runs the generated code alone. Feed it arrays of the same shapes and dtype (vectors and rows
        1-D, as in :attr:`source`); anything else is not checked.
        """
        feed = self._check(example)
        sizes = dict(feed.sizes)
        if feed.batch is not None:
            sizes["__batch__"] = feed.batch
        return self.program(feed.batched, sizes).function()

    # ------------------------------------------------------------------ calling
    def __call__(self, /, **inputs: Any) -> Any:
        try:
            arrays = self._take(inputs)
            key = tuple(map(_SIGNATURE, arrays))
            if len(inputs) != len(self.leaves):
                raise KeyError
        except (KeyError, AttributeError, TypeError):
            return self._slow_call(inputs)
        if key == self._last_key:  # the common case: the same shapes as last time
            return self._last_fn(*arrays)
        fn = self._fast.get(key)
        if fn is None:
            fn = self._specialize(inputs, key)
        self._last_key, self._last_fn = key, fn
        return fn(*arrays)

    def _slow_call(self, inputs: Mapping[str, Any]) -> Any:
        feed = self._check(inputs)
        arrays = {}
        for n in self.leaves:
            a = np.asarray(inputs[n])
            arrays[n] = a.astype(feed.dtype, copy=False) if a.dtype != feed.dtype else a
        key = tuple(map(_SIGNATURE, self._take(arrays)))
        fn = self._fast.get(key) or self._specialize(arrays, key)
        return fn(*self._take(arrays))

    def _check(self, inputs: Mapping[str, Any]):
        inputs = dict(inputs)
        for k in inputs:  # a declared leaf this function does not read is ignored, as by value_and_grad
            if k not in self.leaves and not (k in self._ext and self._ext.op(k) in LEAF_KINDS):
                what = f"{self._ext.describe(k)}, not an input, param or const" if k in self._ext \
                    else "not a declared name"
                raise NamingError(f"unknown input {k!r}: {what}", node=str(k),
                                 hint="feed only: " + ", ".join(self.leaves))
        feed = prepare(self._ext, inputs, self.leaves)
        key = tuple(sorted(feed.sizes.items()))
        if key not in self._sizes_checked:
            check_concrete_shapes(self._ext, self._order, feed.sizes)
            self._sizes_checked.add(key)
        return feed

    def _specialize(self, inputs: Mapping[str, Any], key: tuple) -> Any:
        feed = self._check(inputs)
        if any(np.asarray(inputs[n]).dtype != feed.dtype for n in self.leaves):
            return lambda *a: self._slow_call(dict(zip(self.leaves, a)))
        sizes = dict(feed.sizes)
        if feed.batch is not None:
            sizes["__batch__"] = feed.batch
        prog = self.program(feed.batched, sizes)
        fn = prog.function()
        # storage layout: vectors and rows 1-D; one fed as (N, 1) or (1, N) is reshaped in and out
        reshape_in = {}
        for n in self.leaves:
            want = storage_shape(self._ext, n, feed.values[n].shape, n in feed.batched)
            if tuple(feed.fed_shape[n]) != want:
                reshape_in[n] = want
        if reshape_in:
            fed = {n: tuple(feed.fed_shape[n]) for n in reshape_in}
            fn = _reshaping(fn, self.leaves, reshape_in, fed, self.kind)
        self._fast[key] = fn
        return fn


def check_concrete_shapes(graph: Graph, order: list[str], sizes: Mapping[str, int]) -> None:
    """Re-run the shape rules of ``order``'s ops with the sizes bound: ``x[3] + y[N]`` type-checks,
    but not with N = 4. Raises the op's :class:`~graphgrad.errors.ShapeError`, located, as the
    interpreter does where its kernel fails (the generated code would raise NumPy's ValueError)."""
    concrete: dict[str, tuple] = {}
    for n in order:
        shape = tuple(sizes.get(d, d) if isinstance(d, str) else d for d in normalize(graph.shape(n)))
        args = graph.args(n)
        op = graph.op(n)
        if args and op in OPS:
            try:
                OPS[op].shape(*(concrete[a] for a in args))
            except ShapeError as e:
                bound = ", ".join(f"{k}={v}" for k, v in sorted(sizes.items()))
                raise ShapeError(f"{op}: {e.message} with {bound}", **graph.where(n),
                                 hint=e.hint or "check the sizes fed") from None
        concrete[n] = shape


def _default_name(kind: str, of: str | None) -> str:
    """``value_and_grad_L``, ``vjp_L`` or ``forward`` (``of`` mangled when it is no identifier)."""
    if kind == "forward":
        return "forward"
    return f"{'value_and_grad' if kind == 'grad' else 'vjp'}_{CodeNames([of])[of]}"


def storage_shape(graph: Graph, n: str, matrix_shape: tuple, batched: bool) -> tuple:
    """The storage layout of a fed value (see :mod:`graphgrad.compiler.lowering`): a scalar 0-d, a vector
    ``[N]`` and a row ``[1, N]`` 1-D, a matrix 2-D; behind the batch axis when batched."""
    form = form_of(graph.shape(n))
    lead = matrix_shape[:1] if batched else ()
    rows, cols = matrix_shape[-2:]
    return lead + {"S": (), "V": (rows,), "R": (cols,), "M": (rows, cols)}[form]


def _reshaping(fn, leaves: list[str], reshape_in: dict, fed: dict, kind: str):
    where = [(leaves.index(n), shape) for n, shape in reshape_in.items()]

    def call(*arrays):
        arrays = list(arrays)
        for i, shape in where:
            arrays[i] = arrays[i].reshape(shape)
        out = fn(*arrays)
        if kind == "forward":
            return out
        value, grads = out
        for n in reshape_in:
            if n in grads:
                grads[n] = grads[n].reshape(fed[n])
        return value, grads

    return call


def compile(graph: Graph, of: str, wrt: str | Iterable[str] | None = None, *, reduce: str | None = None,
            batched: Iterable[str] | None = None, sizes: Mapping[str, int] | None = None,
            name: str | None = None) -> CompiledFunction:
    """Compile ``of``'s value and its gradients with respect to ``wrt`` (default: every leaf).

    ``f = compile(g, "L", ["x", "W1"]); value, grads = f(**inputs)`` gives what
    ``graphgrad.value_and_grad(g, "L", ["x", "W1"], inputs)`` gives. With a batched input the
    value is per sample and the gradients of unbatched variables are summed over the batch;
    ``reduce="sum"`` returns the batch-summed value instead (the loss whose gradient it is).
    ``batched``/``sizes`` choose the signature :attr:`CompiledFunction.source` shows before a call.

    >>> import graphgrad as gg
    >>> g = gg.parse("input x[N]\\nparam W[K, N]\\nh = tanh(W @ x)\\nL = sum(h)")
    >>> print(gg.compile(g, "L", ["W"], batched=["x"]).source)
    def value_and_grad_L(x, W):
        h = x @ W.T
        np.tanh(h, out=h)
        L = h.sum(axis=-1)
        _t10 = h ** 2.0
        del h
        np.subtract(1.0, _t10, out=_t10)
        W_bar = _t10.T @ x
        del _t10
        return (L, {'W': W_bar})
    <BLANKLINE>
    """
    check_graph(graph, "compile")
    check_node_name(graph, of, "of")
    check_of(graph, of)
    if reduce not in (None, "sum"):
        raise GraphgradError(f"reduce must be None or 'sum', got {reduce!r}")
    ws = wrt_list(graph, wrt)
    return CompiledFunction(graph, "grad", of, ws, [of], reduce, batched, sizes, name)


def compile_vjp(graph: Graph, of: str, wrt: str | Iterable[str] | None = None, *,
                batched: Iterable[str] | None = None, sizes: Mapping[str, int] | None = None,
                name: str | None = None) -> CompiledFunction:
    """Compile the vector-Jacobian product of ``of`` (any shape): ``f(**inputs, <of>_bar=v)``.

    Returns ``(value of of, {w: vᵀ ∂of/∂w})``; the cotangent input is named ``f.seed``.

    >>> import numpy as np, graphgrad as gg
    >>> g = gg.parse("input x[N]\\nparam W[K, N]\\ny = W @ x")
    >>> f = compile_vjp(g, "y", ["x"])
    >>> y, grads = f(x=np.ones(2), W=np.eye(2), y_bar=np.array([1.0, 2.0]))
    >>> f.seed, grads["x"].tolist()
    ('y_bar', [1.0, 2.0])
    """
    check_graph(graph, "compile_vjp")
    check_node_name(graph, of, "of")
    check_of(graph, of, scalar=False)
    ws = wrt_list(graph, wrt)
    return CompiledFunction(graph, "vjp", of, ws, [of], None, batched, sizes, name)


def compile_forward(graph: Graph, outputs: Iterable[str] | None = None, *,
                    batched: Iterable[str] | None = None, sizes: Mapping[str, int] | None = None,
                    name: str | None = None) -> CompiledFunction:
    """Compile the forward pass: ``f(**inputs)`` returns ``{name: value}`` for ``outputs``.

    Default outputs: every named node (what :func:`graphgrad.evaluate` returns).

    >>> import numpy as np, graphgrad as gg
    >>> g = gg.parse("input x[N]\\nh = tanh(x)\\nL = sum(h)")
    >>> float(compile_forward(g, ["L"])(x=np.zeros(3))["L"])
    0.0
    """
    check_graph(graph, "compile_forward")
    outs = check_outputs(graph, outputs)
    return CompiledFunction(graph, "forward", None, [], outs, None, batched, sizes, name)


def source(graph: Graph, of: str, wrt: str | Iterable[str] | None = None, **kw: Any) -> str:
    """The generated source of ``compile(graph, of, wrt, **kw)``."""
    return compile(graph, of, wrt, **kw).source
