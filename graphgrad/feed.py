"""Binding fed values to a graph: sizes, batch, dtype (the floor every engine stands on).

Feeding values
--------------
* Every ``input``, ``param`` and ``const`` the requested outputs need must be fed; feeding a name
  that is not declared is an error.
* Sizes (``N``, ``K``) bind from the arrays' shapes; a size bound to two values is an error.
  Sizes used only as scalars can be passed with ``sizes={"n": 25}``.
* A vector ``[N]`` may be fed as ``(N,)`` or ``(N, 1)``; a scalar as a number or 0-d array.
* Batching: an ``input`` fed with one extra leading axis (``x`` as ``(B, N)``) evaluates every
  sample. Gradients with respect to unbatched variables sum over the batch; those with respect to
  batched inputs stay per sample. Every gradient has the shape of the value fed.
* dtypes are kept: all-float32 inputs compute in float32, all-float64 in float64; mixing them is an
  error unless ``dtype=`` says which to use. Integers are taken as float64.
* Non-finite values are an error unless ``allow_nonfinite=True``: inputs, and values that an op
  makes from finite operands (``exp`` overflowing, ``log`` of a non-positive number, ``mean`` of
  nothing); the error names the node. With ``allow_nonfinite=True`` results follow IEEE
  arithmetic (``inf``, ``nan``), silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError, SizeError
from .graph import Graph
from .ops import LEAF_KINDS
from .shapes import fmt, matrix_form, normalize


@dataclass


class Feed:
    """Values prepared for the kernels: matrix forms, bound sizes, batch size and dtype."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    fed_shape: dict[str, tuple[int, ...]] = field(default_factory=dict)
    batched: set[str] = field(default_factory=set)
    sizes: dict[str, int] = field(default_factory=dict)
    batch: int | None = None
    dtype: np.dtype = np.dtype(np.float64)
    allow_nonfinite: bool = False


def as_array(name: str, v: Any) -> np.ndarray:
    try:
        arr = np.asarray(v)
    except Exception as e:  # ragged lists and the like
        raise InputError(f"the value for {name!r} is not an array: {e}", node=name) from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.integer)
                                   or arr.dtype == np.bool_):
        raise InputError(f"the value for {name!r} has dtype {arr.dtype}, not a real number type",
                         node=name, hint="feed float32 or float64 arrays")
    return arr


