"""Every error of the GraphgradError family is triggered, and its message names where and the fix."""

from __future__ import annotations

import os

import networkx as nx
import numpy as np
import pytest

import graphgrad as gg
from graphgrad.errors import (
    ArityError,
    CycleError,
    DerivationError,
    GraphgradError,
    InputError,
    NamingError,
    ParseError,
    ShapeError,
    SizeError,
    UnknownOpError,
)

HEAD = "input x[N]\nparam W1[K, N]  b1[K]  W2[N, K]\n"


def err(text):
    with pytest.raises(GraphgradError) as e:
        gg.parse(text)
    return e.value


@pytest.mark.parametrize("text,cls,line,col,words", [
    (HEAD + "z = W1 @ x + b2", NamingError, 3, 14, ["'b2' is not defined", "did you mean b1"]),
    (HEAD + "z = W1 @ x\nz = W2 @ x", NamingError, 4, 1, ["already defined on line 3"]),
    (HEAD + "z = foo(x)", UnknownOpError, 3, 5, ["unknown op 'foo'", "known ops", "sigmoid"]),
    (HEAD + "z = sigmod(x)", UnknownOpError, 3, 5, ["did you mean sigmoid"]),
    (HEAD + "z = sigmoid(x, x)", ArityError, 3, 5, ["sigmoid takes 1 operand, got 2"]),
    (HEAD + "z = W1 @ W1", ShapeError, 3, 5, ["did you mean W1.T @ W1?"]),
    (HEAD + "z = W2 @ W2", ShapeError, 3, 5, ["inner dims K and N differ"]),
    (HEAD + "z = W1 @ x + x", ShapeError, 3, 5, ["[K] and [N] do not broadcast"]),
    (HEAD + "z = x ** x", ParseError, 3, 10, ["exponent must be a number"]),
    (HEAD + "z = h + x\nh = sigmoid(x)", NamingError, 3, 5, ["used before it is defined (on line 4)"]),
    (HEAD + 'z = __import__("os")', UnknownOpError, 3, 5, ["unknown op '__import__'"]),
    (HEAD + "z = x.__class__", ParseError, 3, 5, ["attribute access .__class__ is not allowed"]),
    (HEAD + "z = (lambda: 1)()", ParseError, 3, 5, ["only ops may be called"]),
    (HEAD + "z = lambda: 1", ParseError, 3, 5, ["lambda is not allowed"]),
    (HEAD + "z = [a for a in x]", ParseError, 3, 5, ["comprehension is not allowed"]),
    (HEAD + "z = x[0]", ParseError, 3, 5, ["indexing is not allowed"]),
    (HEAD + "z = 'abc'", ParseError, 3, 5, ["not a number"]),
    (HEAD + "z = x +", ParseError, 3, None, ["syntax error"]),
    (HEAD + "import os", ParseError, 3, 1, ["expected 'name = expression'"]),
    (HEAD + "z = x // 2", ParseError, 3, 5, ["operator // is not allowed"]),
    (HEAD + "z = 2.0 ** 99999", ParseError, 3, 5, ["cannot compute the constant"]),
    (HEAD + "z = 1e999 * x", ParseError, 3, 5, ["not finite"]),
    ("input x[N, ]]\n", ParseError, 1, None, ["bad dim"]),
    ("input x[N] y[\n", ParseError, 1, 13, ["cannot read a declaration"]),
    ("input x[N, 2.5]\n", ParseError, 1, 12, ["bad dim '2.5'"]),
    ("input x[N]\nparam N\n", NamingError, 2, 7, ["used as a size"]),
    ("input _x[N]\n", NamingError, 1, 7, ["reserves"]),
    ("input\n", ParseError, 1, None, ["declares nothing"]),
    ("", ParseError, 1, 1, ["empty"]),  # located since the fuzzing of issue 7
    ("input x[N]\nL = sum(x)\x00\n", ParseError, 2, None, ["NUL"]),
    ("input x[A, B, C]\n", ShapeError, 1, 7, ["at most 2 dims"]),
    ("input x[N]\nL = dot(x, x.T)\n", ShapeError, 2, 5, ["dot takes two vectors"]),
])
def test_parse_errors(text, cls, line, col, words):
    e = err(text)
    assert isinstance(e, cls), f"{type(e).__name__}: {e}"
    assert e.line == line, str(e)
    if col is not None:
        assert e.col == col, str(e)
    for w in words:
        assert w in str(e), str(e)
    assert "\n" not in str(e)


