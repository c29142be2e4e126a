"""Every op of the table, the same checks: shape rule vs kernel, kernel vs SymPy, VJP vs central
differences and vs SymPy's element-wise differentiation, at small non-square sizes, both dtypes."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import sympy as sp

import graphgrad as gg
from graphgrad.ops import OPS, OpSpec, matrix_elementwise, same_shape, table
from graphgrad.shapes import is_scalar, matrix_form
from graphgrad.symbolic import Converter, evaluate_expr

# operand shapes per op; non-square so that a missing transpose cannot hide
BINARY_EW = [((2, 3), (2, 3)), ((3,), ()), ((), (2, 3)), ((3,), (3, 4)), ((1, 4), (3, 4))]
UNARY = [((2, 3),), ((3,),), ((),)]
SHAPES = {
    "add": BINARY_EW, "sub": BINARY_EW, "mul": BINARY_EW, "div": BINARY_EW,
    "matmul": [((2, 3), (3, 4)), ((2, 3), (3,)), ((3,), (1, 4)), ((1, 3), (3,))],
    "transpose": [((2, 3),), ((3,),)],
    "pow": [((2, 3), 3.0), ((3,), 2.5), ((2, 3), -1.0)],
    "norm": [((2, 3),), ((3,),)], "unit": [((2, 3),), ((3,),)],
    "dot": [((3,), (3,))],
    "sum": [((2, 3),), ((3,),)], "mean": [((2, 3),), ((3,),)],
    "sum_to": [((2, 3), (2,)), ((2, 3), ()), ((2, 3), (1, 3))],
    "expand": [((), (2, 3)), ((2,), (2, 3))],
}


def _cases():
    for name, spec in OPS.items():
        for shapes in SHAPES.get(name, UNARY if spec.arity == 1 else BINARY_EW):
            yield pytest.param(name, shapes, id=f"{name}-{'-'.join(map(str, shapes))}")


CASES = list(_cases())


def sample(spec, shape, rng, dtype=np.float64):
    lo, hi = spec.domain
    x = rng.uniform(lo, hi, matrix_form(shape))
    for k in spec.kinks:  # keep away from kinks (relu at 0)
        x = np.where(np.abs(x - k) < 0.1, x + 0.3, x)
    return x.reshape(shape).astype(dtype)


def build(name, shapes, rng, dtype=np.float64):
    """A graph L = sum(G ⊙ op(a0, a1)) with its values."""
    spec = OPS[name]
    g = gg.Graph()
    args, vals = [], {}
    for i, s in enumerate(shapes):
        if i in spec.const_args:
            args.append(g.literal(s))
        else:
            args.append(g.const(f"a{i}", s))
            vals[f"a{i}"] = sample(spec, s, rng, dtype)
    out = g.apply(name, *args)
    G = g.const("G", out.shape)
    g.apply("sum", g.apply("mul", G, out), name="L")
    vals["G"] = rng.standard_normal(out.shape).astype(dtype) if out.shape else dtype(rng.standard_normal())
    return g, out, vals


def explicit_case(name, shapes, vals):
    """Explicit SymPy matrices of symbols for the operands, their values, F = op(A, B) and
    S = sum(G ⊙ F) with the fed G: what sympy.diff differentiates entry by entry."""
    spec = OPS[name]
    mats, subs = [], {}
    for i, s in enumerate(shapes):
        if i in spec.const_args:
            mats.append(sp.Matrix([[sp.Rational(str(s))]]))
            continue
        r, c = matrix_form(s)
        M = sp.Matrix(r, c, lambda p, q, i=i: sp.Symbol(f"a{i}_{p}_{q}", real=True))
        mats.append(M)
        v = np.asarray(vals[f"a{i}"]).reshape(r, c)
        subs.update({M[p, q]: v[p, q] for p in range(r) for q in range(c)})
    F = spec.explicit(*mats)
    Gv = np.asarray(vals["G"]).reshape(F.shape)
    S = sum(Gv[p, q] * F[p, q] for p in range(F.rows) for q in range(F.cols))
    return mats, subs, F, S


@pytest.mark.parametrize("name,shapes", CASES)
def test_shape_rule_matches_kernel(name, shapes):
    rng = np.random.default_rng(1)
    g, out, vals = build(name, shapes, rng)
    value = gg.evaluate(g, vals, outputs=[out.name])[out.name]
    assert value.shape == tuple(out.shape)


@pytest.mark.parametrize("engine", ["interpret", "compiled"])
@pytest.mark.parametrize("name,shapes", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vjp_matches_central_differences(name, shapes, dtype, engine):
    rng = np.random.default_rng(2)
    g, out, vals = build(name, shapes, rng, dtype)
    wrt = [k for k in vals if k != "G"]
    grads = gg.grad(g, "L", wrt, vals, engine=engine)
    vals64 = {k: np.asarray(v, np.float64) for k, v in vals.items()}
    eps = 1e-6
    for w in wrt:
        assert grads[w].dtype == dtype, "no silent up- or down-cast"
        assert grads[w].shape == np.shape(vals[w])
        v = rng.standard_normal(np.shape(vals[w]))

        def f(x, w=w):
            return float(gg.evaluate(g, {**vals64, w: x}, outputs=["L"])["L"])

        fd = (f(vals64[w] + eps * v) - f(vals64[w] - eps * v)) / (2 * eps)
        an = float(np.sum(grads[w].astype(np.float64) * v))
        tol = dict(rtol=1e-6, atol=1e-8) if dtype == np.float64 else dict(rtol=2e-3, atol=1e-3)
        assert np.isclose(an, fd, **tol), f"{name} d/d{w}: analytic {an} vs central difference {fd}"


@pytest.mark.parametrize("name,shapes", CASES)
def test_kernel_and_vjp_match_sympy(name, shapes):
    """Kernel vs SymPy's forward form, and every adjoint entry vs sympy.diff of sum(G ⊙ f(A))."""
    spec = OPS[name]
    rng = np.random.default_rng(3)
    g, out, vals = build(name, shapes, rng)
    mats, subs, F, S = explicit_case(name, shapes, vals)
    fv = gg.evaluate(g, vals, outputs=[out.name])[out.name]
    np.testing.assert_allclose(np.array(F.subs(subs).evalf(), dtype=float).reshape(np.shape(fv)), fv,
                               rtol=1e-10, atol=1e-12)
    grads = gg.grad(g, "L", [k for k in vals if k != "G"], vals)
    for i, M in enumerate(mats):
        if i in spec.const_args:
            continue
        want = np.array([[float(sp.diff(S, M[p, q]).subs(subs).evalf()) for q in range(M.cols)]
                         for p in range(M.rows)])
        np.testing.assert_allclose(grads[f"a{i}"].reshape(want.shape), want, rtol=1e-9, atol=1e-12,
                                   err_msg=f"{name}: adjoint of operand {i}")


