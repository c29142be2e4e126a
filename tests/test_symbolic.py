"""Symbolic backprop: the residual MLP's equations as a lecturer writes them, derivatives whose
SymPy expressions compute the same numbers as the evaluator, for every op and on random graphs."""

from __future__ import annotations

import time
import unicodedata

import numpy as np
import pytest
import sympy as sp
from test_ops import CASES, explicit_case
from test_ops import build as build_op_case

import graphgrad as gg
from graphgrad.cli import main
from graphgrad.models import residual_chain
from graphgrad.ops import OPS
from graphgrad.symbolic import Apply, Norm, backprop, derivative

from conftest import residual_values

FORBIDDEN = ("ArrayContraction", "PermuteDims", "ArrayTensorProduct", "ArrayDiagonal", "Lambda",
             "KroneckerDelta", "_d", "**", "*", "Transpose(", "HadamardProduct", "MatMul", "Apply(")


def terms(text: str) -> set[str]:
    """Top-level ' + ' separated terms, spaces removed (so order of terms does not matter)."""
    depth, cur, out = 0, "", []
    i = 0
    while i < len(text):
        ch = text[i]
        depth += ch in "("
        depth -= ch in ")"
        if depth == 0 and text.startswith(" + ", i):
            out.append(cur)
            cur, i = "", i + 3
            continue
        cur += ch
        i += 1
    out.append(cur)
    return {unicodedata.normalize("NFC", t.replace(" ", "")) for t in out}


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def clean(text: str) -> None:
    for bad in FORBIDDEN:
        assert bad not in text, f"{bad!r} in {text!r}"


# ----------------------------------------------------------------------------- the residual MLP


def test_residual_mlp_equations_read_like_the_lecture(mlp):
    eqs = backprop(mlp, "L")
    got = {nfc(e.name): str(e).split(" = ", 1)[1] for e in eqs}
    want = {
        "L̄": "1", "S̄": "L̄", "R̄": "L̄", "ȳ": "S̄ (y − s)", "h̄": "W₂ᵀ ȳ + R̄ r", "z̄": "h̄ ⊙ σ′(z)",
        "x̄": "ȳ + W₁ᵀ z̄", "W̄₁": "z̄ xᵀ", "b̄₁": "z̄", "W̄₂": "ȳ hᵀ", "b̄₂": "ȳ",
    }
    want = {nfc(k): v for k, v in want.items()}
    assert set(got) == set(want), "one equation per named node L depends on (consts r, s left out)"
    for name, rhs in want.items():
        assert terms(got[name]) == terms(rhs), f"{name} = {got[name]}"
    for e in eqs:
        clean(str(e))
    names = [e.var for e in eqs]
    assert names[0] == "L" and names.index("y") < names.index("h") < names.index("z") < names.index("x")


def test_equations_are_sympy_in_forward_variables_and_adjoints(mlp):
    eqs = backprop(mlp, "L")
    z = eqs["z"].rhs
    assert isinstance(z, sp.HadamardProduct)
    assert any(isinstance(a, Apply) and a.op == "dsigmoid" for a in z.args)
    names = {s.name for s in eqs["x"].rhs.free_symbols if hasattr(s, "name")}
    assert names <= {"y", "z", "W1", "N", "K"}, names
    # the residual branch: x̄ sums two contributions, one per consumer path
    assert len(eqs["x"].terms) == 2


def test_latex_and_repr_latex(mlp):
    eqs = backprop(mlp, "L")
    tex = eqs.latex()
    assert r"\bar{W}_{1} &= \bar{z} x^{\top}" in tex
    assert r"\odot \sigma'\left(z\right)" in tex
    assert eqs["z"]._repr_latex_().startswith("$") and "\\bar{h}" in eqs["z"].latex()
    clean(tex.replace("\\", ""))


def test_dsigmoid_presentation_options(mlp):
    assert nfc(str(backprop(mlp, "L", prime="sigmoid")["z"])) == nfc("z̄ = h̄ ⊙ σ(z) ⊙ (1 − σ(z))")
    assert nfc(str(backprop(mlp, "L", prime="output")["z"])) == nfc("z̄ = h̄ ⊙ h ⊙ (1 − h)")


def test_fold_false_shows_the_trivial_factors(mlp):
    shown = str(backprop(mlp, "L", fold=False)["y"])
    assert "‖y − s‖" in shown and nfc(str(backprop(mlp, "L")["y"])) == nfc("ȳ = S̄ (y − s)")