def test_matmul_hint_suggests_the_transpose():
    e = err(HEAD + "z = W2 @ x")
    assert e.hint == "did you mean W2.T @ x?", str(e)
    assert e.node == "z" and "[N, K]" in str(e) and "[N]" in str(e)


def test_shape_error_names_node_and_both_shapes():
    e = err(HEAD + "z = W1 @ x + x")
    assert e.node == "z" and "[K]" in str(e) and "[N]" in str(e)


def test_cycle_is_named():
    G = nx.DiGraph()
    G.add_node("a", op="sigmoid", args=("b",))
    G.add_node("b", op="exp", args=("a",))
    G.add_edges_from([("a", "b"), ("b", "a")])
    with pytest.raises(CycleError) as e:
        gg.from_networkx(G)
    assert "a -> b -> a" in str(e.value) or "b -> a -> b" in str(e.value)


@pytest.mark.parametrize("mutate,cls,words", [
    (lambda G: G.nodes["z"].update(op="frobnicate"), UnknownOpError, ["unknown op 'frobnicate'"]),
    (lambda G: G.nodes["z"].update(args=("m",)), ArityError, ["add takes 2 operands, got 1"]),
    (lambda G: G.nodes["z"].update(args=("m", "nope")), NamingError, ["'nope' is not a node"]),
    (lambda G: G.remove_edge("b", "z"), GraphgradError, ["do not match args"]),
    (lambda G: G.nodes["b"].update(shape=("N",)), ShapeError, ["do not broadcast"]),
    (lambda G: G.nodes["z"].update(shape=("N",)), ShapeError, ["stored shape [N]"]),
])
def test_networkx_validation(mutate, cls, words):
    G = nx.DiGraph()
    G.add_node("W", op="param", args=(), shape=("K", "N"))
    G.add_node("x", op="input", args=(), shape=("N",))
    G.add_node("b", op="param", args=(), shape=("K",))
    G.add_node("m", op="matmul", args=("W", "x"))
    G.add_node("z", op="add", args=("m", "b"))
    G.add_edges_from([("W", "m"), ("x", "m"), ("m", "z"), ("b", "z")])
    gg.from_networkx(G)  # valid as built
    mutate(G)
    with pytest.raises(cls) as e:
        gg.from_networkx(G)
    for w in words:
        assert w in str(e.value)


@pytest.fixture
def vals(mlp_values):
    return dict(mlp_values)


def test_missing_input(mlp, vals):
    del vals["W1"]
    with pytest.raises(InputError, match="missing value for W1"):
        gg.evaluate(mlp, vals)


def test_unknown_input(mlp, vals):
    with pytest.raises(InputError, match="'W3' is not a declared name"):
        gg.evaluate(mlp, dict(vals, W3=1.0))
    with pytest.raises(InputError, match="not an input, param or const"):
        gg.evaluate(mlp, dict(vals, z=np.ones(2)))


def test_size_bound_twice(mlp, vals):
    with pytest.raises(SizeError) as e:
        gg.evaluate(mlp, dict(vals, b2=np.ones(4)))
    assert "size N is bound to two values: 3 (from x) and 4 (from b2)" in str(e.value)


def test_wrong_rank(mlp, vals):
    with pytest.raises(InputError, match=r"'W1' is declared \[K, N\] but was fed an array of shape \(6,\)"):
        gg.evaluate(mlp, dict(vals, W1=np.ones(6)))


def test_only_inputs_take_a_batch(mlp, vals):
    with pytest.raises(InputError, match="only inputs may carry a batch axis"):
        gg.evaluate(mlp, dict(vals, b1=np.ones((5, 2))))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(mlp, vals, bad):
    x = vals["x"].copy()
    x[1] = bad
    with pytest.raises(InputError, match=r"'x' is not finite at index \(1,\)"):
        gg.evaluate(mlp, dict(vals, x=x))
    out = gg.evaluate(mlp, dict(vals, x=x), allow_nonfinite=True)
    assert not np.isfinite(out["L"])