def test_table_entries_are_complete():
    for name, spec in OPS.items():
        assert spec.vjp is not None, name
        assert spec.render.symbol, name
        assert spec.doc, name
        assert name in SHAPES or spec.arity == 1 or spec.elementwise, f"add sample shapes for {name}"


def test_every_op_has_a_matrix_form():
    """The symbolic back end converts every op through its table entry (``OpSpec.matrix``); only
    element-wise unary ops may use the shared default ``name(x)``."""
    for name, spec in OPS.items():
        assert callable(spec.matrix), f"{name} has no matrix form"
        if isinstance(spec.matrix, functools.partial) and spec.matrix.func is matrix_elementwise:
            assert spec.elementwise and spec.arity == 1, f"{name} is not element-wise unary"
            assert spec.matrix.args == (name,), f"{name}'s default matrix form applies {spec.matrix.args}"
    defaults = {n for n, s in OPS.items() if isinstance(s.matrix, functools.partial)}
    assert {"sigmoid", "tanh", "exp", "dsigmoid"} <= defaults
    assert "neg" not in defaults  # -x, not neg(x)


def test_of_output_formulas_equal_the_op():
    """op(x) = g(f(x)) for every op that declares ``of_output = (f, g)``: the compiler and the
    printers compute σ′(z) as h ⊙ (1 − h) from this entry, so it must be the op itself."""
    x = sp.Symbol("x", real=True)
    declared = {name: spec.of_output for name, spec in OPS.items() if spec.of_output}
    assert {"dsigmoid", "dtanh"} <= set(declared)
    for name, (f, g) in declared.items():
        assert OPS[f].elementwise and OPS[name].elementwise, name
        assert sp.simplify(OPS[name].sympy(x) - g(OPS[f].sympy(x))) == 0, name
        xs = np.linspace(-3, 3, 13)
        np.testing.assert_allclose(OPS[name].numpy(xs), g(OPS[f].numpy(xs)), rtol=1e-12, atol=1e-15)


