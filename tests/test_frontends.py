"""The three front ends (text, Python builder, hand-built networkx) give one IR."""

from __future__ import annotations

import importlib.util

import networkx as nx
import numpy as np
import pytest

import graphgrad as gg

from conftest import RESIDUAL, ROOT


def builder_mlp() -> gg.Graph:
    """The residual MLP written with the Python builder: examples/residual_mlp.py's own ``build``."""
    spec = importlib.util.spec_from_file_location("residual_mlp_example", ROOT / "examples" / "residual_mlp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


def networkx_mlp() -> gg.Graph:
    G = nx.DiGraph()

    def node(name, op, *args, shape=None, value=None):
        attrs = {"op": op, "args": tuple(args)}
        if shape is not None:
            attrs["shape"] = shape
        if value is not None:
            attrs["value"] = value
        G.add_node(name, **attrs)
        for a in args:
            G.add_edge(a, name)

    node("x", "input", shape=("N",))
    node("W1", "param", shape=("K", "N"))
    node("b1", "param", shape=("K",))
    node("W2", "param", shape=("N", "K"))
    node("b2", "param", shape=("N",))
    node("r", "const", shape=("K",))
    node("s", "const", shape=("N",))
    node("m1", "matmul", "W1", "x")
    node("z", "add", "m1", "b1")
    node("h", "sigmoid", "z")
    node("m2", "matmul", "W2", "h")
    node("a1", "add", "x", "m2")
    node("y", "add", "a1", "b2")
    node("d", "sub", "y", "s")
    node("n", "norm", "d")
    node("two", "literal", value=2.0)
    node("p", "pow", "n", "two")
    node("half", "literal", value=0.5)
    node("S", "mul", "half", "p")
    node("R", "dot", "r", "h")
    node("L", "add", "S", "R")
    for helper in ("m1", "m2", "a1", "d", "n", "two", "p", "half"):
        G.nodes[helper]["anon"] = True
    return gg.from_networkx(G)


def test_three_front_ends_give_the_same_graph():
    text, built, hand = gg.load(RESIDUAL), builder_mlp(), networkx_mlp()
    assert text == built
    assert text == hand
    assert text.named_nodes() == ["x", "W1", "b1", "W2", "b2", "r", "s", "z", "h", "y", "S", "R", "L"]


def test_structural_equality_sees_a_difference():
    other = gg.parse(RESIDUAL.read_text().replace("W2 @ h", "W2 @ z"))
    assert other != gg.load(RESIDUAL)
    swapped = gg.parse(RESIDUAL.read_text().replace("W1 @ x", "W1 @ x").replace("x + W2 @ h", "W2 @ h + x"))
    assert swapped != gg.load(RESIDUAL), "operand order matters"


def test_ir_attributes_and_edges(mlp):
    G = mlp.to_networkx()
    for n, a in G.nodes(data=True):
        assert set(G.predecessors(n)) == set(a["args"]), n
        assert isinstance(a["shape"], tuple)
    assert G.nodes["z"]["op"] == "add" and G.nodes["z"]["shape"] == ("K",)
    assert G.nodes["L"]["shape"] == ()
    assert G.nodes["W1"]["op"] == "param"
    # generated names cannot clash with user names: users may not start a name with _
    assert all(n.startswith("_") for n, a in G.nodes(data=True) if a.get("anon"))
    assert mlp.attrs("h")["line"] == 7


def test_networkx_round_trip(mlp):
    back = gg.from_networkx(mlp.to_networkx())
    assert back == mlp
    assert back.topo_order() == mlp.topo_order()


def test_x_times_x_keeps_both_operands():
    g = gg.parse("input x[N]\nq = x * x\nL = sum(q)")
    assert g.args("q") == ("x", "x")
    assert g.nx.number_of_edges() == 2  # x -> q once, q -> L


def test_shape_algebra_follows_column_vectors():
    g = gg.parse("input a[N]  b[N]  c[M]\ns = a.T @ b\no = a @ c.T\nt = a.T")
    assert g.shape("s") == ()
    assert g.shape("o") == ("N", "M")
    assert g.shape("t") == (1, "N")


def test_bias_broadcasts_column_wise():
    g = gg.parse("input X[N, B]\nparam W[K, N]  b[K]\nZ = W @ X + b")
    assert g.shape("Z") == ("K", "B")


def test_size_used_as_scalar():
    g = gg.parse("input X[n, d]  t[n]\nparam w[d]\nL = (1/n) * norm(X @ w - t)**2")
    assert g.op("n") == "size"
    assert g.shape("L") == ()


def test_declarations_forms():
    g = gg.parse("input a, b[], c[3]\nparam W[2, 3]\nconst k\ny = a * b * k + sum(W @ c)")
    assert g.shape("a") == () and g.shape("b") == () and g.shape("c") == (3,)


def test_comments_and_blank_lines():
    g = gg.parse("# a model\n\ninput x[N]   # data\n\nL = sum(x)  # loss\n")
    assert g.named_nodes() == ["x", "L"]


def test_alias_makes_an_id_node():
    g = gg.parse("input x[N]\ny = x\nL = sum(y)")
    assert g.op("y") == "id" and g.args("y") == ("x",)


def test_builder_numbers_and_reflected_operators():
    m = gg.Graph()
    x = m.input("x", "N")
    y = (2 - x / 3) ** 2
    assert y.shape == ("N",)
    assert m.op(y.name) == "pow"


def test_bundled_model_matches_example():
    from graphgrad.models import text

    assert text("residual_mlp") == RESIDUAL.read_text()
    assert (ROOT / "graphgrad" / "models" / "residual_mlp.gg").exists()


@pytest.mark.parametrize("op", sorted(gg.ops.PUBLIC_OPS))
def test_every_public_op_is_a_builder_function(op):
    assert callable(getattr(gg, op))


# ----------------------------------------------------------------------------- networkx graphs as users build them

SMALL = "input x[N]\nparam W[K, N]\nconst c\nh = sigmoid(W @ x)\nL = c * sum(h)\n"


def small_networkx(leaf_args: bool = False) -> nx.DiGraph:
    """SMALL, built by hand the way users do: leaves without args, literals as ints."""
    G = nx.DiGraph()
    extra = {"args": ()} if leaf_args else {}
    G.add_node("x", op="input", shape=("N",), **extra)
    G.add_node("W", op="param", shape=["K", "N"], **extra)  # a list is fine too
    G.add_node("c", op="const", shape=(), **extra)
    G.add_node("m", op="matmul", args=("W", "x"), anon=True)
    G.add_node("h", op="sigmoid", args=("m",))
    G.add_node("s", op="sum", args=("h",), anon=True)
    G.add_node("L", op="mul", args=("c", "s"))
    G.add_edges_from([("W", "m"), ("x", "m"), ("m", "h"), ("h", "s"), ("c", "L"), ("s", "L")])
    return G


def _ir(g: gg.Graph, n: str) -> dict:
    return {k: v for k, v in g.attrs(n).items() if k not in ("line", "col")}


def test_networkx_leaves_without_args_are_stored_as_the_text_front_end_stores_them():
    G = small_networkx()
    g, text = gg.from_networkx(G), gg.parse(SMALL)
    assert g == text
    for n in ("x", "W", "c"):
        assert _ir(g, n) == _ir(text, n), n
    for n in ("h", "L"):  # (their operands' generated names differ)
        assert {**_ir(g, n), "args": None} == {**_ir(text, n), "args": None}, n
    for n in ("x", "W", "c", "h", "L"):
        assert g.attrs(n)["line"] is None and g.attrs(n)["col"] is None
    assert g.args("x") == () and g.shape("W") == ("K", "N")
    assert "args" not in G.nodes["x"] and G.nodes["W"]["shape"] == ["K", "N"], "G itself is not changed"
    assert gg.from_networkx(small_networkx(leaf_args=True)) == g


def test_networkx_leaves_without_args_differentiate_and_compile():
    # each of these raised KeyError: 'args'
    g = gg.from_networkx(small_networkx())
    rng = np.random.default_rng(0)
    vals = {"x": rng.standard_normal(3), "W": rng.standard_normal((2, 3)), "c": 1.5}
    assert np.isfinite(gg.evaluate(g, vals)["L"])
    grads = gg.grad(g, "L", ["x", "W"], vals)
    ref = gg.grad(gg.parse(SMALL), "L", ["x", "W"], vals)
    for w in grads:
        np.testing.assert_allclose(grads[w], ref[w], rtol=1e-12)
    np.testing.assert_allclose(gg.grad(g, "L", ["x"], vals, engine="interpret")["x"], ref["x"], rtol=1e-12)
    d = gg.derivative(g, "L", "x")
    np.testing.assert_allclose(d.evaluate(vals), ref["x"], rtol=1e-10)
    assert "x̄" in str(gg.backprop(g, "L"))
    value, cg = gg.compile(g, "L", ["x", "W"])(**vals)
    np.testing.assert_allclose(cg["W"], ref["W"], rtol=1e-12)


def test_networkx_literals_are_stored_as_floats():
    G = nx.DiGraph()
    G.add_node("x", op="input", shape=("N",))
    for name, v in [("two", 2), ("half", np.float32(0.5)), ("three", np.int64(3))]:
        G.add_node(name, op="literal", value=v)
    G.add_node("p", op="pow", args=("x", "two"), anon=True)
    G.add_node("q", op="mul", args=("half", "p"), anon=True)
    G.add_node("L", op="mul", args=("three", "q"))
    G.add_edges_from([("x", "p"), ("two", "p"), ("half", "q"), ("p", "q"), ("three", "L"), ("q", "L")])
    g = gg.from_networkx(G)
    for name, v in [("two", 2.0), ("half", 0.5), ("three", 3.0)]:
        assert type(g.attrs(name)["value"]) is float and g.attrs(name)["value"] == v
        assert g.attrs(name)["anon"] is True and g.args(name) == () and g.shape(name) == ()
    assert g == gg.parse("input x[N]\nL = 3 * (0.5 * x**2)")


HOSTILE_NAMES = ["h 1", "np", "lambda", "np[__import__('os').system('touch PWNED')]"]


def test_networkx_hostile_node_names_build_and_evaluate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b, c, d = HOSTILE_NAMES
    G = nx.DiGraph()
    G.add_node(a, op="input", shape=("N",))
    G.add_node(b, op="param", shape=("N",))
    G.add_node(c, op="sigmoid", args=(a,))
    G.add_node(d, op="dot", args=(b, c))
    G.add_edges_from([(a, c), (b, d), (c, d)])
    g = gg.from_networkx(G)
    assert g.named_nodes() == HOSTILE_NAMES  # kept as they are, for display
    x, w = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    out = gg.evaluate(g, {a: x, b: w})
    np.testing.assert_allclose(out[c], 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(out[d], w @ (1 / (1 + np.exp(-x))))
    assert not (tmp_path / "PWNED").exists()
    assert gg.from_networkx(g.to_networkx()) == g
