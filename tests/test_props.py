"""Property-based tests on random models (see tests/strategies.py for the generator).

Each property runs on random DAGs over the op table: named and anonymous nodes, aliases,
shared sub-expressions, fan-out, residual branches, literals, size names as scalars, random sizes,
with and without a batch axis. Values are domain-safe, so finite differences are meaningful.
Properties that need a later layer (symbolic derivation, the compiler, the renderer) skip until
that module exists.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from hypothesis import given, settings

import graphgrad as gg
from graphgrad.ops import OPS
from graphgrad.shapes import normalize

from strategies import Model, examples, models, to_text

EPS = 1e-5


def total(graph: gg.Graph, inputs: Mapping, of: str = "L") -> float:
    """sum(of) (over the batch, when batched): the function whose gradient ``grad`` gives."""
    return float(np.sum(gg.evaluate(graph, inputs, outputs=[of])[of]))


def central_differences(m: Model, of: str = "L") -> dict[str, np.ndarray]:
    """∂ sum(of) / ∂ each entry of each fed value, by central differences."""
    out = {}
    for w, x in m.inputs.items():
        x = np.asarray(x, dtype=np.float64)
        fd = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            plus, minus = x.copy(), x.copy()
            plus[i] += EPS
            minus[i] -= EPS
            fd[i] = (total(m.graph, {**m.inputs, w: plus}, of) - total(m.graph, {**m.inputs, w: minus}, of)) / (2 * EPS)
        out[w] = fd
    return out


def assert_close_grads(an: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray], scale: float, rtol=1e-4,
                       what: str = "grad") -> None:
    for w, r in ref.items():
        a = np.asarray(an[w])
        assert a.shape == np.shape(r), f"{what}[{w}] has shape {a.shape}, the value fed {np.shape(r)}"
        np.testing.assert_allclose(a, r, rtol=rtol, atol=rtol * scale, err_msg=f"{what} wrt {w}")


# ----------------------------------------------------------------------------- gradients


@settings(max_examples=examples(40))
@given(models(batch=None))
def test_grad_matches_central_differences(m: Model) -> None:
    fd = central_differences(m)
    for engine in ("compiled", "interpret"):
        value, grads = gg.value_and_grad(m.graph, "L", list(m.inputs), m.inputs, engine=engine)
        assert np.all(np.isfinite(value))
        scale = 1.0 + float(np.max(np.abs(value))) + max(float(np.max(np.abs(g), initial=0)) for g in fd.values())
        assert_close_grads(grads, fd, scale, rtol=1e-5 * 10, what=f"{engine} grad")


@settings(max_examples=examples(25))
@given(models())
def test_gradcheck_passes_on_correct_gradients(m: Model) -> None:
    report = gg.gradcheck(m.graph, "L", list(m.inputs), m.inputs)
    assert report.ok, str(report)


@settings(max_examples=examples(30))
@given(models(batch=None))
def test_value_and_grad_agree_with_evaluate_and_grad(m: Model) -> None:
    value, grads = gg.value_and_grad(m.graph, "L", None, m.inputs)
    assert set(grads) == set(m.graph.leaves())
    # (value_and_grad runs the compiled code, evaluate the interpreter: equal up to rounding)
    np.testing.assert_allclose(value, gg.evaluate(m.graph, m.inputs, outputs=["L"])["L"], rtol=1e-12, atol=1e-12)
    again = gg.grad(m.graph, "L", list(reversed(m.graph.leaves())), m.inputs)
    assert list(again) == list(reversed(m.graph.leaves()))  # in the order asked
    for w in grads:
        np.testing.assert_array_equal(grads[w], again[w])
    interpreted = gg.grad(m.graph, "L", None, m.inputs, engine="interpret")
    for w in grads:
        np.testing.assert_allclose(grads[w], interpreted[w], rtol=1e-10, atol=1e-12, err_msg=w)


@settings(max_examples=examples(30))
@given(models(batch=None))
def test_backward_one_adjoint_per_node_reaching_the_output(m: Model) -> None:
    g = m.graph
    before, n_before = g._canonical(), len(g)
    bw = gg.backward(g, "L")
    reaching = {"L"} | {n for n in g.ancestors("L") if g.op(n) not in ("literal", "size")}
    assert set(bw.adjoint) <= reaching
    if not any(g.op(n) in OPS and OPS[g.op(n)].zero_derivative for n in g.nx):  # passes no adjoint on
        assert set(bw.adjoint) == reaching
    assert bw.order[0] == "L" and len(bw.order) == len(set(bw.order)) == len(bw.adjoint)
    for v, a in bw.adjoint.items():  # v̄ has v's shape
        assert normalize(bw.graph.shape(a)) == normalize(g.shape(v)), (v, a)
    for v in g.named_nodes():  # a named adjoint is named after a variable it is the adjoint of
        a = bw.adjoint.get(v)
        if a is not None and a not in g and bw.graph.is_named(a):  # (it may be a forward node: dot's ū = c)
            owner = bw.graph.attrs(a).get("adjoint_of")
            assert a.startswith(f"{owner}_bar") and bw.adjoint[owner] == a, (v, a, owner)
    assert g._canonical() == before and len(g) == n_before, "backward changed the forward graph"
    pos = {n: i for i, n in enumerate(reversed(g.topo_order()))}  # order is a reverse topo order
    assert [pos[n] for n in bw.order] == sorted(pos[n] for n in bw.order)


@settings(max_examples=examples(30))
@given(models(batch=None))
def test_grad_is_linear(m: Model) -> None:
    """grad(2.5 L + k) = 2.5 grad(L) + grad(k), with k = sum(x ⊙ x) for the first leaf x."""
    g = m.graph.copy()
    x = g.leaves()[0]
    k = g.apply("sum", g.apply("mul", x, x))
    g.apply("add", g.apply("mul", 2.5, "L"), k, name="M")
    grads_L = gg.grad(g, "L", list(m.inputs), m.inputs)
    grads_M = gg.grad(g, "M", list(m.inputs), m.inputs)
    expected = {w: 2.5 * grads_L[w] + (2 * np.asarray(m.inputs[w]) if w == x else 0) for w in grads_L}
    scale = 1 + max(float(np.max(np.abs(v), initial=0)) for v in expected.values())
    assert_close_grads(grads_M, expected, scale, rtol=1e-10, what="grad M")


# ----------------------------------------------------------------------------- batching, dtypes


@settings(max_examples=examples(30))
@given(models(batch=True))
def test_batching_equals_a_loop(m: Model) -> None:
    g, B = m.graph, m.batch
    batched_in = [n for n in g.leaves() if g.op(n) == "input"]
    vals = gg.evaluate(g, m.inputs)
    value, grads = gg.value_and_grad(g, "L", list(m.inputs), m.inputs)
    assert np.shape(value) == (B,)
    loop_grads = {w: [] for w in grads}
    for b in range(B):
        one = {k: (v[b] if k in batched_in else v) for k, v in m.inputs.items()}
        vb = gg.evaluate(g, one)
        for n, v in vb.items():
            got = vals[n][b] if np.ndim(vals[n]) == np.ndim(v) + 1 else vals[n]
            np.testing.assert_allclose(got, v, rtol=1e-12, atol=1e-12, err_msg=f"value of {n}, sample {b}")
        gb = gg.grad(g, "L", list(m.inputs), one)
        for w, v in gb.items():
            loop_grads[w].append(v)
    for w, parts in loop_grads.items():
        ref = np.stack(parts) if w in batched_in else np.sum(parts, axis=0)
        np.testing.assert_allclose(grads[w], ref, rtol=1e-10, atol=1e-10, err_msg=f"grad wrt {w}")


@settings(max_examples=examples(25))
@given(models(batch=None))
def test_float32_is_kept_and_close_to_float64(m: Model) -> None:
    f32 = {k: np.asarray(v, dtype=np.float32) for k, v in m.inputs.items()}
    v64, g64 = gg.value_and_grad(m.graph, "L", list(m.inputs), m.inputs)
    v32, g32 = gg.value_and_grad(m.graph, "L", list(m.inputs), f32)
    assert np.asarray(v32).dtype == np.float32
    assert all(v.dtype == np.float32 for v in g32.values())
    assert all(v.dtype == np.float32 for v in gg.evaluate(m.graph, f32).values())
    np.testing.assert_allclose(v32, v64, rtol=1e-3, atol=1e-3)
    scale = 1 + max(float(np.max(np.abs(v), initial=0)) for v in g64.values())
    assert_close_grads(g32, g64, scale, rtol=2e-3, what="float32 grad")


# ----------------------------------------------------------------------------- front ends


@settings(max_examples=examples(40))
@given(models(batch=None))
def test_networkx_round_trip(m: Model) -> None:
    nxg = m.graph.to_networkx()
    back = gg.from_networkx(nxg)
    assert back == m.graph
    assert len(back) == len(m.graph) and set(back.nx.edges()) == set(m.graph.nx.edges())
    back.apply("neg", "L", name="changed")  # the copy is independent
    assert "changed" not in m.graph and "changed" not in nxg
    a, b = gg.evaluate(m.graph, m.inputs), gg.evaluate(back, m.inputs)
    for n in a:
        np.testing.assert_array_equal(a[n], b[n])


@settings(max_examples=examples(40))
@given(models(batch=None))
def test_text_round_trip(m: Model) -> None:
    text = to_text(m.graph)
    parsed = gg.parse(text)
    assert parsed == m.graph, text
    assert to_text(parsed) == text
    a, b = gg.evaluate(m.graph, m.inputs), gg.evaluate(parsed, m.inputs)
    assert a.keys() == b.keys()
    for n in a:
        np.testing.assert_allclose(a[n], b[n], rtol=1e-14, atol=0, err_msg=n)


# ----------------------------------------------------------------------------- later layers


@settings(max_examples=examples(20))
@given(models(batch=False, max_ops=6))  # Derivative.evaluate takes one sample
def test_derivative_evaluate_matches_grad(m: Model) -> None:
    pytest.importorskip("graphgrad.symbolic")
    grads = gg.grad(m.graph, "L", list(m.inputs), m.inputs)
    for w in m.inputs:
        d = gg.derivative(m.graph, "L", w).evaluate(m.inputs)
        assert np.shape(d) == np.shape(grads[w]) == np.shape(m.inputs[w])  # the shape as fed, like grad
        np.testing.assert_allclose(d, grads[w], rtol=1e-9, atol=1e-12, err_msg=f"d L / d {w}")


@settings(max_examples=examples(25))
@given(models(batch=None, max_ops=8))
def test_compiled_matches_interpreter(m: Model) -> None:
    # (a fuzz run of this property found rows [1, N] fed 2-D where the code keeps them 1-D)
    pytest.importorskip("graphgrad.compiler")
    wrt = list(m.inputs)
    value, grads = gg.value_and_grad(m.graph, "L", wrt, m.inputs, engine="interpret")
    f = gg.compile(m.graph, "L", wrt)
    for _ in range(2):  # the second call runs the cached specialised function
        cvalue, cgrads = f(**m.inputs)
        assert np.shape(cvalue) == np.shape(value)
        np.testing.assert_allclose(cvalue, value, rtol=1e-12, atol=1e-12)
        assert cgrads.keys() == grads.keys()
        for w in wrt:
            assert np.shape(cgrads[w]) == np.shape(grads[w]), f"compiled grad wrt {w}: shape"
            np.testing.assert_allclose(cgrads[w], grads[w], rtol=1e-10, atol=1e-12, err_msg=f"compiled grad wrt {w}")
    again = f(**{k: np.copy(v) for k, v in m.inputs.items()})  # bitwise-stable, inputs untouched
    np.testing.assert_array_equal(again[0], cvalue)
    for w in wrt:
        np.testing.assert_array_equal(again[1][w], cgrads[w])
    total_value, _ = gg.compile(m.graph, "L", wrt, reduce="sum")(**m.inputs)
    np.testing.assert_allclose(total_value, np.sum(value), rtol=1e-12, atol=1e-12)
    fwd, ref = gg.compile_forward(m.graph)(**m.inputs), gg.evaluate(m.graph, m.inputs)
    assert fwd.keys() == ref.keys()
    for n in ref:
        np.testing.assert_allclose(np.reshape(fwd[n], np.shape(ref[n])), ref[n], rtol=1e-12, atol=1e-12, err_msg=n)


@settings(max_examples=examples(20))
@given(models(batch=None, max_ops=8))
def test_compiled_gradients_of_intermediates(m: Model) -> None:
    # (found by rendering with the gradient of every named node: a value whose shape a result
    # reads must stay alive until the return)
    pytest.importorskip("graphgrad.compiler")
    wrt = [n for n in m.graph.named_nodes() if m.graph.op(n) not in ("literal", "size")]
    ref = gg.grad(m.graph, "L", wrt, m.inputs, engine="interpret")
    got = gg.grad(m.graph, "L", wrt, m.inputs, engine="compiled")
    for w in wrt:
        assert np.shape(got[w]) == np.shape(ref[w]), w
        np.testing.assert_allclose(got[w], ref[w], rtol=1e-10, atol=1e-12, err_msg=w)


@settings(max_examples=examples(15))
@given(models(batch=None, max_ops=8))
def test_compiled_float32(m: Model) -> None:
    pytest.importorskip("graphgrad.compiler")
    f32 = {k: np.asarray(v, dtype=np.float32) for k, v in m.inputs.items()}
    wrt = list(m.inputs)
    v32, g32 = gg.value_and_grad(m.graph, "L", wrt, f32, engine="interpret")
    cv, cg = gg.compile(m.graph, "L", wrt)(**f32)
    assert np.asarray(cv).dtype == np.float32 and all(np.asarray(g).dtype == np.float32 for g in cg.values())
    np.testing.assert_allclose(cv, v32, rtol=1e-4, atol=1e-4)
    scale = 1 + max(float(np.max(np.abs(v), initial=0)) for v in g32.values())
    assert_close_grads(cg, g32, scale, rtol=1e-3, what="compiled float32 grad")


@settings(max_examples=examples(20))
@given(models(batch=False, max_ops=6))
def test_rendering_never_fails(m: Model) -> None:
    pytest.importorskip("graphgrad.drawing.dot")
    svg = gg.render(m.graph)
    assert isinstance(svg, str) and "<svg" in svg and svg.rstrip().endswith("</svg>")
