"""Differential testing against an independent autodiff: JAX, else PyTorch (CPU), else skipped.

Each random model (tests/strategies.py) is re-implemented op by op with the other library's
functions, straight from the graph (not from graphgrad's kernels or rules); values and
gradients must agree. Install one with ``pip install "jax[cpu]"`` or ``pip install torch``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

import graphgrad as gg
from graphgrad.shapes import matrix_form

sys.path.insert(0, str(Path(__file__).resolve().parent))
from strategies import Model, examples, models, typed_models  # noqa: E402

BACKEND = next((m for m in ("jax", "torch") if importlib.util.find_spec(m) is not None), None)
pytestmark = pytest.mark.skipif(BACKEND is None, reason="neither jax nor torch is installed")


def _jax_ops():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    red = dict(axis=(-2, -1), keepdims=True)
    sig = jax.nn.sigmoid
    return jnp, {
        "add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": jnp.divide, "matmul": jnp.matmul,
        "transpose": lambda a: jnp.swapaxes(a, -1, -2), "neg": jnp.negative, "pow": jnp.power,
        "sigmoid": sig, "tanh": jnp.tanh, "relu": jax.nn.relu, "exp": jnp.exp, "log": jnp.log,
        "sqrt": jnp.sqrt, "dsigmoid": lambda x: sig(x) * (1 - sig(x)), "dtanh": lambda x: 1 - jnp.tanh(x) ** 2,
        "drelu": lambda x: (x > 0).astype(x.dtype), "norm": lambda x: jnp.sqrt(jnp.sum(x * x, **red)),
        "dot": lambda a, b: jnp.sum(a * b, **red), "sum": lambda x: jnp.sum(x, **red),
        "mean": lambda x: jnp.mean(x, **red), "id": lambda x: x,
    }


def _torch_ops():
    import torch

    red = dict(dim=(-2, -1), keepdim=True)
    return torch, {
        "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "matmul": torch.matmul,
        "transpose": lambda a: a.transpose(-1, -2), "neg": torch.neg, "pow": torch.pow,
        "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "exp": torch.exp, "log": torch.log,
        "sqrt": torch.sqrt, "dsigmoid": lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x)),
        "dtanh": lambda x: 1 - torch.tanh(x) ** 2, "drelu": lambda x: (x > 0).to(x.dtype),
        "norm": lambda x: torch.sqrt(torch.sum(x * x, **red)), "dot": lambda a, b: torch.sum(a * b, **red),
        "sum": lambda x: torch.sum(x, **red), "mean": lambda x: torch.mean(x, **red), "id": lambda x: x,
    }


def forward(graph: gg.Graph, lib, ops: dict, leaves: dict, sizes: dict, batched: set):
    """sum over the batch of L, computed with the other library from matrix-form leaves."""
    vals = dict(leaves)
    for n in graph.topo_order():
        a = graph.attrs(n)
        if n in vals:
            continue
        if a["op"] == "literal":  # numbers in matrix form, like every value (0 @ x is a product)
            vals[n] = np.full((1, 1), a["value"])
        elif a["op"] == "size":
            vals[n] = np.full((1, 1), float(sizes[n]))
        else:
            vals[n] = ops[a["op"]](*(vals[x] for x in a["args"]))
    return vals["L"].sum()


def matrix_leaves(m: Model) -> tuple[dict[str, np.ndarray], set[str]]:
    out, batched = {}, set()
    for n in m.graph.leaves():
        v = np.asarray(m.inputs[n], dtype=np.float64)
        dims = tuple(m.sizes[d] if isinstance(d, str) else d for d in m.graph.shape(n))
        lead = (m.batch,) if m.batch and m.graph.op(n) == "input" else ()
        if lead:
            batched.add(n)
        out[n] = v.reshape(lead + matrix_form(dims))
    return out, batched


def reference(m: Model) -> tuple[float, dict[str, np.ndarray]]:
    leaves, batched = matrix_leaves(m)
    names = list(leaves)
    if BACKEND == "jax":
        import jax

        lib, ops = _jax_ops()
        f = lambda *xs: forward(m.graph, lib, ops, dict(zip(names, xs)), m.sizes, batched)  # noqa: E731
        value, grads = jax.value_and_grad(f, argnums=tuple(range(len(names))))(*(leaves[n] for n in names))
        grads = [np.asarray(g) for g in grads]
    else:
        lib, ops = _torch_ops()
        ts = {n: lib.tensor(v, dtype=lib.float64, requires_grad=True) for n, v in leaves.items()}
        value = forward(m.graph, lib, ops, ts, m.sizes, batched)
        value.backward()
        grads = [ts[n].grad.numpy() if ts[n].grad is not None else np.zeros_like(leaves[n]) for n in names]
    return float(value), {n: g.reshape(np.shape(m.inputs[n])) for n, g in zip(names, grads)}


@settings(max_examples=examples(8))  # each example traces the model anew in the other library
@given(models(batch=None))
def test_against_independent_autodiff(m: Model) -> None:
    value, grads = gg.value_and_grad(m.graph, "L", list(m.inputs), m.inputs)
    ref_value, ref = reference(m)
    np.testing.assert_allclose(float(np.sum(value)), ref_value, rtol=1e-10, atol=1e-12)
    for w in m.inputs:
        np.testing.assert_allclose(grads[w], ref[w], rtol=1e-8, atol=1e-10, err_msg=f"grad wrt {w} ({BACKEND})")


def test_residual_mlp_against_independent_autodiff() -> None:
    g = gg.load(Path(__file__).resolve().parent.parent / "examples" / "residual_mlp.gg")
    rng = np.random.default_rng(0)
    N, K = 3, 2
    shapes = dict(x=(N,), W1=(K, N), b1=(K,), W2=(N, K), b2=(N,), r=(K,), s=(N,))
    vals = {k: rng.standard_normal(s) for k, s in shapes.items()}
    value, grads = gg.value_and_grad(g, "L", list(vals), vals)
    ref_value, ref = reference(Model(g, vals, "L", {"N": N, "K": K}))
    assert float(value) == pytest.approx(ref_value, rel=1e-12)
    for w in vals:
        np.testing.assert_allclose(grads[w], ref[w], rtol=1e-10, atol=1e-12, err_msg=w)


@settings(max_examples=examples(15))
@given(typed_models(batch=False))
def test_typed_expressions_against_independent_autodiff(t) -> None:
    """Small typed expressions (unary minus, powers, sizes and literals as values, every public op):
    both engines' values and gradients w.r.t. every leaf against the other library's autodiff."""
    leaves = [n for n in t.graph.leaves() if n in t.inputs]
    if t.unsafe or not leaves:
        return
    m = Model(t.graph, {n: t.inputs[n] for n in leaves}, "L", t.sizes)
    with np.errstate(all="ignore"):
        ref_value, ref = reference(m)
    if not (np.isfinite(ref_value) and all(np.all(np.isfinite(g)) for g in ref.values())):
        return  # outside the ops' smooth domains (e.g. sqrt at 0): the engines' own tests cover errors
    for engine in ("interpret", "compiled"):
        try:
            value, grads = gg.value_and_grad(t.graph, "L", leaves, m.inputs, engine=engine)
        except gg.InputError:  # a non-finite intermediate where the other library's is finite (0 · inf)
            continue
        np.testing.assert_allclose(float(np.sum(value)), ref_value, rtol=1e-9, atol=1e-9, err_msg=engine)
        for w in leaves:
            np.testing.assert_allclose(grads[w], ref[w], rtol=1e-8, atol=1e-9, err_msg=f"{engine}: grad wrt {w}")
