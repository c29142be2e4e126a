"""Optimizers and :func:`fit`: train a graphgrad model's params on data.

Optimizers (``g`` is the gradient of the step's loss, ``p`` a parameter, all element-wise):

=============  ==========================================================================  =================
optimizer      update rule                                                                 defaults
=============  ==========================================================================  =================
GD             ``p -= lr·g`` on the full data set                                          —
SGD            the same on one sample per step (``batch_size=1``)                          —
MiniBatchSGD   the same on ``batch_size`` samples per step                                 batch_size=32
Momentum       ``v = β·v + g;  p -= lr·v``  (Nesterov: ``p -= lr·(g + β·v)``)              β=0.9
AdaGrad        ``G += g²;  p -= lr·g / (√G + ε)``                                          ε=1e-8
RMSProp        ``s = ρ·s + (1−ρ)·g²;  p -= lr·g / (√s + ε)``                               ρ=0.9, ε=1e-8
Adam           ``m = β₁m + (1−β₁)g;  v = β₂v + (1−β₂)g²;  p -= lr·m̂ / (√v̂ + ε)``,          lr=1e-3, β₁=0.9,
               ``m̂ = m / (1−β₁ᵗ)``, ``v̂ = v / (1−β₂ᵗ)`` (bias correction, step t = 1, 2...)  β₂=0.999, ε=1e-8
=============  ==========================================================================  =================

Mini-batches: each epoch visits the samples in a fresh random order (``numpy.random.default_rng(seed)``),
``batch_size`` at a time; the last batch of an epoch may be smaller. A run is reproducible from
its seed. What a "sample" is: the leading (batch) axis when inputs are fed batched, else the
axis of the size name ``samples`` (inferred: the size name most data arrays share, e.g. ``n`` for
``X[n, d]`` and ``t[n]``); a size node such as the ``n`` in ``(1/n)·‖Xw − t‖²`` then takes the batch's
size, so the loss is the mini-batch mean.

Speed: :func:`fit` checks the feed once and then runs the compiler's straight-line NumPy code
(:func:`graphgrad.compile`, one specialised function per mini-batch size) with no per-step checks.

>>> import graphgrad as gg
>>> g = gg.parse('''
... input X[n, d]
... input t[n]
... param w[d]
... L = (1/n) * norm(X @ w - t)**2
... ''')
>>> data = {"X": [[2.0, 1.0]], "t": [2.0]}
>>> w, hist = fit(g, "L", {"w": [0.0, 0.0]}, data, GD(lr=0.05), steps=200)
>>> w["w"].round(6).tolist(), hist.steps
([0.8, 0.4], 200)
"""

from __future__ import annotations

import abc
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from .compiler import compile as compile_grad
from .compiler import storage_shape
from .errors import GraphgradError, InputError
from .feed import prepare
from .graph import Graph
from .ops import LEAF_KINDS
from .shapes import matrix_form

# ----------------------------------------------------------------------------- optimizers


@dataclass
class Optimizer(abc.ABC):
    """Base class: ``init(params)`` resets the state, ``update(params, grads)`` steps in place.

    ``params`` and ``grads`` are lists of float arrays, each gradient shaped like its parameter
    (vectors 1-D, as fed); updates are element-wise. ``batch_size`` is the optimizer's default
    mini-batch size (None: the full data set).
    """

    lr: float = 0.01
    batch_size: int | None = None

    def init(self, params: list[np.ndarray]) -> None:
        """Reset the state for these parameters."""
        self.t = 0

    @abc.abstractmethod
    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """One step: change ``params`` in place."""

    @property
    def name(self) -> str:
        """The optimizer's class name."""
        return type(self).__name__


@dataclass
class GD(Optimizer):
    """Gradient descent on the full data set: ``p -= lr·g``.

    >>> p = [np.array([1.0])]; o = GD(lr=0.5); o.init(p); o.update(p, [np.array([2.0])]); p
    [array([0.])]
    """

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """``p -= lr·g``."""
        for p, g in zip(params, grads):
            p -= self.lr * g


@dataclass
class SGD(GD):
    """Stochastic gradient descent: GD's update on one random sample per step."""

    batch_size: int | None = 1