def test_mixed_float_types(mlp, vals):
    with pytest.raises(InputError, match="mixed float types"):
        gg.evaluate(mlp, dict(vals, x=vals["x"].astype(np.float32)))
    out = gg.evaluate(mlp, dict(vals, x=vals["x"].astype(np.float32)), dtype=np.float64)
    assert out["L"].dtype == np.float64


def test_of_not_scalar(mlp, vals):
    with pytest.raises(DerivationError) as e:
        gg.grad(mlp, "y", ["x"], vals)
    assert "not a scalar" in str(e.value) and "jacobian" in str(e.value)


def test_of_and_wrt_unknown(mlp, vals):
    with pytest.raises(NamingError):
        gg.grad(mlp, "Q", ["x"], vals)
    with pytest.raises(NamingError):
        gg.grad(mlp, "L", ["Q"], vals)


def test_not_an_array(mlp, vals):
    with pytest.raises(InputError, match="not a real number type"):
        gg.evaluate(mlp, dict(vals, x="abc"))


def test_builder_errors():
    m = gg.Graph()
    x = m.input("x", "N")
    with pytest.raises(NamingError):
        m.input("x", "N")
    with pytest.raises(UnknownOpError):
        m.apply("nope", x)
    with pytest.raises(NamingError, match="reserves"):
        x.named("_hidden")
    other = gg.Graph().input("y", "N")
    with pytest.raises(GraphgradError, match="another graph"):
        x + other


def test_load_errors(tmp_path):
    with pytest.raises(ParseError, match="cannot read"):
        gg.load(tmp_path / "missing.gg")
    bad = tmp_path / "latin1.gg"
    bad.write_bytes(b"input x[N]\nL = sum(x) # caf\xe9\n")
    with pytest.raises(ParseError) as e:
        gg.load(bad)
    assert e.value.line == 2 and "UTF-8" in str(e.value)


# ----------------------------------------------------------------------------- hand-built networkx graphs


def _small() -> nx.DiGraph:
    G = nx.DiGraph()
    G.add_node("x", op="input", shape=("N",))
    G.add_node("c", op="literal", value=2.0)
    G.add_node("y", op="mul", args=("c", "x"))
    G.add_node("L", op="sum", args=("y",))
    G.add_edges_from([("c", "y"), ("x", "y"), ("y", "L")])
    return G