def test_table_refuses_an_op_without_a_matrix_form():
    def twice(x):
        return 2 * x

    plain = OpSpec(name="twice", arity=1, shape=same_shape, numpy=twice, sympy=twice,
                   vjp=lambda b, out, g, x: (b.mul(b.lit(2.0), g),))
    with pytest.raises(ValueError, match="matrix form"):
        table(plain)
    unary = OpSpec(name="softplus", arity=1, shape=same_shape, numpy=lambda x: np.logaddexp(0.0, x),
                   sympy=lambda t: sp.log(1 + sp.exp(t)), elementwise=True)
    form = table(unary)["softplus"].matrix
    assert form.func is matrix_elementwise and form.args == ("softplus",)


@pytest.mark.parametrize("fold", [True, False])
@pytest.mark.parametrize("name,shapes", CASES)
def test_matrix_form_matches_kernel(name, shapes, fold):
    """The op's SymPy matrix form, computed from the expression itself (lambdify), equals its kernel."""
    rng = np.random.default_rng(4)
    g, out, vals = build(name, shapes, rng)
    expr = Converter(g, fold=fold)(out.name)
    env = {}
    for n, v in vals.items():
        shape = g.shape(n)
        env[n] = float(v) if is_scalar(shape) else np.asarray(v).reshape(matrix_form(shape))
    got = np.asarray(evaluate_expr(expr, env, g), dtype=float)
    want = gg.evaluate(g, vals, outputs=[out.name])[out.name]
    np.testing.assert_allclose(np.broadcast_to(got, matrix_form(out.shape)).reshape(np.shape(want)), want,
                               rtol=1e-10, atol=1e-12, err_msg=f"{name}: {expr}")


@pytest.mark.parametrize("name,shapes", CASES)
def test_code_entry_standalone_matches_the_interpreter(name, shapes):
    """Every op's ``code`` entry (OpSpec.code): the op's value and gradients, compiled to a
    standalone module (NumPy only, no graphgrad), equal the interpreter's."""
    rng = np.random.default_rng(5)
    g, out, vals = build(name, shapes, rng)
    wrt = [k for k in vals if k != "G"]
    f = gg.compile(g, "L", wrt)
    ns: dict = {}
    exec(compile(f.module_source(), "<module>", "exec"), ns)  # raises where an op lacks a code entry
    args = []
    for n in f.leaves:
        v = np.asarray(vals[n])
        args.append(v.reshape(-1) if v.ndim == 2 and 1 in v.shape[:1] else v)  # rows [1, N] are 1-D there
    value, grads = ns[f.name](*args)
    ref_value, ref = gg.value_and_grad(g, "L", wrt, vals, engine="interpret")
    np.testing.assert_allclose(value, ref_value, rtol=1e-12, atol=1e-12)
    for w in wrt:
        np.testing.assert_allclose(np.reshape(grads[w], np.shape(ref[w])), ref[w], rtol=1e-10, atol=1e-12, err_msg=w)
    forward = gg.compile_forward(g, [out.name])(**{k: vals[k] for k in gg.compile_forward(g, [out.name]).leaves})
    np.testing.assert_allclose(forward[out.name], gg.evaluate(g, vals, outputs=[out.name])[out.name], rtol=1e-12)


# ----------------------------------------------------------------------------- the facts the back ends read


def _operands(name, rng):
    spec = OPS[name]
    shapes = SHAPES.get(name, UNARY if spec.arity == 1 else BINARY_EW)[0]
    return [np.full(matrix_form(()), s) if i in spec.const_args else sample(spec, s, rng).reshape(matrix_form(s))
            for i, s in enumerate(shapes)]