@dataclass
class MiniBatchSGD(GD):
    """Mini-batch SGD: GD's update on ``batch_size`` random samples per step."""

    batch_size: int | None = 32


@dataclass
class Momentum(Optimizer):
    """Heavy-ball momentum: ``v = β·v + g;  p -= lr·v`` (Nesterov: ``p -= lr·(g + β·v)``)."""

    beta: float = 0.9
    nesterov: bool = False

    def init(self, params: list[np.ndarray]) -> None:
        """Zero velocity."""
        self.t = 0
        self.v = [np.zeros_like(p) for p in params]

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """One momentum step."""
        for p, g, v in zip(params, grads, self.v):
            v *= self.beta
            v += g
            p -= self.lr * (g + self.beta * v if self.nesterov else v)


@dataclass
class AdaGrad(Optimizer):
    """AdaGrad: ``G += g²;  p -= lr·g / (√G + ε)`` (per-coordinate step sizes)."""

    eps: float = 1e-8

    def init(self, params: list[np.ndarray]) -> None:
        """Zero accumulated squares."""
        self.t = 0
        self.G = [np.zeros_like(p) for p in params]

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """One AdaGrad step."""
        for p, g, G in zip(params, grads, self.G):
            G += g * g
            p -= self.lr * g / (np.sqrt(G) + self.eps)


@dataclass
class RMSProp(Optimizer):
    """RMSProp: ``s = ρ·s + (1−ρ)·g²;  p -= lr·g / (√s + ε)``."""

    rho: float = 0.9
    eps: float = 1e-8

    def init(self, params: list[np.ndarray]) -> None:
        """Zero running mean of squares."""
        self.t = 0
        self.s = [np.zeros_like(p) for p in params]

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """One RMSProp step."""
        for p, g, s in zip(params, grads, self.s):
            s *= self.rho
            s += (1 - self.rho) * g * g
            p -= self.lr * g / (np.sqrt(s) + self.eps)


