"""Scale: a 10,000-node chain and a 1,000-block residual network, end to end, no RecursionError.

The recursion limit is lowered to 400 while these run, far below the graphs' depths, so any
recursive traversal fails loudly instead of passing by luck. Sizes and timings per stage are
measured by ``benchmarks/bench_scale.py``; here each stage just has to finish.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import graphgrad as gg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from strategies import chain_text  # noqa: E402

CHAIN = 10_000
BLOCKS = 1_000


def chain(n: int = CHAIN, op: str = "sigmoid") -> gg.Graph:
    """x -> op -> op -> ... (n named nodes) -> L = sum(h)."""
    g = gg.Graph()
    h = g.input("x", "N")
    for i in range(n):
        h = g.apply(op, h, name=f"h{i}")
    g.apply("sum", h, name="L")
    return g


def residual(blocks: int = BLOCKS) -> gg.Graph:
    """h_{i+1} = h_i + W_i @ sigmoid(h_i) (+ b_i every other block); L = norm(h)**2."""
    g = gg.Graph()
    h = g.input("x", "N")
    for i in range(blocks):
        branch = g.apply("matmul", g.param(f"W{i}", ("N", "N")), g.apply("sigmoid", h))
        if i % 2:
            branch = g.apply("add", branch, g.param(f"b{i}", "N"))
        h = g.apply("add", h, branch, name=f"h{i}")
    g.apply("pow", g.apply("norm", h), 2.0, name="L")
    return g


@pytest.fixture
def low_recursion_limit():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def values(g: gg.Graph, n: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {v: 0.1 * rng.standard_normal(tuple(n for _ in g.shape(v))) for v in g.leaves()}


@pytest.fixture(scope="module")
def big_chain() -> gg.Graph:
    return chain()


@pytest.fixture(scope="module")
def big_residual() -> gg.Graph:
    return residual()


@pytest.mark.parametrize("which", ["big_chain", "big_residual"])
def test_validate_evaluate_backward_grad(which: str, request, low_recursion_limit) -> None:
    g: gg.Graph = request.getfixturevalue(which)
    g.validate()
    assert g.topo_order()[0] == "x" and g.topo_order()[-1] == "L"
    vals = values(g)
    out = gg.evaluate(g, vals)  # every named node
    assert len(out) == len(g.named_nodes()) and np.isfinite(out["L"])
    bw = gg.backward(g, "L")
    assert set(g.leaves()) <= set(bw.adjoint)
    value, grads = gg.value_and_grad(g, "L", None, vals)
    assert np.isclose(value, out["L"], rtol=1e-12) and all(np.all(np.isfinite(v)) for v in grads.values())
    # the first leaf's gradient against central differences in one direction
    rng = np.random.default_rng(1)
    v = rng.standard_normal(vals["x"].shape)
    eps = 1e-6
    f = lambda x: float(gg.evaluate(g, {**vals, "x": x}, outputs=["L"])["L"])  # noqa: E731
    fd = (f(vals["x"] + eps * v) - f(vals["x"] - eps * v)) / (2 * eps)
    assert np.isclose(np.sum(grads["x"] * v), fd, rtol=1e-5, atol=1e-9)


def test_batched_residual(low_recursion_limit) -> None:
    g = residual(200)
    vals = values(g)
    vals["x"] = 0.1 * np.random.default_rng(2).standard_normal((4, 3))
    value, grads = gg.value_and_grad(g, "L", ["x", "W0", "b199"], vals)
    assert value.shape == (4,) and grads["x"].shape == (4, 3) and grads["W0"].shape == (3, 3)


def test_parse_10000_line_model(low_recursion_limit) -> None:
    text = chain_text(CHAIN, "sigmoid")
    g = gg.parse(text)
    assert len(g.named_nodes()) == CHAIN + 2 and g == chain()


def test_to_networkx_round_trip(big_chain, low_recursion_limit) -> None:
    assert gg.from_networkx(big_chain.to_networkx()) == big_chain


def test_copy_and_compare(big_residual, low_recursion_limit) -> None:
    c = big_residual.copy()
    assert c == big_residual
    c.apply("neg", "L", name="M")
    assert c != big_residual


# ----------------------------------------------------------------------------- later layers


def test_derivation_at_scale(low_recursion_limit) -> None:
    pytest.importorskip("graphgrad.symbolic")
    g = chain(2_000)
    vals = values(g)
    d = gg.derivative(g, "L", "x").evaluate(vals)
    np.testing.assert_allclose(d, gg.grad(g, "L", ["x"], vals)["x"], rtol=1e-9)
    assert len(gg.backprop(g, "L")) >= 2_000


def test_compilation_at_scale(low_recursion_limit) -> None:
    pytest.importorskip("graphgrad.compiler")
    g = residual(300)
    vals = values(g)
    value, grads = gg.compile(g, "L", ["x", "W0"])(**vals)
    ref_value, ref = gg.value_and_grad(g, "L", ["x", "W0"], vals)
    np.testing.assert_allclose(value, ref_value, rtol=1e-10)


def test_rendering_at_scale(low_recursion_limit) -> None:
    pytest.importorskip("graphgrad.drawing.dot")
    svg = gg.render(chain(1_000))
    assert "<svg" in svg
