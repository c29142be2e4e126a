"""Reference implementations of the residual-MLP loss and its gradients.

Model (column-vector convention, per sample x in R^N)::

    z = W1 @ x + b1;  h = sigmoid(z);  y = x + W2 @ h + b2
    S = 0.5 * ||y - s||^2;  R = r . h;  L = S + R

with W1[K,N], b1[K], W2[N,K], b2[N] and constants r[K], s[N].  A batch is a
row-major array x of shape (B, N); L is summed over the batch, dL/dx is per
sample (shape (B, N)) and the parameter gradients are summed over the batch.
Everything is float64.

Every implementation has the signature::

    fn(x, W1, b1, W2, b2, r, s) -> (L, {"x": .., "W1": .., "b1": .., "W2": .., "b2": .})

NumPy arrays in, a Python float and NumPy arrays out.  ``numpy_hand`` is the
reference; the peers (PyTorch, JAX, HIPS autograd) are imported lazily, and a
missing package raises :class:`NotInstalledError` (a subclass of ImportError).

``python benchmarks/residual_mlp_refs.py`` runs :func:`check`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

GRAD_NAMES = ("x", "W1", "b1", "W2", "b2")

# name -> (N, K, B)
SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (3, 2, 1),
    "small": (32, 64, 16),
    "medium": (256, 512, 64),
    "large": (1024, 2048, 256),
}

RTOL = 1e-10


class NotInstalledError(ImportError):
    """A peer's package is not importable."""