@dataclass
class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; see the module table for the rule."""

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def init(self, params: list[np.ndarray]) -> None:
        """Zero moments, step 0."""
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """One Adam step."""
        self.t += 1
        c1 = 1 - self.beta1 ** self.t
        c2 = 1 - self.beta2 ** self.t
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


OPTIMIZERS = {c.__name__: c for c in (GD, SGD, MiniBatchSGD, Momentum, AdaGrad, RMSProp, Adam)}
"""Every optimizer by name."""


# ----------------------------------------------------------------------------- fit


@dataclass
class History:
    """What :func:`fit` saw: the loss per step and, when asked, the trajectory and tracked values.

    ``loss[k]`` is the loss of step k's (mini-)batch at the parameters before update k.
    ``params[name]`` stacks the values at ``recorded`` steps (0 = the start, ``steps`` = the end);
    ``tracked[key]`` holds ``track[key](values)`` at the same steps. ``stopped``: ``"steps"``,
    ``"tol"`` (gradient norm) or ``"loss_tol"``. ``final_loss``: the full-data loss at the end.
    """

    optimizer: str
    loss: np.ndarray
    steps: int
    stopped: str
    seconds: float
    final_loss: float
    recorded: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    params: dict[str, np.ndarray] = field(default_factory=dict)
    tracked: dict[str, np.ndarray] = field(default_factory=dict)


class Progress:
    """A plain progress bar on a stream (stderr): ``[#####.....]  52%  520000/1000000  loss 1.2e-03``."""

    def __init__(self, total: int, stream: TextIO | None = None, every: float = 0.2) -> None:
        self.total, self.stream, self.every = total, stream or sys.stderr, every
        self.last = 0.0
        self.start = time.perf_counter()

    def show(self, k: int, loss: float, force: bool = False) -> None:
        """Redraw (at most every ``every`` seconds unless ``force``)."""
        now = time.perf_counter()
        if not force and now - self.last < self.every:
            return
        self.last = now
        frac = k / max(self.total, 1)
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        self.stream.write(f"\r[{bar}] {100 * frac:5.1f}%  {k}/{self.total}  loss {loss:.3e}  "
                          f"{now - self.start:6.1f}s")
        self.stream.flush()

    def close(self) -> None:
        """End the line."""
        self.stream.write("\n")
        self.stream.flush()


def _sample_axes(graph: Graph, feed: Any, data: list[str], samples: str | None) -> tuple[str, dict[str, int]]:
    """Which axis of each data array (matrix form) indexes samples."""
    if samples in (None, "batch") and feed.batch is not None:
        return "batch", {n: 0 for n in feed.batched}
    if samples is None:
        counts: dict[str, int] = {}
        for n in data:
            for d in graph.shape(n):
                if isinstance(d, str):
                    counts[d] = counts.get(d, 0) + 1
        if not counts:
            raise InputError("cannot tell which axis of the data indexes samples",
                             hint="pass samples='n' (a size name), or feed inputs with a batch axis")
        best = max(counts.values())
        tied = [d for d, c in counts.items() if c == best]
        if len(tied) > 1:
            raise InputError(f"the sample axis is ambiguous: {', '.join(tied)}",
                             hint=f"pass samples='{tied[0]}' (the size name that counts samples)")
        samples = tied[0]
    axes = {}
    for n in data:  # the axis in the storage layout (vectors and rows 1-D; see graphgrad.compiler.lowering)
        rows, cols = matrix_form(graph.shape(n))
        if samples in (rows, cols):
            axes[n] = (rows, cols).index(samples) if 1 not in (rows, cols) else 0
    if not axes:
        raise InputError(f"no data array has the sample size {samples!r}",
                         hint="samples must be a size name used in a data input's shape")
    return samples, axes


def fit(graph: Graph, of: str, params: Mapping[str, Any], data: Mapping[str, Any] | None,
        optimizer: Optimizer, steps: int, batch_size: int | None = None, *, samples: str | None = None,
        seed: int = 0, tol: float | None = None, loss_tol: float | None = None, record_every: int = 0,
        track: Mapping[str, Callable[[dict[str, np.ndarray]], float]] | None = None,
        progress: bool | None = None, sizes: Mapping[str, int] | None = None,
        dtype: Any = None) -> tuple[dict[str, np.ndarray], History]:
    """Train ``params`` (name -> initial value) to minimise scalar ``of`` on ``data``.

    ``batch_size`` overrides the optimizer's default (None = full data: GD). Stops after
    ``steps`` updates, or earlier when the gradient norm (over all params) drops to ``tol`` or
    the step's loss to ``loss_tol``. ``record_every=k`` stores the params every k steps (and at
    the start and end); ``track`` maps names to ``f(values) -> float`` recorded likewise (every
    step when ``record_every`` is 0). ``progress``: a stderr bar (default: on for runs of 10⁴+
    steps when stderr is a terminal). Returns the trained values (shaped as fed) and a
    :class:`History`.
    """
    if steps < 0:
        raise GraphgradError(f"steps must be >= 0, got {steps}")
    names = list(params)
    for p in names:
        if p not in graph or graph.op(p) not in LEAF_KINDS:
            raise InputError(f"{p!r} is not a declared input, param or const", node=str(p),
                             hint="params must name leaves: " + ", ".join(graph.leaves("param")))
    data = dict(data or {})
    overlap = set(names) & set(data)
    if overlap:
        raise InputError(f"{sorted(overlap)[0]!r} is both a param and data", hint="pass it in one place")
    f = compile_grad(graph, of, names, reduce="sum")
    feed = prepare(graph, {**data, **params}, f.leaves, sizes, dtype)  # f.leaves holds every param
    for p in names:
        if p in feed.batched:
            raise InputError(f"param {p!r} was fed with a batch axis", node=p)
    # every value in the compiled code's storage layout (vectors 1-D), owned by this run
    values = {n: feed.values[n].reshape(storage_shape(graph, n, feed.values[n].shape, n in feed.batched)).copy()
              for n in f.leaves}
    plist = [values[p] for p in names]  # trained in place
    bs = batch_size if batch_size is not None else optimizer.batch_size
    data_names = [n for n in f.leaves if n not in names]
    axis_of: dict[str, int] = {}
    count = 0
    sample_name = None
    if bs is not None:
        sample_name, axis_of = _sample_axes(graph, feed, data_names, samples)
        if sample_name != "batch":  # a batched array's own axes start at 1
            axis_of = {n: ax + (n in feed.batched) for n, ax in axis_of.items()}
        counts = {values[n].shape[ax] for n, ax in axis_of.items()}
        if len(counts) != 1:
            raise InputError(f"the data arrays disagree on the number of samples: {sorted(counts)}",
                             hint="give every data array the same number of samples")
        count = counts.pop()
        if bs < 1:
            raise GraphgradError(f"batch_size must be >= 1, got {bs}")
        bs = min(bs, count)
    programs: dict[int | None, Callable[..., Any]] = {}

    def program(bsz: int | None) -> Callable[..., Any]:
        """The generated function for mini-batches of bsz samples (None: the full data)."""
        fn = programs.get(bsz)
        if fn is None:
            sz = dict(feed.sizes)
            if feed.batch is not None:
                sz["__batch__"] = feed.batch
            if bsz is not None:
                sz["__batch__" if sample_name == "batch" else sample_name] = bsz
            fn = programs[bsz] = f.program(feed.batched, sz).function()
        return fn

    position = {n: i for i, n in enumerate(f.leaves)}
    args = [values[n] for n in f.leaves]
    rng = np.random.default_rng(seed)
    optimizer.init(plist)
    loss = np.empty(steps)
    track = dict(track or {})
    every = record_every or (1 if track else 0)
    rec_steps: list[int] = []
    rec_params: dict[str, list[np.ndarray]] = {p: [] for p in names} if record_every else {}
    rec_track: dict[str, list[float]] = {k: [] for k in track}

    def ext_values() -> dict[str, np.ndarray]:
        return {p: values[p].reshape(feed.fed_shape[p]).copy() for p in names}

    def record(k: int) -> None:
        rec_steps.append(k)
        vals = ext_values()
        for p in rec_params:
            rec_params[p].append(vals[p])
        for key, f in track.items():
            rec_track[key].append(float(f(vals)))

    show = progress if progress is not None else (steps >= 10**4 and sys.stderr.isatty())
    bar = Progress(steps) if show else None
    step_args = list(args)
    full = program(None)
    shuffled: dict[str, np.ndarray] = {}
    pos = count
    stopped = "steps"
    t0 = time.perf_counter()
    k = 0
    if every:
        record(0)
    with np.errstate(all="ignore"):
        for k in range(steps):
            if bs is not None and bs < count:
                if pos >= count:  # a new epoch: shuffle once, then take contiguous slices (views)
                    perm = rng.permutation(count)
                    shuffled = {n: np.take(values[n], perm, axis=ax) for n, ax in axis_of.items()}
                    pos = 0
                end = min(pos + bs, count)
                for n, ax in axis_of.items():
                    step_args[position[n]] = shuffled[n][(slice(None),) * ax + (slice(pos, end),)]
                fn = program(end - pos)
                pos = end
            else:
                fn = full
            lv, gd = fn(*step_args)
            grads = [gd[p] for p in names]
            lval = float(lv)
            loss[k] = lval
            if tol is not None and np.sqrt(sum(float(np.sum(g * g)) for g in grads)) <= tol:
                stopped = "tol"
                break
            if loss_tol is not None and lval <= loss_tol:
                stopped = "loss_tol"
                break
            optimizer.update(plist, grads)
            if every and (k + 1) % every == 0:
                record(k + 1)
            if bar is not None and (k & 1023) == 0:
                bar.show(k, lval)
        else:
            k = steps
    done = k  # updates made
    seconds = time.perf_counter() - t0
    if every and (not rec_steps or rec_steps[-1] != done):
        record(done)
    if bar is not None:
        bar.show(done, float(loss[done - 1]) if done else float("nan"), force=True)
        bar.close()
    with np.errstate(all="ignore"):
        final = float(full(*args)[0])
    hist = History(optimizer.name, loss[:done], done, stopped, seconds, final,
                   np.array(rec_steps, dtype=int), {p: np.array(v) for p, v in rec_params.items()},
                   {key: np.array(v) for key, v in rec_track.items()})
    return ext_values(), hist


def names_of(optimizers: Iterable[Optimizer]) -> list[str]:
    """Class names of optimizers (for tables)."""
    return [o.name for o in optimizers]
