"""The NumPy interpreter: each op's kernel, in topological order, every value checked as it is made.

``evaluate`` runs the forward graph; :func:`value_and_grad` runs the adjoint nodes that
:func:`graphgrad.autodiff.backward` emitted, with the very same kernels. It is the reference the
compiler (:mod:`graphgrad.compiler`) is held to, and the engine that names the node where a
value went non-finite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .arguments import check_graph, check_mapping, check_outputs
from .autodiff import backward
from .errors import InputError, ShapeError
from .feed import Feed, external, prepare, with_size_binders
from .graph import Graph, upstream
from .ops import LEAF_KINDS, OPS


def run(graph: Graph, feed: Feed, order: Iterable[str]) -> dict[str, np.ndarray]:
    """Run the kernels of ``order`` (a topological order) on ``feed``; returns matrix forms."""
    vals: dict[str, np.ndarray] = {}
    dt = feed.dtype
    for n in order:
        a = graph.attrs(n)
        op = a["op"]
        if op in LEAF_KINDS:
            if n not in feed.values:
                raise InputError(f"missing value for {n}", node=n)
            vals[n] = feed.values[n]
        elif op == "literal":
            vals[n] = np.full((1, 1), a["value"], dtype=dt)
        elif op == "size":
            if n not in feed.sizes:
                raise InputError(f"size {n} is not bound", node=n,
                                 hint=f"feed an array whose shape uses {n}, or pass sizes={{'{n}': ...}}")
            vals[n] = np.full((1, 1), feed.sizes[n], dtype=dt)
        else:
            try:
                with np.errstate(all="ignore"):
                    out = OPS[op].numpy(*(vals[x] for x in a["args"]))
            except ValueError as e:
                raise ShapeError(f"{op} failed on shapes "
                                 f"{', '.join(str(vals[x].shape) for x in a['args'])}: {e}",
                                 **graph.where(n), hint="check the sizes fed") from None
            vals[n] = out if out.dtype == dt else out.astype(dt)
            if not feed.allow_nonfinite and not np.all(np.isfinite(out)):
                raise _nonfinite(graph, n, out, [vals[x] for x in a["args"]], dt)
    return vals


def _nonfinite(graph: Graph, n: str, out: np.ndarray, args: list[np.ndarray], dt: np.dtype) -> InputError:
    """The error for an op that made inf or nan (from finite operands: inputs were checked)."""
    a = graph.attrs(n)
    ext = external(graph, n, out)  # indices as users see them: (i,) for a vector
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(ext))[0])
    what = "nan" if np.isnan(ext[bad]) else "inf"
    owner = a.get("adjoint_of")
    where = f"in the reverse pass (the adjoint of {owner!r}), " if owner else ""
    spec = OPS.get(a["op"])
    hint = (spec.nonfinite if spec is not None else "") or f"values too large for {dt}"
    return InputError(f"{where}{a['op']} gave {what} at index {bad} of {graph.describe(n)}", **graph.where(n),
                      hint=f"{hint}; pass allow_nonfinite=True to get IEEE inf/nan instead")


def evaluate(graph: Graph, inputs: Mapping[str, Any] | None = None, *, outputs: Iterable[str] | None = None,
             sizes: Mapping[str, int] | None = None, dtype: Any = None,
             allow_nonfinite: bool = False) -> dict[str, np.ndarray]:
    """Every named node's value (or just ``outputs``), as NumPy arrays.

    Scalars come back 0-d (``(B,)`` when batched), vectors ``(N,)`` (``(B, N)``).
    """
    check_graph(graph, "evaluate")
    check_mapping(inputs, "inputs")
    outs = check_outputs(graph, outputs)
    order = needed(graph, outs)
    feed = prepare(graph, inputs, with_size_binders(graph, order, sizes or ()), sizes, dtype, allow_nonfinite)
    vals = run(graph, feed, order)
    return {n: external(graph, n, vals[n]) for n in outs}


def needed(graph: Graph, targets: Iterable[str]) -> list[str]:
    return upstream(graph, targets)


def _union_order(graph: Graph, order: list[str], extra: list[str]) -> list[str]:
    have = set(order)
    if all(e in have for e in extra):
        return order
    return needed(graph, order + extra)


def _reduce_like(graph: Graph, w: str, adj: np.ndarray, like: np.ndarray, feed: Feed,
                 of_batched: bool) -> np.ndarray:
    # adjoint values are per sample; one without a batch axis is the same for every sample
    if adj.ndim > like.ndim:
        adj = adj.sum(axis=tuple(range(adj.ndim - like.ndim)))
    elif of_batched and like.ndim == 2 and adj.ndim == 2 and feed.batch:
        adj = adj * feed.batch
    if adj.shape != like.shape:
        adj = np.broadcast_to(adj, like.shape)
    adj = np.array(adj, dtype=feed.dtype)  # an owned, writable copy
    if w in feed.fed_shape:
        return adj.reshape(feed.fed_shape[w])
    return external(graph, w, adj)


def value_and_grad(graph: Graph, of: str, ws: list[str], inputs: Mapping[str, Any] | None,
                              sizes: Mapping[str, int] | None, dtype: Any, allow_nonfinite: bool
                              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    bw = backward(graph, of)
    targets = [of] + [bw.adjoint[w] for w in ws if w in bw.adjoint]
    order = bw.needed(targets) if len(ws) else upstream(graph, [of])
    order = _union_order(bw.graph, order, ws)  # an intermediate in wrt that of does not reach: its value
    feed = prepare(bw.graph, inputs, with_size_binders(bw.graph, order, sizes or ()), sizes, dtype,
                   allow_nonfinite)
    vals = run(bw.graph, feed, order)
    grads = {}
    for w in ws:
        like = vals[w]
        adj = vals[bw.adjoint[w]] if w in bw.adjoint else np.zeros_like(like)
        grads[w] = _reduce_like(graph, w, adj, like, feed, vals[of].ndim > 2)
    return external(graph, of, vals[of]), grads