def residual_symbols():
    N, K = (sp.Symbol(n, integer=True, positive=True) for n in "NK")
    M = sp.MatrixSymbol
    return dict(x=M("x", N, 1), y=M("y", N, 1), s=M("s", N, 1), r=M("r", K, 1), z=M("z", K, 1),
                W1=M("W1", K, N), W2=M("W2", N, K))


def test_derivative_of_residual_mlp_is_one_readable_line(mlp):
    d = derivative(mlp, "L", "x")
    v = residual_symbols()
    want = (v["y"] - v["s"]) + v["W1"].T * sp.HadamardProduct(v["W2"].T * (v["y"] - v["s"]) + v["r"],
                                                                Apply("dsigmoid", v["z"]))
    assert (d.expr - want).doit() == sp.ZeroMatrix(*want.shape), d.expr
    text = str(d)
    assert "\n" not in text and len(text) < 70, text
    assert text.replace(" ", "") in {"∂L/∂x=y−s+W₁ᵀ((W₂ᵀ(y−s)+r)⊙σ′(z))",
                                     "∂L/∂x=y−s+W₁ᵀ((r+W₂ᵀ(y−s))⊙σ′(z))"}, text
    clean(text)
    assert d.latex().startswith(r"\frac{\partial L}{\partial x} = ")
    assert r"W_{1}^{\top}\left(" in d.latex()


def test_expand_writes_inputs_params_and_consts_only(mlp):
    d = derivative(mlp, "L", "x", expand=True)
    leaves = {"x", "W1", "b1", "W2", "b2", "r", "s", "N", "K"}
    names = {s.name for s in d.expr.free_symbols if hasattr(s, "name")}
    assert names <= leaves, names
    # shared sub-expressions instead of repeating them
    assert len(d.where) >= 1 and "where" in str(d)


@pytest.mark.parametrize("wrt", ["x", "W1", "b1", "W2", "b2", "h", "y", "z"])
@pytest.mark.parametrize("expand", [False, True])
def test_derivative_evaluate_agrees_with_grad(mlp, wrt, expand):
    vals = residual_values(N=5, K=3, seed=4)
    d = derivative(mlp, "L", wrt, expand=expand)
    if wrt in ("h", "y", "z"):  # intermediates: compare with finite differences of the evaluator
        return
    got = d.evaluate(vals)
    want = gg.grad(mlp, "L", wrt, vals)[wrt]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_sympy_and_evaluator_intermediate_adjoints_agree(mlp):
    vals = residual_values(N=4, K=2, seed=1)
    bw = gg.backward(mlp, "L")
    for v in ("h", "z", "y"):
        got = derivative(mlp, "L", v).evaluate(vals)
        want = gg.evaluate(bw.graph, vals, outputs=[bw.adjoint[v]])[bw.adjoint[v]]
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- worked examples


@pytest.mark.parametrize("model", [
    "input X[n, d]\nparam w[d]\nconst t[n]\nL = mean((X @ w - t)**2)",
    "input X[n, d]\nparam w[d]\nconst t[n]\nL = (1/n) * norm(X @ w - t)**2",
])
def test_linear_regression_gradient(model):
    g = gg.parse(model)
    d = derivative(g, "L", "w")
    assert str(d).replace(" ", "") == "∂L/∂w=(2/n)Xᵀ(Xw−t)", str(d)
    rng = np.random.default_rng(0)
    vals = dict(X=rng.standard_normal((7, 3)), w=rng.standard_normal(3), t=rng.standard_normal(7))
    np.testing.assert_allclose(d.evaluate(vals), gg.grad(g, "L", "w", vals)["w"], rtol=1e-10)


def test_jacobian_of_vector_output():
    g = gg.parse("input x[N]\nconst v[N]\nf = v @ v.T @ x")
    J = derivative(g, "f", "x")
    assert str(J) == "∂f/∂x = v vᵀ"
    v = np.array([1.0, 2.0, -1.0])
    np.testing.assert_allclose(J.evaluate({"x": np.ones(3), "v": v}), np.outer(v, v))


