"""The compiler: generated source, its optimisations, and agreement with graphgrad.value_and_grad."""

from __future__ import annotations

import importlib.util
import re
import tracemalloc

import numpy as np
import pytest

import graphgrad as gg
from graphgrad.cli import main
from graphgrad.compiler import compile, compile_forward, compile_vjp

from conftest import RESIDUAL, residual_values

ALL = ["x", "W1", "b1", "W2", "b2"]


def hand(x, W1, b1, W2, b2, r, s):
    """The residual MLP's loss (summed over the batch) and gradients, written by hand."""
    z = x @ W1.T + b1
    h = 1 / (1 + np.exp(-z))
    d = x + h @ W2.T + b2 - s
    L = 0.5 * np.sum(d * d) + np.sum(h @ r)
    dz = (d @ W2 + r) * h * (1 - h)
    return L, {"x": dz @ W1 + d, "W1": dz.T @ x, "b1": dz.sum(0), "W2": d.T @ h, "b2": d.sum(0)}


def lines(src: str) -> list[str]:
    return [ln.strip() for ln in src.splitlines()[1:]]


def assert_like_interpreter(result, g, wrt, v, value_rtol: float, rtol: float, atol: float = 0.0) -> tuple:
    """``result`` (a compiled ``(value, grads)``) equals the interpreter's, shapes and values (the
    value to ``value_rtol``, each gradient to ``rtol``/``atol``); returns the interpreter's."""
    value, grads = result
    value0, grads0 = gg.value_and_grad(g, "L", wrt, v, engine="interpret")
    assert np.shape(value) == np.shape(value0)
    np.testing.assert_allclose(value, value0, rtol=value_rtol)
    for k in grads0:
        assert np.shape(grads[k]) == np.shape(grads0[k]), k
        np.testing.assert_allclose(grads[k], grads0[k], rtol=rtol, atol=atol, err_msg=k)
    return value0, grads0


# ------------------------------------------------------------------ agreement