@pytest.mark.parametrize("name", [n for n, s in OPS.items() if s.linear])
def test_declared_linearity_holds(name):
    """OpSpec.linear / jointly_linear (where the compiler pushes a batch sum): f is additive and
    homogeneous in each declared operand (in all of them at once when jointly linear)."""
    spec, rng = OPS[name], np.random.default_rng(7)
    xs, ys = _operands(name, rng), _operands(name, rng)
    groups = [list(spec.linear)] if spec.jointly_linear else [[i] for i in spec.linear]
    for group in groups:
        mix = [x + y if i in group else x for i, (x, y) in enumerate(zip(xs, ys))]
        other = [y if i in group else x for i, (x, y) in enumerate(zip(xs, ys))]
        scaled = [2.5 * x if i in group else x for i, x in enumerate(xs)]
        np.testing.assert_allclose(spec.numpy(*mix), spec.numpy(*xs) + spec.numpy(*other), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(spec.numpy(*scaled), 2.5 * spec.numpy(*xs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", [n for n, s in OPS.items() if s.arity == 2 and not s.const_args])
def test_declared_commutativity_holds(name):
    """OpSpec.commutative (drawn unordered; updated in place into either operand) is true, and a
    binary op that does not declare it does not commute on these operands."""
    spec, rng = OPS[name], np.random.default_rng(8)
    lo, hi = spec.domain
    a, b = (rng.uniform(lo, hi, (3, 3)) for _ in range(2))
    swapped = np.allclose(spec.numpy(a, b), spec.numpy(b, a))
    assert swapped == spec.commutative, f"{name}: commutes {swapped}, declared {spec.commutative}"


@pytest.mark.parametrize("name", [n for n, s in OPS.items() if s.elementwise and s.arity == 1])
def test_declared_zero_derivative_holds(name):
    """OpSpec.zero_derivative (no adjoint passes on) exactly where central differences are 0."""
    spec, rng = OPS[name], np.random.default_rng(9)
    x = sample(spec, (5,), rng).reshape(5, 1)
    fd = (spec.numpy(x + 1e-6) - spec.numpy(x - 1e-6)) / 2e-6
    assert bool(np.allclose(fd, 0.0, atol=1e-9)) == spec.zero_derivative, name


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "div", "pow", "mean"])
def test_nonfinite_hint_reaches_the_error(name):
    """OpSpec.nonfinite is the hint of the interpreter's error where the op makes inf or nan."""
    text = {"exp": "input x\nL = exp(x)", "log": "input x\nL = log(x)", "sqrt": "input x\nL = sqrt(x)",
            "div": "input x\nL = 1 / x", "pow": "input x\nL = x ** 0.5", "mean": "input x[N]\nL = mean(x)"}[name]
    value = {"exp": 1000.0, "log": -1.0, "sqrt": -1.0, "div": 0.0, "pow": -1.0, "mean": np.zeros(0)}[name]
    with pytest.raises(gg.InputError) as e:
        gg.evaluate(gg.parse(text), {"x": value})
    assert OPS[name].nonfinite and OPS[name].nonfinite in str(e.value)



@pytest.mark.parametrize("proto,cls", [("VJPBuilder", "graphgrad.autodiff:Emitter"),
                                        ("MatrixBuilder", "graphgrad.symbolic:Converter"),
                                        ("CodeSite", "graphgrad.compiler:Site")])
def test_builders_provide_what_the_protocols_promise(proto, cls):
    """The typed Protocols of graphgrad.ops.spec, which rules are written against, are met by the
    real builders (a method renamed in one place fails here)."""
    import importlib

    from graphgrad.ops import spec as spec_module

    p = getattr(spec_module, proto)
    mod, name = cls.split(":")
    real = getattr(importlib.import_module(mod), name)
    wanted = [n for n, v in vars(p).items() if callable(v) and not n.startswith("_")]
    wanted += list(getattr(p, "__annotations__", {}))
    if real.__name__ == "Site":  # attributes are set per instance
        real = real(["V"], [False], "V", False)
    missing = [n for n in wanted if not hasattr(real, n)]
    assert wanted and not missing, f"{name} lacks {missing}"