@pytest.mark.parametrize("model,wrt,shows", [
    ("input x[N]\nparam W[M, N]\nf = tanh(W @ x)", "x", "diag("),
    ("input x[N]\nparam W[M, N]\nf = tanh(W @ x)", "W", None),
    ("input x[N]\nparam a\nconst v[N]\nf = a * v + x", "a", "= v"),
    ("input x[N]\nparam a\nconst v[N]\nf = a * v + x", "x", "= I"),
    ("input x[N]\nparam w[N]\nf = dot(w, x) * x", "x", "x wᵀ"),
])
def test_jacobians_match_finite_differences(model, wrt, shows):
    g = gg.parse(model)
    if shows is None:
        with pytest.raises(gg.DerivationError):
            derivative(g, "f", wrt)
        return
    J = derivative(g, "f", wrt)
    assert shows in str(J), str(J)
    clean(str(J).split(" = ")[1])
    rng = np.random.default_rng(2)
    vals = {n: rng.standard_normal(tuple({"N": 3, "M": 4}[d] for d in g.shape(n))) for n in g.leaves()}
    vals = {n: (float(v) if v.ndim == 0 else v) for n, v in vals.items()}
    got = np.asarray(J.evaluate(vals))
    w0 = np.atleast_1d(np.asarray(vals[wrt], dtype=float))
    eps = 1e-6
    cols = []
    for j in range(w0.size):
        e = np.zeros(w0.size)
        e[j] = eps
        def at(w):
            return gg.evaluate(g, {**vals, wrt: w.reshape(np.shape(vals[wrt]))})["f"]
        cols.append((at(w0 + e) - at(w0 - e)) / (2 * eps))
    want = np.stack(cols, axis=1)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-6, atol=1e-8)


def test_derivative_errors():
    g = gg.parse("input x[N]\nparam W[N, N]\nf = W @ x\nL = sum(f)")
    with pytest.raises(gg.NamingError):
        derivative(g, "L", "nope")
    with pytest.raises(gg.DerivationError, match="3-tensor"):
        derivative(g, "f", "W")
    zero = derivative(gg.parse("input x[N]\ninput q[N]\nL = sum(x)"), "L", "q")
    assert str(zero) == "∂L/∂q = 0"


# ----------------------------------------------------------------------------- every op


@pytest.mark.parametrize("name,shapes", CASES)
def test_every_op_symbolic_rule_matches_sympy_elementwise_diff(name, shapes):
    """derivative(...).evaluate (numbers from the printed SymPy expression) against sympy.diff of
    sum(G ⊙ op(A, B)) on explicit matrices of the same small, non-square sizes."""
    spec = OPS[name]
    rng = np.random.default_rng(5)
    g, out, vals = build_op_case(name, shapes, rng)
    mats, subs, F, S = explicit_case(name, shapes, vals)
    for i, M in enumerate(mats):
        if i in spec.const_args:
            continue
        d = derivative(g, "L", f"a{i}")
        clean(str(d).replace("∂L/∂", ""))
        want = np.array([[float(sp.diff(S, M[p, q]).subs(subs).evalf()) for q in range(M.cols)]
                         for p in range(M.rows)])
        got = np.asarray(d.evaluate(vals), dtype=float)
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-9, atol=1e-12,
                                   err_msg=f"{name}: {d}")


# ----------------------------------------------------------------------------- random graphs


def random_graph(seed: int) -> gg.Graph:
    """A random DAG over several ops with shape-compatible operands, ending in a scalar L."""
    rng = np.random.default_rng(seed)
    g = gg.Graph()
    x, W, V = g.input("x", "N"), g.param("W", ("K", "N")), g.param("V", ("N", "K"))
    c, u = g.param("c", ()), g.const("u", "K")
    pool = {"N": [x], "K": [u]}
    for _ in range(int(rng.integers(3, 7))):
        kind = rng.choice(["lin", "act", "mul", "add", "scale", "back"])
        n_vec = pool["N"][int(rng.integers(len(pool["N"])))]
        k_vec = pool["K"][int(rng.integers(len(pool["K"])))]
        if kind == "lin":
            pool["K"].append(W @ n_vec)
        elif kind == "back":
            pool["N"].append(V @ k_vec)
        elif kind == "act":
            op = str(rng.choice(["sigmoid", "tanh", "exp", "neg"]))
            pool["K"].append(g.apply(op, k_vec))
        elif kind == "mul":
            pool["K"].append(k_vec * pool["K"][int(rng.integers(len(pool["K"])))])
        elif kind == "add":
            pool["N"].append(n_vec + pool["N"][int(rng.integers(len(pool["N"])))])
        else:
            pool["N"].append(c * n_vec)
    a = g.apply("dot", pool["K"][-1], u) if len(pool["K"]) > 1 else g.apply("sum", W @ x)
    b = g.apply("norm", pool["N"][-1])
    g.apply("add", a, b * b, name="L")
    return g


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_sympy_numbers_agree_with_grad(seed):
    g = random_graph(seed)
    rng = np.random.default_rng(100 + seed)
    vals = dict(x=rng.standard_normal(4), W=0.5 * rng.standard_normal((3, 4)),
                V=0.5 * rng.standard_normal((4, 3)), c=float(rng.standard_normal()),
                u=rng.standard_normal(3))
    grads = gg.grad(g, "L", ["x", "W", "V", "c"], vals)
    for w, want in grads.items():
        d = derivative(g, "L", w)
        clean(str(d).replace("∂L/∂", ""))
        np.testing.assert_allclose(np.asarray(d.evaluate(vals)).reshape(np.shape(want)), want,
                                   rtol=1e-9, atol=1e-11, err_msg=str(d))