@pytest.mark.parametrize("mutate,cls,node,words", [
    # shape is required on declared leaves: no silent scalar
    (lambda G: G.nodes["x"].pop("shape"), ShapeError, "x", ["input has no 'shape'", "() for a scalar"]),
    (lambda G: G.nodes["x"].update(shape=None), ShapeError, "x", ["no 'shape'"]),
    (lambda G: G.add_node("k", op="const"), ShapeError, "k", ["const has no 'shape'", "shape=("]),
    (lambda G: G.nodes["x"].update(shape=(-1,)), ShapeError, "x", ["dim must be >= 0"]),
    (lambda G: G.nodes["x"].update(shape=(2.5,)), ShapeError, "x", ["int or a size name", "float"]),
    (lambda G: G.nodes["x"].update(shape=(True,)), ShapeError, "x", ["int or a size name", "bool"]),
    (lambda G: G.nodes["x"].update(shape=("h 1",)), ShapeError, "x", ["size name", "not a valid name"]),
    (lambda G: G.nodes["x"].update(shape=("lambda",)), ShapeError, "x", ["size name", "not a valid name"]),
    (lambda G: G.nodes["x"].update(shape=("_N",)), ShapeError, "x", ["size name", "starts with '_'"]),
    (lambda G: G.nodes["x"].update(shape={"N"}), ShapeError, "x", ["must be a tuple of dims"]),
    (lambda G: G.nodes["x"].update(shape=(1, 2, 3)), ShapeError, "x", ["at most 2 dims"]),
    (lambda G: G.nodes["y"].update(shape=5), ShapeError, "y", ["stored shape [5]"]),
    (lambda G: G.nodes["c"].update(shape=(3,)), ShapeError, "c", ["literal is a scalar"]),
    (lambda G: G.add_node("N", op="input", shape=()), NamingError, "N", ["is a size name", "shape of 'x'"]),
    # literal values: real numbers, finite, as in model text
    (lambda G: G.nodes["c"].update(value=True), ShapeError, "c", ["real number", "bool"]),
    (lambda G: G.nodes["c"].update(value=np.bool_(True)), ShapeError, "c", ["real number"]),
    (lambda G: G.nodes["c"].update(value="2"), ShapeError, "c", ["real number", "str"]),
    (lambda G: G.nodes["c"].update(value=2j), ShapeError, "c", ["real number", "complex"]),
    (lambda G: G.nodes["c"].update(value=[2.0]), ShapeError, "c", ["real number", "list"]),
    (lambda G: G.nodes["c"].update(value=float("nan")), ShapeError, "c", ["not finite"]),
    (lambda G: G.nodes["c"].update(value=float("-inf")), ShapeError, "c", ["not finite"]),
    (lambda G: G.nodes["c"].update(value=10**400), ShapeError, "c", ["too large"]),
    (lambda G: G.nodes["c"].pop("value"), ShapeError, "c", ["literal has no 'value'"]),
    (lambda G: G.nodes["y"].update(value=[1]), GraphgradError, "y", ["only literals carry a 'value'"]),
    # ops and args
    (lambda G: G.nodes["L"].pop("op"), UnknownOpError, "L", ["no 'op'"]),
    (lambda G: G.nodes["L"].update(op="summ"), UnknownOpError, "L", ["unknown op 'summ'", "did you mean sum"]),
    (lambda G: G.nodes["L"].update(op=["sum"]), UnknownOpError, "L", ["unknown op ['sum']"]),
    (lambda G: G.nodes["L"].pop("args"), ArityError, "L", ["sum node has no 'args'", "args=("]),
    (lambda G: G.nodes["L"].update(args="y"), ArityError, "L", ["must be a tuple of node names", "str"]),
    (lambda G: G.nodes["L"].update(args=("y", "y")), ArityError, "L", ["sum takes 1 operand, got 2"]),
    (lambda G: G.nodes["L"].update(args=(["y"],)), NamingError, "L", ["operand 1 is list", "not a node name"]),
    (lambda G: G.nodes["L"].update(args=("q",)), NamingError, "L", ["operand 'q' is not a node"]),
    (lambda G: G.nodes["x"].update(args=("L",)), ArityError, "x", ["input takes 0 operands, got 1"]),
    (lambda G: G.add_edge("x", "L"), GraphgradError, "L", ["edges do not match args", "from 'x'"]),
    (lambda G: G.nodes["x"].update(anon=True), NamingError, "x", ["cannot be anonymous"]),
    (lambda G: G.nodes["L"].update(anon="no"), NamingError, "L", ["'anon' must be True or False"]),
    (lambda G: G.nodes["L"].update(line="3"), GraphgradError, "L", ["'line' must be"]),
    (lambda G: G.add_node("h 1", op="size"), NamingError, "h 1", ["valid size name"]),
])
def test_networkx_faults_are_named(mutate, cls, node, words):
    G = _small()
    gg.from_networkx(G)  # valid as built
    mutate(G)
    with pytest.raises(cls) as e:
        gg.from_networkx(G)
    assert e.value.node == node, str(e.value)
    assert e.value.hint, str(e.value)
    for w in words:
        assert w in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


class _NoRepr:
    def __repr__(self):
        raise RuntimeError("no repr")

    __str__ = __repr__


@pytest.mark.parametrize("name", [1, ("a", 1), 2.5, b"x", _NoRepr()])
def test_networkx_node_names_must_be_strings(name):
    G = _small()
    G.add_node(name, op="input", shape=())
    with pytest.raises(NamingError) as e:
        gg.from_networkx(G)
    assert "node names must be strings" in str(e.value) and type(name).__name__ in str(e.value)
    assert isinstance(e.value.node, str) and e.value.hint


def test_networkx_errors_stay_short_for_huge_names():
    G = _small()
    huge = "h" * 1_000_000
    G.add_node(huge, op="frobnicate")
    with pytest.raises(UnknownOpError) as e:
        gg.from_networkx(G)
    assert len(str(e.value)) < 500 and "…" in e.value.node
    G = _small()
    G.nodes["L"].update(op="q" * 1_000_000)
    with pytest.raises(UnknownOpError) as e:
        gg.from_networkx(G)
    assert len(str(e.value)) < 500
    G = _small()
    G.add_node("_t" + "9" * 5000, op="input", shape=())  # a generated-looking name, too long for int()
    G.add_node("_t²", op="input", shape=())
    gg.from_networkx(G).apply("neg", "x")


