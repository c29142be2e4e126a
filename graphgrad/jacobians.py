"""Jacobians, vector-Jacobian products (VJPs) and Jacobian-vector products (JVPs).

For ``f = of`` with ``m`` entries and a variable ``x = wrt`` with ``n`` entries, the Jacobian
``J = ∂f/∂x`` is ``m x n``. graphgrad never needs ``J`` itself to push vectors through it:

* :func:`vjp` computes ``Jᵀy`` for a cotangent ``y`` (shape of ``f``) with one reverse sweep of
  :func:`graphgrad.autodiff.backward` seeded with an input leaf ``f_bar`` (``seed="cotangent"``).
* :func:`jvp` computes ``J t`` for a tangent ``t`` (shape of ``x``) *without a forward-mode table*:
  the VJP ``u -> Jᵀu`` is linear in ``u``, so ``J t = ∇_u ⟨Jᵀu, t⟩``. graphgrad adds a leaf
  ``x_dot`` for ``t`` and the scalar ``s = sum(x̄ ⊙ x_dot)`` to the VJP graph and runs a second
  reverse sweep of ``s`` with respect to ``f_bar``; everything stays in the IR.
* :func:`jacobian` builds ``J`` row by row (``m`` VJPs with the basis cotangents ``e_i``) or column
  by column (``n`` JVPs with the basis tangents ``e_j``), whichever count is smaller. Rows (or
  columns) are evaluated in chunks, each chunk one batched run of the extended graph.

Shapes: results are in the external form (scalars 0-d, vectors ``(N,)``); a Jacobian has shape
``shape(of) + shape(wrt)``, so ``∂f/∂x`` for vectors is ``(m, n)`` and the gradient of a scalar is
``shape(wrt)``. ``wrt`` given as one name returns one array; a list returns a dict by name.

>>> import graphgrad as gg
>>> g = gg.parse('''
... input x[n]
... const v[n]
... f = v @ (v.T @ x)
... ''')
>>> vals = {"x": [1.0, 0.0, 0.0], "v": [1.0, 2.0, 3.0]}
>>> jacobian(g, "f", "x", vals)
array([[1., 2., 3.],
       [2., 4., 6.],
       [3., 6., 9.]])
>>> vjp(g, "f", "x", vals, [1.0, 1.0, 1.0])
array([ 6., 12., 18.])
>>> jvp(g, "f", "x", vals, [1.0, 0.0, 0.0])
array([1., 2., 3.])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arguments import check_graph, check_mapping, check_node_name, check_wrt, wrt_list
from .autodiff import Emitter, backward, check_of
from .errors import DerivationError, InputError, shown
from .feed import Feed, external, prepare
from .graph import Graph
from .interpret import _reduce_like, needed, run
from .naming import tangent_name
from .shapes import matrix_form, normalize

CHUNK_ELEMENTS = 1 << 22
"""Basis vectors per batched run are chosen so that chunk x (largest of m, n) stays below this."""


# ----------------------------------------------------------------------------- helpers


def _entry(fn: str, graph: Graph, of: Any, wrt: Any, inputs: Any, sizes: Any
           ) -> tuple[str | list[str] | None, dict[str, Any], dict[str, int] | None]:
    """Check the arguments every public function here takes (types first: a one-line error)."""
    check_graph(graph, fn)
    check_node_name(graph, of, "of")
    return (check_wrt(graph, wrt), check_mapping(inputs, "inputs"),
            None if sizes is None else check_mapping(sizes, "sizes", keys="size names"))


def _check_chunk(chunk: Any) -> int | None:
    if chunk is None:
        return None
    if isinstance(chunk, bool) or not isinstance(chunk, numbers.Integral) or chunk < 1:
        raise InputError(f"chunk must be a positive int (basis vectors per batched run) or None, "
                         f"got {type(chunk).__name__} {shown(chunk)}", hint="pass chunk=64, or leave it out")
    return int(chunk)


def _wrt(graph: Graph, wrt: str | Iterable[str] | None) -> tuple[list[str], bool]:
    ws = wrt_list(graph, wrt)
    return ws, isinstance(wrt, str)


def _concrete(graph: Graph, n: str, sizes: Mapping[str, int]) -> tuple[int, ...]:
    """External shape of node ``n`` with size names replaced by their bound values."""
    dims = []
    for d in normalize(graph.shape(n)):
        if isinstance(d, str):
            if d not in sizes:
                raise InputError(f"size {d} of {n!r} is not bound", **graph.where(n),
                                 hint=f"feed an array whose shape uses {d}, or pass sizes={{'{d}': ...}}")
            d = sizes[d]
        dims.append(int(d))
    return tuple(dims)


def _check_seed_free(graph: Graph, inputs: Mapping[str, Any] | None, seed: str) -> None:
    if inputs and seed in inputs:
        raise InputError(f"{seed!r} is the name graphgrad gives the cotangent seed; do not feed it",
                         node=seed, hint="pass the cotangent as the cotangent= argument")


# ----------------------------------------------------------------------------- VJP


def vjp(graph: Graph, of: str, wrt: str | Iterable[str] | None, inputs: Mapping[str, Any] | None,
        cotangent: Any, *, sizes: Mapping[str, int] | None = None, dtype: Any = None,
        allow_nonfinite: bool = False) -> np.ndarray | dict[str, np.ndarray]:
    """The vector-Jacobian product ``Jᵀy`` of ``of`` at ``inputs``, one reverse sweep, no ``J``.

    ``cotangent`` ``y`` has the shape of ``of`` (``(B, ...)`` per sample when inputs are batched).
    Returns one array per ``wrt`` in the shape of the value fed (a dict when ``wrt`` is a list).

    >>> import graphgrad as gg
    >>> g = gg.parse("input x[n]\\nf = x * x")
    >>> vjp(g, "f", "x", {"x": [1.0, 2.0]}, [1.0, 1.0])
    array([2., 4.])
    """
    wrt, inputs, sizes = _entry("vjp", graph, of, wrt, inputs, sizes)
    check_of(graph, of, scalar=False)
    ws, single = _wrt(graph, wrt)
    bw = backward(graph, of, seed="cotangent")
    _check_seed_free(graph, inputs, bw.seed)
    targets = [bw.adjoint[w] for w in ws if w in bw.adjoint]
    order = needed(bw.graph, targets + ws + [bw.seed])
    feed = prepare(bw.graph, {**inputs, bw.seed: cotangent}, order, sizes, dtype, allow_nonfinite)
    vals = run(bw.graph, feed, order)
    # a per-sample output: adjoints without a batch axis are the same for every sample
    of_batched = bool(feed.batched & (graph.ancestors(of) | {of} | {bw.seed}))
    out = {}
    for w in ws:
        like = vals[w]
        adj = vals[bw.adjoint[w]] if w in bw.adjoint else np.zeros_like(like)
        out[w] = _reduce_like(graph, w, adj, like, feed, of_batched)
    return out[ws[0]] if single else out


# ----------------------------------------------------------------------------- JVP


@dataclass
class JVPGraph:
    """The graph of ``t -> J t``: the VJP graph plus tangent leaves and ``s = Σ_w sum(w̄ ⊙ w_dot)``.

    ``out`` is the node holding ``J t = ∂s/∂f_bar`` (None when ``of`` does not depend on ``wrt``);
    ``seed`` the cotangent leaf ``f_bar`` (never needed numerically: ``s`` is linear in it);
    ``tangent[w]`` the leaf fed with ``w``'s tangent.
    """

    graph: Graph
    of: str
    seed: str
    tangent: dict[str, str]
    out: str | None


def jvp_graph(graph: Graph, of: str, wrt: Iterable[str]) -> JVPGraph:
    """Build (and cache on ``graph``) the JVP graph of ``of`` for the variables ``wrt``.

    >>> import graphgrad as gg
    >>> g = gg.parse("input x[n]\\nf = x * x")
    >>> jg = jvp_graph(g, "f", ["x"])
    >>> jg.tangent, jg.graph.op(jg.out)
    ({'x': 'x_dot'}, 'mul')
    """
    ws = list(wrt)
    key = ("jvp", of, tuple(ws))
    if key in graph.cache:
        return graph.cache[key]
    check_of(graph, of, scalar=False)
    bw = backward(graph, of, seed="cotangent")
    ext = bw.graph.copy()
    b = Emitter(ext)
    tangent: dict[str, str] = {}
    s = None
    for w in ws:
        name = ext.add_generated(tangent_name(w, ext.nx), "input", shape=graph.shape(w), anon=False, tangent_of=w)
        tangent[w] = name
        if w not in bw.adjoint:
            continue
        # ⟨Jᵀu, t⟩ for this variable: the Frobenius inner product of w̄ and w_dot
        term = b.sum(b.mul(bw.adjoint[w], name))
        s = term if s is None else b.add(s, term)
    out = None
    if s is not None:
        bw2 = backward(ext, s)
        out = bw2.adjoint.get(bw.seed)
        ext = bw2.graph
    jg = JVPGraph(ext, of, bw.seed, tangent, out)
    graph.cache[key] = jg
    return jg


def _run_jvp(graph: Graph, jg: JVPGraph, inputs: Mapping[str, Any], tangents: Mapping[str, Any],
             sizes: Mapping[str, int] | None, dtype: Any, allow_nonfinite: bool) -> tuple[np.ndarray, Feed]:
    """Matrix-form value of ``J t`` (zeros when ``of`` does not depend on ``wrt``)."""
    _check_seed_free(graph, inputs, jg.seed)
    feed_vals = {**inputs, **{jg.tangent[w]: t for w, t in tangents.items()}}
    targets = [jg.out] if jg.out is not None else []
    order = needed(jg.graph, targets + [jg.of] + list(jg.tangent.values()))
    order = [n for n in order if n != jg.seed]
    feed = prepare(jg.graph, feed_vals, order, sizes, dtype, allow_nonfinite)
    if jg.out is None:
        vals = run(jg.graph, feed, needed(jg.graph, [jg.of]))
        return np.zeros_like(vals[jg.of]), feed
    full = needed(jg.graph, [jg.out])
    if jg.seed in full:
        # s is linear in the seed, so any value gives the same J t: use zeros. With a batch the
        # seed is per sample too, or its adjoint (J t) would be summed over the batch.
        r, c = matrix_form(_concrete(graph, jg.of, feed.sizes))
        lead = () if feed.batch is None else (feed.batch,)
        feed.values[jg.seed] = np.zeros(lead + (r, c), dtype=feed.dtype)
    vals = run(jg.graph, feed, full)
    return vals[jg.out], feed


def jvp(graph: Graph, of: str, wrt: str | Iterable[str] | None, inputs: Mapping[str, Any] | None,
        tangent: Any, *, sizes: Mapping[str, int] | None = None, dtype: Any = None,
        allow_nonfinite: bool = False) -> np.ndarray:
    """The Jacobian-vector product ``J t`` of ``of`` at ``inputs``, without building ``J``.

    ``tangent`` has the shape of ``wrt`` (one name), or is a dict ``{w: t_w}`` (a list of names;
    the result is then ``Σ_w J_w t_w``). Returns an array of ``of``'s shape (``(B, ...)`` when
    inputs are batched).

    >>> import graphgrad as gg
    >>> g = gg.parse("input x[n]\\nf = x * x")
    >>> jvp(g, "f", "x", {"x": [1.0, 2.0]}, [1.0, 1.0])
    array([2., 4.])
    """
    wrt, inputs, sizes = _entry("jvp", graph, of, wrt, inputs, sizes)
    ws, single = _wrt(graph, wrt)
    if single:
        tangents = {ws[0]: tangent}
    else:
        if not isinstance(tangent, Mapping) or set(tangent) != set(ws):
            raise InputError("with several wrt, tangent must be a dict {name: tangent} for each of them",
                             hint="pass tangent={" + ", ".join(f"'{w}': ..." for w in ws) + "}")
        tangents = dict(tangent)
    jg = jvp_graph(graph, of, ws)
    val, feed = _run_jvp(graph, jg, inputs, tangents, sizes, dtype, allow_nonfinite)
    if feed.batch is not None and val.ndim == 2:
        val = np.broadcast_to(val, (feed.batch, *val.shape))
    return np.array(external(graph, of, val))


# ----------------------------------------------------------------------------- Jacobian


def choose_mode(m: int, n: int) -> str:
    """``"rev"`` (m VJPs, one per output entry) when ``m <= n``, else ``"fwd"`` (n JVPs).

    >>> choose_mode(1, 1000), choose_mode(1000, 3)
    ('rev', 'fwd')
    """
    return "rev" if m <= n else "fwd"


def jacobian(graph: Graph, of: str, wrt: str | Iterable[str] | None, inputs: Mapping[str, Any] | None,
             *, mode: str = "auto", chunk: int | None = None, sizes: Mapping[str, int] | None = None,
             dtype: Any = None, allow_nonfinite: bool = False) -> np.ndarray | dict[str, np.ndarray]:
    """The full Jacobian ``∂of/∂wrt`` at ``inputs``, of shape ``shape(of) + shape(wrt)``.

    ``mode``: ``"rev"`` builds it from ``m`` VJPs (rows), ``"fwd"`` from ``n`` JVPs (columns),
    ``"auto"`` picks the smaller count (:func:`choose_mode`, ``n`` summed over every ``wrt``).
    ``chunk`` basis vectors are pushed through per batched run (default: as many as keep a chunk
    below :data:`CHUNK_ELEMENTS` elements). Inputs must not carry a batch axis.

    >>> import graphgrad as gg
    >>> g = gg.parse("input x[n]\\nf = x * x")
    >>> jacobian(g, "f", "x", {"x": [1.0, 2.0]}, mode="fwd")
    array([[2., 0.],
           [0., 4.]])
    """
    wrt, inputs, sizes = _entry("jacobian", graph, of, wrt, inputs, sizes)
    check_of(graph, of, scalar=False)
    ws, single = _wrt(graph, wrt)
    if not isinstance(mode, str) or mode not in ("auto", "rev", "fwd"):
        raise DerivationError(f"mode must be 'auto', 'rev' or 'fwd', got {shown(mode)}",
                              hint="leave it out ('auto' picks the cheaper)")
    chunk = _check_chunk(chunk)
    base = prepare(graph, inputs, needed(graph, [of] + ws), sizes, dtype, allow_nonfinite)
    if base.batch is not None:
        raise InputError(f"jacobian takes one sample, but {sorted(base.batched)[0]!r} carries a batch "
                         f"axis of {base.batch}", hint="call jacobian per sample, or use vjp/jvp (they take batches)")
    of_shape = _concrete(graph, of, base.sizes)
    w_shapes = {w: _concrete(graph, w, base.sizes) for w in ws}
    m = math.prod(of_shape)
    n_total = sum(math.prod(s) for s in w_shapes.values())
    if mode == "auto":
        mode = choose_mode(m, n_total)
    width = max(m, n_total, 1)
    out: dict[str, np.ndarray] = {}
    if mode == "rev":
        rows = _rev_rows(graph, of, ws, inputs, m, of_shape, w_shapes, chunk or max(1, CHUNK_ELEMENTS // width),
                         sizes, dtype, allow_nonfinite, base)
        for w in ws:
            out[w] = rows[w].reshape(of_shape + w_shapes[w])
    else:
        for w in ws:
            k = math.prod(w_shapes[w])
            cols = np.empty((m, k), dtype=base.dtype)
            jg = jvp_graph(graph, of, [w])
            step = chunk or max(1, CHUNK_ELEMENTS // width)
            for k0 in range(0, k, step):
                k1 = min(k, k0 + step)
                basis = _basis(k0, k1, k, base.dtype).reshape((k1 - k0,) + w_shapes[w])
                val, _ = _run_jvp(graph, jg, inputs, {w: basis}, sizes, base.dtype, allow_nonfinite)
                if val.ndim == 2:  # J does not depend on the tangent's batch: impossible unless J = 0
                    val = np.broadcast_to(val, (k1 - k0, *val.shape))
                cols[:, k0:k1] = val.reshape(k1 - k0, m).T
            out[w] = cols.reshape(of_shape + w_shapes[w])
    return out[ws[0]] if single else out


def _basis(k0: int, k1: int, size: int, dtype: Any) -> np.ndarray:
    """Rows k0..k1-1 of the size x size identity, without building the identity."""
    e = np.zeros((k1 - k0, size), dtype=dtype)
    e[np.arange(k1 - k0), np.arange(k0, k1)] = 1
    return e


def _rev_rows(graph, of, ws, inputs, m, of_shape, w_shapes, step, sizes, dtype, allow_nonfinite,
              base: Feed) -> dict[str, np.ndarray]:
    """Rows of the Jacobian: VJPs with the basis cotangents, ``step`` per batched run."""
    bw = backward(graph, of, seed="cotangent")
    _check_seed_free(graph, inputs, bw.seed)
    targets = [bw.adjoint[w] for w in ws if w in bw.adjoint]
    order = needed(bw.graph, targets + ws)
    rows = {w: np.zeros((m, math.prod(w_shapes[w])), dtype=base.dtype) for w in ws}
    if not targets:
        return rows
    first = np.zeros((1,) + of_shape, dtype=base.dtype)
    feed = prepare(bw.graph, {**inputs, bw.seed: first}, order + [bw.seed], sizes, base.dtype, allow_nonfinite)
    r, c = matrix_form(of_shape)
    for k0 in range(0, m, step):
        k1 = min(m, k0 + step)
        feed.values[bw.seed] = _basis(k0, k1, m, base.dtype).reshape(k1 - k0, r, c)
        vals = run(bw.graph, feed, order)
        for w in ws:
            if w in bw.adjoint:
                adj = vals[bw.adjoint[w]]
                adj = np.broadcast_to(adj, (k1 - k0, *adj.shape[-2:]))
                rows[w][k0:k1] = adj.reshape(k1 - k0, -1)
    return rows