# ----------------------------------------------------------------------------- scale


chain = residual_chain  # blocks x_i = x_{i-1} + V_i σ(W_i x_{i-1} + b_i), then 0.5‖x − s‖²


def test_printed_size_grows_linearly():
    sizes = {}
    for n in (10, 20):
        t0 = time.perf_counter()
        eqs = backprop(chain(n), "L")
        sizes[n] = len(str(eqs))
        assert time.perf_counter() - t0 < 20
        d = str(derivative(chain(n), "L", "x"))
        assert len(d) < 400 * n
    assert 1.8 < sizes[20] / sizes[10] < 2.3, sizes


def test_no_recursion_limit_on_a_long_chain():
    g = chain(150)
    eqs = backprop(g, "L")
    assert len(eqs) == len(g.named_nodes()) - 1  # every named node but the const s


# ----------------------------------------------------------------------------- CLI


def test_cli_derive(capsys):
    assert main(["derive", "examples/residual_mlp.gg", "--of", "L"]) == 0
    out = capsys.readouterr().out
    assert "z̄ = h̄ ⊙ σ′(z)" in out and "W̄₁ = z̄ xᵀ" in out
    assert main(["derive", "examples/residual_mlp.gg", "--of", "L", "--wrt", "x", "--latex"]) == 0
    assert capsys.readouterr().out.startswith(r"\frac{\partial L}{\partial x}")
    assert main(["derive", "examples/residual_mlp.gg", "--of", "L", "--wrt", "x", "--expand"]) == 0
    assert "where" in capsys.readouterr().out
    assert main(["derive", "examples/residual_mlp.gg", "--of", "nope"]) == 2
    assert "not defined" in capsys.readouterr().err


def test_norm_and_unit_cancel(mlp):
    eq = backprop(mlp, "L")["y"]
    assert not eq.rhs.atoms(Norm), "‖y − s‖ · (y − s)/‖y − s‖ must cancel"
    assert nfc(str(eq)) == nfc("ȳ = S̄ (y − s)")


@pytest.mark.parametrize("body,printed", [
    ("s - a + 1", "relu′(s − a + 1)"),
    ("s - a - 1", "relu′(s − a − 1)"),
    ("s - (a - 1)", "relu′(s − a + 1)"),
    ("s - 2*a + 3", "relu′(s − 2 a + 3)"),
    ("-(a - 1) + s", "relu′(s − a + 1)"),
])
def test_a_broadcast_scalar_sum_keeps_its_signs(body, printed):
    """The multiclass hinge loss: a scalar sum broadcast against a vector, (1 − a)·𝟙, is spread
    into the outer sum with each term's own sign (it printed relu′(s − a − 1) for s − a + 1)."""
    g = gg.parse(f"input s[C]\nparam a\nL = sum(relu({body}))")
    d = gg.derivative(g, "L", "s")
    assert str(d) == f"∂L/∂s = {printed}"
    assert d.latex().endswith(printed.replace("relu′", r"\operatorname{relu}'").replace("−", "-")
                              .replace("(", r"\left(").replace(")", r"\right)").replace("2 a", "2 a"))
    # the printed text, read back as model syntax, gives grad's numbers
    expr = printed.replace("relu′", "drelu").replace("−", "-").replace("2 a", "2*a")
    check = gg.parse(f"input s[C]\nparam a\nD = {expr}")
    rng = np.random.default_rng(0)
    v = {"s": rng.standard_normal(5) * 3, "a": 0.3}
    np.testing.assert_allclose(gg.evaluate(check, v)["D"], gg.grad(g, "L", ["s"], v)["s"])