def make_inputs(size: str | tuple[int, int, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic float64 inputs for a named size or an (N, K, B) triple.

    Scaled so that z = W1 @ x + b1 is O(1) (the sigmoid is neither flat nor
    saturated) and every gradient is O(1)-ish.
    """
    n, k, b = SIZES[size] if isinstance(size, str) else size
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((b, n)),
        "W1": rng.standard_normal((k, n)) / np.sqrt(n),
        "b1": 0.1 * rng.standard_normal(k),
        "W2": rng.standard_normal((n, k)) / np.sqrt(k),
        "b2": 0.1 * rng.standard_normal(n),
        "r": rng.standard_normal(k),
        "s": rng.standard_normal(n),
    }


# --------------------------------------------------------------------------
# numpy_hand: the reference (careful, idiomatic NumPy; no buffer-reuse tricks)
# --------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Overflow-free logistic: exp is only ever taken of -|z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def numpy_hand(x, W1, b1, W2, b2, r, s):
    # forward, batch in rows: Z = X W1^T + b1, Y = X + H W2^T + b2
    z = x @ W1.T
    z += b1
    h = _sigmoid(z)
    d = h @ W2.T  # d = dL/dY = Y - s
    d += x
    d += b2
    d -= s
    L = 0.5 * np.vdot(d, d) + h.sum(axis=0) @ r

    # backward
    gW2 = d.T @ h
    gb2 = d.sum(axis=0)
    dz = d @ W2  # dL/dH = D W2 + r, then times sigmoid' = h (1 - h)
    dz += r
    dz *= h * (1.0 - h)
    gW1 = dz.T @ x
    gb1 = dz.sum(axis=0)
    gx = dz @ W1
    gx += d
    return float(L), {"x": gx, "W1": gW1, "b1": gb1, "W2": gW2, "b2": gb2}


# --------------------------------------------------------------------------
# Peers: each builder imports its package and returns the callable.
# --------------------------------------------------------------------------


def _build_numpy_hand():
    return numpy_hand


def _build_torch_eager():
    try:
        import torch
    except ImportError as e:
        raise NotInstalledError("torch not installed") from e

    def torch_eager(x, W1, b1, W2, b2, r, s):
        # from_numpy shares memory with the NumPy inputs (no copy)
        X, w1, c1, w2, c2 = (torch.from_numpy(a).requires_grad_() for a in (x, W1, b1, W2, b2))
        tr, ts = torch.from_numpy(r), torch.from_numpy(s)
        h = torch.sigmoid(X @ w1.T + c1)
        y = X + h @ w2.T + c2
        L = 0.5 * torch.sum((y - ts) ** 2) + torch.sum(h @ tr)
        grads = torch.autograd.grad(L, (X, w1, c1, w2, c2))
        return float(L.detach()), {k: g.numpy() for k, g in zip(GRAD_NAMES, grads, strict=True)}

    return torch_eager


def _build_jax_jit():
    try:
        import jax
    except ImportError as e:
        raise NotInstalledError("jax not installed") from e
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    import jax.numpy as jnp

    def loss(x, W1, b1, W2, b2, r, s):
        h = jax.nn.sigmoid(x @ W1.T + b1)
        y = x + h @ W2.T + b2
        return 0.5 * jnp.sum((y - s) ** 2) + jnp.sum(h @ r)

    vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3, 4)))

    def jax_jit(x, W1, b1, W2, b2, r, s):
        L, grads = vg(x, W1, b1, W2, b2, r, s)
        # np.asarray blocks until the result is ready
        return float(L), {k: np.asarray(g) for k, g in zip(GRAD_NAMES, grads, strict=True)}

    return jax_jit


def _build_hips_autograd():
    try:
        import autograd.numpy as anp
        from autograd import value_and_grad
    except ImportError as e:
        raise NotInstalledError("autograd not installed") from e
    try:  # scipy's expit: stable, and its VJP is ans * (1 - ans)
        from autograd.scipy.special import expit
    except ImportError:  # no scipy: exp(-softplus(-z)), also overflow-free

        def expit(z):
            return anp.exp(-anp.logaddexp(0.0, -z))

    def loss(x, W1, b1, W2, b2, r, s):
        h = expit(anp.dot(x, W1.T) + b1)
        y = x + anp.dot(h, W2.T) + b2
        return 0.5 * anp.sum((y - s) ** 2) + anp.sum(anp.dot(h, r))

    vg = value_and_grad(loss, argnum=(0, 1, 2, 3, 4))

    def hips_autograd(x, W1, b1, W2, b2, r, s):
        L, grads = vg(x, W1, b1, W2, b2, r, s)
        return float(L), dict(zip(GRAD_NAMES, grads, strict=True))

    return hips_autograd


BUILDERS: dict[str, Callable[[], Callable]] = {
    "numpy_hand": _build_numpy_hand,
    "torch_eager": _build_torch_eager,
    "jax_jit": _build_jax_jit,
    "hips_autograd": _build_hips_autograd,
}

_cache: dict[str, Callable] = {}


def get_impl(name: str) -> Callable:
    """The impl called ``name``; raises NotInstalledError if its package is missing."""
    if name not in _cache:
        _cache[name] = BUILDERS[name]()
    return _cache[name]


def torch_eager(x, W1, b1, W2, b2, r, s):
    return get_impl("torch_eager")(x, W1, b1, W2, b2, r, s)


def jax_jit(x, W1, b1, W2, b2, r, s):
    return get_impl("jax_jit")(x, W1, b1, W2, b2, r, s)


def hips_autograd(x, W1, b1, W2, b2, r, s):
    return get_impl("hips_autograd")(x, W1, b1, W2, b2, r, s)


# --------------------------------------------------------------------------
# Agreement check
# --------------------------------------------------------------------------


def rel_err(a, b) -> float:
    """max|a - b| / max|b| (norm-wise, so near-zero entries don't blow it up)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = np.max(np.abs(b)) if b.size else 0.0
    diff = np.max(np.abs(a - b)) if b.size else 0.0
    err = float(diff / scale) if scale > 0 else float(diff)
    return err if np.isfinite(err) else float("inf")


def compare(result, ref) -> dict[str, float]:
    """Relative error of each output (L, five gradients) of ``result`` vs ``ref``."""
    (L, g), (L0, g0) = result, ref
    errs = {"L": rel_err(L, L0)}
    for k in GRAD_NAMES:
        errs[k] = rel_err(g[k], g0[k]) if k in g else float("inf")
    return errs


def _finite_difference_check() -> None:
    """numpy_hand's gradient against central differences (tiny size)."""
    inp = make_inputs("tiny", seed=1)
    _, g = numpy_hand(**inp)
    eps = 1e-6
    for k in GRAD_NAMES:
        fd = np.zeros_like(inp[k])
        for i in np.ndindex(inp[k].shape):
            plus = {n: a.copy() for n, a in inp.items()}
            minus = {n: a.copy() for n, a in inp.items()}
            plus[k][i] += eps
            minus[k][i] -= eps
            fd[i] = (numpy_hand(**plus)[0] - numpy_hand(**minus)[0]) / (2 * eps)
        err = rel_err(g[k], fd)
        assert err < 1e-7, f"numpy_hand d{k} vs finite differences: rel err {err:.2e}"


def check(sizes=("tiny", "small", "medium"), names=None, verbose=True) -> dict[str, str]:
    """Assert every installed implementation agrees with numpy_hand to RTOL.

    Also checks numpy_hand against finite differences and on saturated
    inputs (|z| ~ 1e3, where a naive sigmoid overflows).  Returns
    {impl: "ok" | "not installed: ..."}.
    """
    _finite_difference_check()
    names = list(BUILDERS) if names is None else list(names)
    status: dict[str, str] = {}
    cases = [(sz, make_inputs(sz)) for sz in sizes]
    sat = make_inputs("small", seed=2)
    sat["W1"] = sat["W1"] * 1e3
    cases.append(("small-saturated", sat))
    for name in names:
        try:
            fn = get_impl(name)
        except NotInstalledError as e:
            status[name] = f"not installed: {e}"
            if verbose:
                print(f"{name:15s} skipped ({e})")
            continue
        for label, inp in cases:
            with np.errstate(over="raise", invalid="raise"):
                ref = numpy_hand(**inp)
            errs = compare(fn(**inp), ref)
            worst = max(errs, key=errs.get)
            assert errs[worst] <= RTOL, f"{name} at {label}: d{worst} rel err {errs[worst]:.2e} > {RTOL:g}"
            if verbose:
                print(f"{name:15s} {label:16s} max rel err {errs[worst]:.1e} ({worst})")
        status[name] = "ok"
    return status


if __name__ == "__main__":
    check()
    print("check passed")
