"""The three front ends (text, Python builder, hand-built networkx) give one IR."""

from __future__ import annotations

import networkx as nx
import pytest

import graphgrad as gg

from conftest import RESIDUAL, ROOT


def builder_mlp() -> gg.Graph:
    m = gg.Graph()
    x = m.input("x", "N")
    W1, b1, W2, b2 = m.param("W1", ("K", "N")), m.param("b1", "K"), m.param("W2", ("N", "K")), m.param("b2", "N")
    r, s = m.const("r", "K"), m.const("s", "N")
    z = (W1 @ x + b1).named("z")
    h = gg.sigmoid(z, name="h")
    y = (x + W2 @ h + b2).named("y")
    S = (0.5 * gg.norm(y - s) ** 2).named("S")
    R = gg.dot(r, h, name="R")
    (S + R).named("L")
    return m


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