@pytest.mark.parametrize("bad", [nx.Graph(), nx.MultiDiGraph(), "input x", None])
def test_from_networkx_wants_a_digraph(bad):
    with pytest.raises(InputError, match="expected a networkx.DiGraph"):
        gg.from_networkx(bad)


# ----------------------------------------------------------------------------- line breaks that are not newlines


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85"])
@pytest.mark.parametrize("text,line,col", [
    ("input x\nL = sum(x)@", 2, 11),             # at the end of the last line
    ("input x\nL = sum(@x)\n", 2, 9),           # inside an expression
    ("input x@\nL = sum(x)\n", 1, 8),           # in a declaration
    ("input x\r\n\r\n# c@\r\nL = sum(x)", 3, 4),  # CRLF lines, in a comment
])
def test_odd_line_breaks_are_invalid_characters_at_their_place(char, text, line, col):
    text = text.replace("@", char)
    e = err(text)
    assert isinstance(e, ParseError)
    assert (e.line, e.col) == (line, col), str(e)
    assert f"U+{ord(char):04X}" in str(e) and e.hint
    real_lines = text.replace("\r\n", "\n").split("\n")  # the lines an editor shows
    assert e.line <= len(real_lines) and real_lines[e.line - 1][e.col - 1] == char
    assert "\n" not in str(e)


def test_line_numbers_count_newlines_crlf_and_cr():
    e = err("input x\r\nL = sum(x)\r\nM = y\r\n")
    assert (e.line, e.col) == (3, 5)
    e = err("input x\rL = sum(x)\rM = y")
    assert (e.line, e.col) == (3, 5)
    e = err("input x\nL = sum(x)\n\x00")
    assert (e.line, e.col) == (3, 1) and "NUL" in str(e)


def test_load_locates_bad_utf8_by_character(tmp_path):
    bad = tmp_path / "cr.gg"
    bad.write_bytes("input x[N]\rL = sum(x) # é".encode() + b"\xff")
    with pytest.raises(ParseError) as e:
        gg.load(bad)
    assert (e.value.line, e.value.col) == (2, 15), str(e.value)  # 14 characters (15 bytes) before it


@pytest.mark.parametrize("call,cls,words", [
    (lambda: gg.parse(b"input x"), ParseError, ["model text must be str, got bytes", "decode"]),
    (lambda: gg.parse("input x", source=3), ParseError, ["source must be str"]),
    (lambda: gg.load(3), ParseError, ["path of a model file", "int"]),
    (lambda: gg.load(None), ParseError, ["path of a model file", "NoneType"]),
])
def test_parse_and_load_check_argument_types(call, cls, words):
    with pytest.raises(cls) as e:
        call()
    for w in words:
        assert w in str(e.value), str(e.value)


def test_builder_checks_sizes_and_literals_as_from_networkx_does():
    m = gg.Graph()
    m.input("x", "N")
    with pytest.raises(NamingError, match="used as a size"):
        m.param("N")
    m.param("W", ("K", "N"))
    with pytest.raises(NamingError, match="cannot also be a size"):
        m.input("y", "W")
    with pytest.raises(ShapeError, match="size name") as e:
        m.input("z", ("h 1",))
    assert e.value.node == "z"
    with pytest.raises(ShapeError, match="real number"):
        m.literal(True)
    with pytest.raises(ShapeError, match="too large"):
        m.literal(10**400)
    with pytest.raises(NamingError):
        m.size("h 1")


def test_load_reads_regular_files_only_and_bounded(tmp_path):
    # a FIFO or /dev/zero would block or never end: refused before it is opened
    fifo = tmp_path / "pipe.gg"
    os.mkfifo(fifo)
    for path, what in ((fifo, "FIFO"), ("/dev/zero", "character device"), (tmp_path, "directory")):
        with pytest.raises(ParseError, match=what):
            gg.load(path)
    big = tmp_path / "big.gg"
    big.write_text("input x\n" + "# padding\n" * 120_000)
    with pytest.raises(ParseError, match="over the limit"):
        gg.load(big)