def prepare(graph: Graph, inputs: Mapping[str, Any] | None, needed: Iterable[str] | None = None,
            sizes: Mapping[str, int] | None = None, dtype: Any = None,
            allow_nonfinite: bool = False) -> Feed:
    """Check and convert fed values for the leaves in ``needed`` (default: all leaves)."""
    inputs = dict(inputs or {})
    leaves = graph.leaves()
    declared = set(leaves)
    for k in inputs:
        if k not in declared:
            what = f"{k!r} is {graph.describe(k)}, not an input, param or const" if k in graph \
                else f"{k!r} is not a declared name"
            raise InputError(f"unknown input: {what}", node=str(k),
                             hint="feed only: " + ", ".join(leaves))
    if needed is None:
        need = leaves
    else:
        wanted = set(needed)  # (built once: rebuilding it per leaf was quadratic)
        need = [n for n in leaves if n in wanted]
    missing = [n for n in need if n not in inputs]
    if missing:
        raise InputError("missing value" + "s" * (len(missing) > 1) + " for " + ", ".join(missing),
                         node=missing[0], hint="pass them in inputs, e.g. --random SEED on the CLI")
    feed = Feed(allow_nonfinite=allow_nonfinite)
    arrays = {n: as_array(n, inputs[n]) for n in need}
    floats = {n: a.dtype for n, a in arrays.items() if np.issubdtype(a.dtype, np.floating)}
    if dtype is not None:
        try:
            feed.dtype = np.dtype(dtype)
        except TypeError:
            raise InputError(f"dtype {dtype!r} is not a NumPy dtype", hint="pass np.float64 or np.float32") from None
        if not np.issubdtype(feed.dtype, np.floating):
            raise InputError(f"dtype must be a float type, got {feed.dtype}")
    elif floats:
        kinds = sorted(set(floats.values()), key=str)
        if len(kinds) > 1:
            detail = ", ".join(f"{n} is {d}" for n, d in floats.items())
            raise InputError(f"mixed float types ({detail})",
                             hint="cast them to one type, or pass dtype=np.float64 (or float32)")
        feed.dtype = np.dtype(kinds[0])
    for n, d in (sizes or {}).items():
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0:
            raise SizeError(f"size {n} must be an integer >= 0, got {d!r}", node=str(n),
                            hint="pass sizes={'N': 3}")
        feed.sizes[str(n)] = int(d)
    bound_from: dict[str, str] = {n: "sizes=" for n in feed.sizes}
    for n in need:
        arr = arrays[n].astype(feed.dtype, copy=False)
        shape = normalize(graph.shape(n))
        core, lead = arr.shape, ()
        if arr.ndim == len(shape) + 1 and len(shape) == 1 and arr.shape[-1] == 1 and \
                _fits(shape[0], arr.shape[0], feed.sizes):
            core = (arr.shape[0],)  # a column vector fed as (N, 1)
        elif arr.ndim == len(shape) + 1 or (len(shape) == 1 and arr.ndim == 3 and arr.shape[-1] == 1):
            lead, core = arr.shape[:1], arr.shape[1:len(shape) + 1]
        elif arr.ndim != len(shape):
            raise InputError(f"{n!r} is declared {fmt(shape)} but was fed an array of shape {arr.shape}",
                             **graph.where(n), hint=f"feed shape {_example(shape)}")
        if lead:
            if graph.op(n) != "input":
                raise InputError(f"{graph.op(n)} {n!r} is declared {fmt(shape)} but was fed shape "
                                 f"{arr.shape}; only inputs may carry a batch axis", **graph.where(n),
                                 hint=f"feed shape {_example(shape)}")
            if feed.batch is not None and feed.batch != lead[0]:
                raise InputError(f"batch size {lead[0]} of {n!r} differs from batch size {feed.batch}",
                                 **graph.where(n), hint="feed every batched input with the same B")
            feed.batch = lead[0]
            feed.batched.add(n)
        for d, v in zip(shape, core):
            if isinstance(d, int):
                if d != v:
                    raise InputError(f"{n!r} is declared {fmt(shape)} but was fed shape {arr.shape}",
                                     **graph.where(n), hint=f"feed shape {_example(shape)}")
            elif d in feed.sizes and feed.sizes[d] != v:
                raise SizeError(f"size {d} is bound to two values: {feed.sizes[d]} (from "
                                f"{bound_from[d]}) and {v} (from {n})", **graph.where(n),
                                hint=f"make the shapes agree on {d}")
            else:
                feed.sizes.setdefault(d, v)
                bound_from.setdefault(d, n)
        if not allow_nonfinite and not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise InputError(f"the value for {n!r} is not finite at index {tuple(int(i) for i in bad)}",
                             **graph.where(n), hint="clean the data, or pass allow_nonfinite=True")
        r, c = matrix_form(tuple(core) if core else ())
        feed.values[n] = arr.reshape(lead + (r, c))
        feed.fed_shape[n] = arr.shape
    return feed


def _fits(d: Any, v: int, sizes: Mapping[str, int]) -> bool:
    return d == v if isinstance(d, int) else sizes.get(d, v) == v


def _example(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def external(graph: Graph, n: str, v: np.ndarray) -> np.ndarray:
    """A value in the form users expect: scalar -> 0-d (or (B,)), vector -> (N,) (or (B, N))."""
    shape = normalize(graph.shape(n))
    if len(shape) == 0:
        return v[..., 0, 0]
    if len(shape) == 1:
        return v[..., :, 0]
    return v


def with_size_binders(graph: Graph, nodes: list[str], given: Iterable[str] = ()) -> list[str]:
    """``nodes`` and, for each size they use as a value that none of their leaves' shapes binds,
    the first declared leaf whose shape does (``const c[N]`` for ``L = N * sum(x)``): its value
    must be fed, so that every engine binds the size from the same array. Sizes in ``given``
    (passed as ``sizes=``) need none.

    >>> from graphgrad import parse
    >>> from graphgrad.graph import upstream
    >>> g = parse("input x[K]\\nconst c[N]\\nL = N * sum(x)")
    >>> with_size_binders(g, upstream(g, ["L"]))[-1]
    'c'
    """
    have = set(nodes)
    bound = set(given) | {d for n in nodes if graph.op(n) in LEAF_KINDS for d in normalize(graph.shape(n))}
    extra = []
    for n in nodes:
        if graph.op(n) == "size" and n not in bound:
            leaf = next((m for m in graph.leaves() if n in normalize(graph.shape(m))), None)
            if leaf is not None and leaf not in have:
                extra.append(leaf)
                have.add(leaf)
                bound.update(d for d in normalize(graph.shape(leaf)))
    return nodes + extra