@pytest.mark.parametrize("B", [None, 1, 5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_residual_mlp_matches_value_and_grad(mlp, B, dtype):
    v = residual_values(4, 3, B=B, seed=3, dtype=dtype)
    value, grads = compile(mlp, "L", ALL + ["r", "s"])(**v)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert_like_interpreter((value, grads), mlp, ALL + ["r", "s"], v, value_rtol=tol, rtol=tol, atol=tol)
    assert all(grads[k].dtype == dtype for k in grads)


def test_reduce_sum_matches_the_hand_written_reference(mlp):
    v = residual_values(6, 5, B=7, seed=1)
    L, grads = compile(mlp, "L", ALL, reduce="sum")(**v)
    L0, grads0 = hand(**v)
    assert np.ndim(L) == 0
    np.testing.assert_allclose(L, L0, rtol=1e-13)
    for k in ALL:
        np.testing.assert_allclose(grads[k], grads0[k], rtol=1e-12, atol=1e-13, err_msg=k)


def test_results_are_bitwise_stable_and_inputs_untouched(mlp):
    v = residual_values(5, 4, B=3, seed=2)
    before = {k: a.copy() for k, a in v.items()}
    f = compile(mlp, "L", ALL, reduce="sum")
    L1, g1 = f(**v)
    g1["x"][...] = 0.0  # the caller owns what it gets back
    L2, g2 = f(**v)
    L3, g3 = compile(mlp, "L", ALL, reduce="sum")(**v)
    assert L1 == L2 == L3
    for k in ALL:
        assert np.array_equal(g2[k], g3[k]), k
        assert np.array_equal(v[k], before[k]), f"input {k} was overwritten"
    assert not np.shares_memory(g2["x"], g3["x"])


def test_specialize_gives_the_unchecked_generated_function(mlp):
    v = residual_values(4, 3, B=2, seed=6)
    f = compile(mlp, "L", ALL, reduce="sum")
    step = f.specialize(**v)
    L1, g1 = step(**v)
    L2, g2 = f(**v)
    assert L1 == L2 and all(np.array_equal(g1[k], g2[k]) for k in ALL)
    assert step.__name__ == "value_and_grad_L"


def test_column_fed_vector_and_lists(mlp):
    v = residual_values(3, 2, seed=4)
    f = compile(mlp, "L", ["x", "b1"])
    col = dict(v, x=v["x"].reshape(-1, 1), b1=v["b1"].tolist())
    _, g = f(**col)
    _, g0 = gg.value_and_grad(mlp, "L", ["x", "b1"], col, engine="interpret")
    assert g["x"].shape == (3, 1)
    np.testing.assert_allclose(g["x"], g0["x"], rtol=1e-13)
    np.testing.assert_allclose(g["b1"], g0["b1"], rtol=1e-13)


@pytest.mark.parametrize("N", [1, 3])
def test_row_vectors_fed_two_dimensional(N):
    # found by fuzzing: a row [1, N] is 1-D in the generated code, so a (1, N) feed is reshaped in and out
    g = gg.parse("input u[N]\ninput r[1, N]\nparam W[N, N]\nL = sum(u @ r + W @ tanh(u @ r)) + sum(r @ u)")
    rng = np.random.default_rng(N)
    v = dict(u=rng.standard_normal(N), r=rng.standard_normal((1, N)), W=rng.standard_normal((N, N)))
    value, grads = compile(g, "L", ["u", "r", "W"])(**v)
    assert_like_interpreter((value, grads), g, ["u", "r", "W"], v, value_rtol=1e-13, rtol=1e-12)
    assert all(grads[w].shape == np.shape(v[w]) for w in v)


def test_float32_stays_float32_where_the_code_makes_arrays_from_numbers():
    # found by the float32 property: np.broadcast_to(0.5, shape) is float64
    g = gg.parse("input x[N]\nparam W[K, N]\nparam c\nL = 0.5 * sum(W @ x) + mean(x) + c")
    v = dict(x=np.ones(3, np.float32), W=np.ones((2, 3), np.float32), c=np.float32(2.0))
    for B in (None, 2):
        vb = dict(v, x=np.ones((B, 3), np.float32)) if B else v
        value, grads = compile(g, "L", ["x", "W", "c"])(**vb)
        assert np.asarray(value).dtype == np.float32
        assert {k: a.dtype for k, a in grads.items()} == dict.fromkeys(grads, np.dtype(np.float32))
        _, ref = gg.value_and_grad(g, "L", ["x", "W", "c"], vb, engine="interpret")
        for w in ref:
            np.testing.assert_allclose(grads[w], ref[w], rtol=1e-6, err_msg=w)


def test_errors_are_graphgrad_errors(mlp):
    f = compile(mlp, "L", ["x"])
    v = residual_values(3, 2)
    with pytest.raises(gg.GraphgradError, match="unknown input"):
        f(**v, q=1.0)
    with pytest.raises(gg.GraphgradError, match="missing"):
        f(**{k: a for k, a in v.items() if k != "W1"})
    with pytest.raises(gg.GraphgradError, match="mixed float types"):
        f(**dict(v, x=v["x"].astype(np.float32)))
    with pytest.raises(gg.GraphgradError):
        compile(mlp, "nope", ["x"])
    with pytest.raises(gg.GraphgradError, match="cannot be batched"):
        compile(mlp, "L", ["x"]).program(batched=["W1"])


# ------------------------------------------------------------------ random graphs

SHAPES = {"n": ("N",), "k": ("K",), "m": ("K", "N"), "s": ()}


def random_graph(seed: int) -> gg.Graph:
    """A random DAG of 6-14 ops over an input x[N], params W[K, N], a[N], c[K], and a scalar L."""
    rng = np.random.default_rng(seed)
    g = gg.Graph()
    pool = {"n": [g.input("x", "N"), g.param("a", "N")], "k": [g.param("c", "K")],
            "m": [g.param("W", ("K", "N"))], "s": []}
    pick = lambda kind: pool[kind][rng.integers(len(pool[kind]))]
    for _ in range(rng.integers(6, 15)):
        kind = rng.choice(["n", "k", "m"] + (["s"] if pool["s"] else []))
        op = rng.choice(["add", "sub", "mul", "tanh", "sigmoid", "mv", "mtv", "dot", "norm2",
                         "outer", "scale", "sum", "neg"])
        if op in ("add", "sub", "mul"):
            out, k = gg.apply(op, pick(kind), pick(kind)), kind
        elif op in ("tanh", "sigmoid", "neg"):
            out, k = gg.apply(op, pick(kind)), kind
        elif op == "mv":
            out, k = pick("m") @ pick("n"), "k"
        elif op == "mtv" and pool["k"]:
            out, k = pick("m").T @ pick("k"), "n"
        elif op == "outer" and pool["k"]:
            out, k = pick("k") @ pick("n").T, "m"
        elif op == "dot":
            v = rng.choice(["n", "k"]) if pool["k"] else "n"
            out, k = gg.dot(pick(v), pick(v)), "s"
        elif op == "norm2":
            out, k = gg.norm(pick(kind)) ** 2, "s"
        elif op == "sum":
            out, k = gg.sum(pick(kind)), "s"
        elif op == "scale" and pool["s"]:
            out, k = pick("s") * pick(kind), kind
        else:
            continue
        pool[k].append(out)
    terms = [gg.sum(pool[k][-1]) if k != "s" else pool[k][-1] for k in pool if pool[k]]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    total.named("L")
    return g


def random_values(g: gg.Graph, seed: int, B: int | None) -> dict:
    rng = np.random.default_rng(seed)
    sizes = {"N": 3, "K": 2}
    out = {}
    for n in g.leaves():
        shape = tuple(sizes[d] for d in g.shape(n))
        if B and g.op(n) == "input":
            shape = (B, *shape)
        out[n] = 0.5 * rng.standard_normal(shape)
    return out


@pytest.mark.parametrize("seed", range(30))
def test_random_graphs_agree_with_the_evaluator(seed):
    g = random_graph(seed)
    wrt = g.leaves()
    for B in (None, 3):
        v = random_values(g, seed, B)
        value0, grads0 = gg.value_and_grad(g, "L", wrt, v, engine="interpret")
        value, grads = compile(g, "L", wrt)(**v)
        np.testing.assert_allclose(value, value0, rtol=1e-11, atol=1e-12)
        for k in wrt:
            assert grads[k].shape == grads0[k].shape, k
            np.testing.assert_allclose(grads[k], grads0[k], rtol=1e-10, atol=1e-12, err_msg=f"{k} B={B}")
        if B:
            L, gs = compile(g, "L", wrt, reduce="sum")(**v)
            np.testing.assert_allclose(L, np.sum(value0), rtol=1e-11, atol=1e-12)
            for k in wrt:
                np.testing.assert_allclose(gs[k], grads0[k], rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ the optimisations, in the source


def test_residual_mlp_source_reads_like_the_hand_written_reference(mlp):
    src = compile(mlp, "L", ALL, reduce="sum", batched=["x"]).source
    body = lines(src)
    for want in ["z = x @ W1.T", "z += b1", "y = h @ W2.T", "y += x", "y += b2",
                 "h_bar = y_bar @ W2", "h_bar += r", "W2_bar = y_bar.T @ h", "W1_bar = z_bar.T @ x",
                 "b1_bar = z_bar.sum(axis=0)", "b2_bar = y_bar.sum(axis=0)", "x_bar = z_bar @ W1",
                 "x_bar += y_bar"]:
        assert want in body, f"{want!r} not in\n{src}"
    assert "for " not in src and "einsum" not in src and "outer" not in src
    assert len(body) < 40


def test_dead_code_elimination(mlp):
    src = compile(mlp, "L", ["W1"]).source
    assert "W1_bar" in src
    for gone in ("W2_bar", "b2_bar", "x_bar", "s_bar", "r_bar"):
        assert gone not in src
    fwd = compile_forward(mlp, ["h"]).source
    assert "h = " in fwd and "y" not in fwd and "W2" not in fwd
    params = re.search(r"\((.*)\)", fwd.splitlines()[0]).group(1)
    assert params == "x, W1, b1"


def test_sigmoid_is_computed_once_and_reused_in_its_derivative(mlp):
    src = compile(mlp, "L", ["W1"], batched=["x"]).source
    assert src.count("_sigmoid(") == 1
    assert "dsigmoid" not in src and "logaddexp" not in src
    assert "z_bar = 1.0 - h" in lines(src) and "z_bar *= h" in lines(src)


def test_norm_times_unit_is_the_vector_itself_also_inside_a_scalar_product():
    # the adjoint of c‖r‖² is unit(r) ⊙ (c · 2‖r‖): the code must read 2c r, with no norm or division
    g = gg.parse("input X[n, d]\ninput t[n]\nparam w[d]\nL = (1/n) * norm(X @ w - t)**2")
    src = compile(g, "L", ["w"]).source
    assert "_unit" not in src and "sqrt" not in src, src
    assert re.search(r"_bar = \w+ \* 2\.0 \* \w+$", src, re.M), src
    rng = np.random.default_rng(5)
    v = dict(X=rng.standard_normal((4, 3)), t=rng.standard_normal(4), w=np.zeros(3))
    for w in (np.zeros(3), rng.standard_normal(3)):  # also where it is 0 (unit(0) = 0)
        v["w"] = w
        r = v["X"] @ w - v["t"]
        np.testing.assert_allclose(compile(g, "L", ["w"])(**v)[1]["w"], (2 / 4) * v["X"].T @ r, rtol=1e-13)


def test_common_subexpressions_are_merged():
    g = gg.parse("input x[N]\nparam W[K, N]\na = tanh(W @ x)\nb = tanh(W @ x)\nL = dot(a, b)")
    src = compile(g, "L", ["W"]).source
    assert src.count("@") == 2 + src.count("W.T @")  # one forward product; the rest are adjoint ones
    assert src.count("np.tanh(") == 1
    v = {"x": np.arange(3.0), "W": np.ones((2, 3)) / 4}
    np.testing.assert_allclose(compile(g, "L", ["W"])(**v)[1]["W"], gg.grad(g, "L", ["W"], v, engine="interpret")["W"])


@pytest.mark.parametrize("batched", [False, True])
def test_matrix_chain_is_reassociated(batched):
    g = gg.parse("input x[N]\nparam v[N]\ny = (v @ v.T) @ x\nL = sum(y * y)")
    f = compile(g, "L", ["x", "v"])
    src = f.program(["x"] if batched else [], {"N": 500}).source
    assert "outer" not in src and "..., :, None]" not in src, src  # no N x N matrix: v (vᵀ x)
    rng = np.random.default_rng(0)
    v = {"x": rng.standard_normal((4, 5) if batched else 5), "v": rng.standard_normal(5)}
    assert_like_interpreter(f(**v), g, ["x", "v"], v, value_rtol=1e-12, rtol=1e-12)


def test_chain_order_follows_the_shapes():
    g = gg.parse("param A[P, Q]\nparam Bm[Q, R]\nparam C[R, S]\nD = A @ Bm @ C\nL = sum(D)")
    f = compile_forward(g, ["D"])
    left = f.program((), {"P": 2, "Q": 50, "R": 50, "S": 50}).source   # (A Bm) C is cheaper
    right = f.program((), {"P": 50, "Q": 50, "R": 50, "S": 2}).source  # A (Bm C) is cheaper
    assert "A @ Bm" in left and "Bm @ C" in right
    rng = np.random.default_rng(1)
    v = {"A": rng.standard_normal((50, 50)), "Bm": rng.standard_normal((50, 50)),
         "C": rng.standard_normal((50, 2))}
    np.testing.assert_allclose(f(**v)["D"], v["A"] @ v["Bm"] @ v["C"], rtol=1e-12)


def test_batch_is_one_gemm_and_parameter_gradients_sum_inside_the_product():
    g = gg.parse("input x[N]\nparam W[K, N]\nh = tanh(W @ x)\nL = sum(h)")
    src = compile(g, "L", ["W"], batched=["x"]).source
    assert "x @ W.T" in src and "for " not in src
    assert re.search(r"W_bar = \w+\.T @ x", src), src  # Σ_b h̄_b x_bᵀ as one GEMM, no (B, K, N) array


def test_memory_intermediates_released_and_adjoints_accumulated_in_place(mlp):
    src = compile(mlp, "L", ALL, reduce="sum", batched=["x"]).source
    assert "del z" in src and "del h" in src
    assert "x_bar += y_bar" in src
    v = residual_values(200, 300, B=64, seed=0)
    f = compile(mlp, "L", ALL, reduce="sum")
    f(**v)

    def peak(fn):
        tracemalloc.start()
        fn(**v)
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p

    assert peak(f) <= 1.1 * peak(hand)


# ------------------------------------------------------------------ variants


def test_vjp_of_a_vector_output(mlp):
    g = gg.parse("input x[N]\nparam W[K, N]\ny = tanh(W @ x)")
    f = compile_vjp(g, "y", ["x", "W"])
    rng = np.random.default_rng(5)
    v = {"x": rng.standard_normal(3), "W": rng.standard_normal((2, 3))}
    u = rng.standard_normal(2)
    y, grads = f(**v, **{f.seed: u})
    t = np.tanh(v["W"] @ v["x"])
    np.testing.assert_allclose(y, t)
    np.testing.assert_allclose(grads["x"], v["W"].T @ (u * (1 - t * t)), rtol=1e-13)
    np.testing.assert_allclose(grads["W"], np.outer(u * (1 - t * t), v["x"]), rtol=1e-13)


def test_forward_matches_evaluate(mlp):
    v = residual_values(4, 3, B=2, seed=9)
    out = compile_forward(mlp)(**v)
    ref = gg.evaluate(mlp, v)
    assert set(out) == set(ref)
    for k in ref:
        np.testing.assert_allclose(out[k], ref[k], rtol=1e-13, err_msg=k)


def test_lazy_export():
    assert gg.compile is compile


# ------------------------------------------------------------------ CLI


def test_cli_codegen_writes_a_standalone_module(tmp_path, mlp):
    out = tmp_path / "grad_fn.py"
    assert main(["codegen", str(RESIDUAL), "--of", "L", "--wrt", "x", "W1", "-o", str(out)]) == 0
    text = out.read_text()
    imports = {ln for ln in text.splitlines() if ln.startswith(("import ", "from "))}
    assert imports == {"import numpy as np"}
    spec = importlib.util.spec_from_file_location("grad_fn", out)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    v = residual_values(3, 2, seed=8)
    value, grads = mod.value_and_grad_L(**v)
    value0, grads0 = gg.value_and_grad(mlp, "L", ["x", "W1"], v, engine="interpret")
    np.testing.assert_allclose(value, value0, rtol=1e-13)
    np.testing.assert_allclose(grads["W1"], grads0["W1"], rtol=1e-13)
    # the module's docstring says how to call it: the signature and each argument's layout
    doc = mod.__doc__
    assert 'value_and_grad_L(x, W1, b1, W2, b2, r, s) -> (L, {"x": x_bar, "W1": W1_bar})' in doc
    layout = {ln.split()[0]: ln.split()[1:] for ln in doc.splitlines() if ln.startswith("    ")}
    assert layout["x"] == ["(N,)", "input"] and layout["W1"] == ["(K,", "N)", "param"]
    assert layout["s"] == ["(N,)", "const"]


def test_cli_codegen_batched_and_errors(capsys):
    assert main(["codegen", str(RESIDUAL), "--of", "L", "--wrt", "W1", "--batch", "--reduce", "sum"]) == 0
    assert "W1_bar = z_bar.T @ x" in capsys.readouterr().out
    assert main(["codegen", str(RESIDUAL), "--wrt", "W1"]) == 2
    assert "--of" in capsys.readouterr().err
    assert main(["codegen", str(RESIDUAL), "--of", "L", "--batch", "W1"]) == 2


# ------------------------------------------------------------------ an op added to the table only


@pytest.fixture
def with_ops(install_ops):
    """Two ops added to the table only (conftest's ``install_ops`` installs them)."""
    import dataclasses

    from graphgrad import ops

    softplus = ops.OpSpec(name="softplus", arity=1, shape=ops.same_shape, numpy=lambda x: np.logaddexp(0.0, x),
                          sympy=lambda t: gg_sympy.log(1 + gg_sympy.exp(t)), elementwise=True,
                          render=ops.Render("softplus", r"\operatorname{softplus}"), doc="log(1 + exp(x))")
    sumsq = ops.OpSpec(name="sumsq", arity=1, shape=ops.scalar_shape,
                       numpy=lambda x: np.sum(x * x, axis=(-2, -1), keepdims=True),
                       sympy=lambda x: x.T * x, vjp=lambda b, out, g, x: (b.mul(g, b.mul(b.lit(2.0), x)),),
                       matrix=lambda c, args, shapes, out: c.total(c.hadamard(args[0], args[0])),
                       render=ops.Render("sumsq", "sumsq"), doc="sum of squares")
    return install_ops, softplus, sumsq, dataclasses.replace


gg_sympy = pytest.importorskip("sympy")


def _new_op_graph():
    g = gg.Graph()
    x, W, c = g.input("x", "N"), g.param("W", ("K", "N")), g.param("c", "K")
    h = gg.apply("softplus", W @ x + c, name="h")
    (gg.apply("sumsq", h) + gg.sum(gg.apply("softplus", c) * h)).named("L")
    return g


@pytest.mark.parametrize("B", [None, 4])
def test_an_op_without_code_compiles_by_calling_its_kernel(with_ops, B):
    install, softplus, sumsq, _ = with_ops
    install(softplus, sumsq)
    g = _new_op_graph()
    rng = np.random.default_rng(2)
    v = {"x": rng.standard_normal((B, 3) if B else 3), "W": rng.standard_normal((2, 3)),
         "c": rng.standard_normal(2)}
    f = compile(g, "L", ["x", "W", "c"])
    assert_like_interpreter(f(**v), g, ["x", "W", "c"], v, value_rtol=1e-12, rtol=1e-10, atol=1e-12)
    assert "_op_softplus(" in f.source and "_matrix_call(_op_sumsq" in f.source
    with pytest.raises(gg.GraphgradError, match="softplus, sumsq has no NumPy code entry"):
        f.module_source()


def test_an_op_with_a_code_entry_compiles_to_it_and_to_a_standalone_module(with_ops, tmp_path):
    from graphgrad.ops import call

    install, softplus, sumsq, replace = with_ops
    install(replace(softplus, code=call("np.logaddexp(0.0, {a})", "np.logaddexp(0.0, {a}, out={a})")),
            replace(sumsq, code=lambda e, args, node: f"np.vdot({args[0]}, {args[0]})"))
    g = _new_op_graph()
    rng = np.random.default_rng(3)
    v = {"x": rng.standard_normal(3), "W": rng.standard_normal((2, 3)), "c": rng.standard_normal(2)}
    f = compile(g, "L", ["x", "W", "c"])
    value0, _ = assert_like_interpreter(f(**v), g, ["x", "W", "c"], v, value_rtol=1e-12, rtol=1e-10, atol=1e-12)
    assert "np.logaddexp(0.0, " in f.source and "_op_" not in f.source
    path = tmp_path / "m.py"
    path.write_text(f.module_source())
    spec = importlib.util.spec_from_file_location("m", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    value1, grads1 = getattr(mod, f.name)(**v)
    np.testing.assert_allclose(value1, value0, rtol=1e-12)


@pytest.mark.parametrize("code", [None, lambda e, args, node: f"np.logaddexp(0.0, {args[0]})"],
                         ids=["kernel", "code-ignoring-out"])
def test_a_new_element_wise_op_is_not_written_in_place_unless_its_code_says_how(with_ops, code):
    install, softplus, _, replace = with_ops
    install(replace(softplus, code=code))
    g = gg.Graph()
    x, W = g.input("x", "N"), g.param("W", ("K", "N"))
    gg.sum(gg.apply("softplus", W @ x) * 2.0).named("L")  # W @ x is a dead temporary after softplus
    v = {"x": np.array([1.0, -2.0, 0.5]), "W": np.arange(6.0).reshape(2, 3) / 4}
    f = compile_forward(g, ["L"])
    np.testing.assert_allclose(f(**v)["L"], gg.evaluate(g, v)["L"], rtol=1e-14)
    assert "out=" not in f.source and "softplus" not in f.source.replace("_op_softplus", "")
