"""The interpreter and the compiled engine, held together.

graphgrad computes every number twice: the interpreter (``gg.evaluate``, ``engine="interpret"``)
runs each op's kernel in order and checks every value; the compiler (``gg.compile``,
``gg.compile_forward``, ``gg.compile_vjp``, ``engine="compiled"`` and the default ``"auto"``)
generates NumPy source. The interpreter is the reference (it agrees with JAX, see
tests/test_differential.py); these tests hold the compiler to it.

The contract tested, from docs/api.md and docs/compiler.md:

* Where the interpreter gives finite results, every compiled entry point gives the same values
  and gradients (float64: rtol = atol = 1e-9; float32: 1e-4), of the same shapes and dtypes, with
  the same keys in the same order, including gradients with respect to intermediates.
* Where the interpreter raises a ``GraphgradError`` for a bad model or request, the compiled
  engine raises the same subclass.
* Where the interpreter raises an ``InputError`` because a value came out non-finite (``inf``/
  ``nan`` from finite inputs; ``allow_nonfinite=True`` would give IEEE values instead):
  ``engine="compiled"`` falls back to the interpreter for any non-finite result (docs/api.md:
  "when the compiled result is not finite (the interpreter then names the node)"), so it raises
  ``InputError`` too, or returns *finite* results that agree with the IEEE values wherever those
  are finite (the compiled code may avoid an overflow in an intermediate). ``gg.compile`` and
  ``gg.compile_forward`` called directly check inputs only ("non-finite values are not looked
  for"): they raise ``InputError``, or return the interpreter's ``allow_nonfinite=True`` (IEEE)
  values wherever those are finite. Where the IEEE value is inf or nan anything goes: the
  compiler re-associates products, and (s·a)·b is not s·(a·b) when s is nan and a is empty.
* Any other exception from either engine (``TypeError``, ``ZeroDivisionError``, ...) is a bug.

Properties: (a) on random small typed expressions (``strategies.typed_models``: every public op,
precedence-sensitive text, sizes as values, 0-size dims, scalars/columns/rows broadcast into
matrices, named intermediates), with and without a batch axis; (b) on the whole random models of
``strategies.models``, what tests/test_props.py does not already check (float32 gradients of
intermediates and forward values, the VJP, the standalone module and ``specialize``);
(c) one regression test per disagreement the adversarial fuzzer reported.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

import graphgrad as gg
from graphgrad.errors import GraphgradError, InputError
from graphgrad.shapes import normalize

from strategies import OP_CLASSES, Model, TypedModel, examples, models, typed_models

TOL64 = dict(rtol=1e-9, atol=1e-9)
TOL32 = dict(rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- helpers


@dataclass
class Outcome:
    """What one entry point did: returned ``value``, or raised the GraphgradError ``error``."""

    label: str
    value: Any = None
    error: GraphgradError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        return f"{self.label}: " + (f"raised {type(self.error).__name__}: {self.error}" if self.error else "returned")


def attempt(label: str, fn: Callable[[], Any]) -> Outcome:
    """Run ``fn``; a GraphgradError is an outcome, any other exception a failure naming ``label``."""
    try:
        return Outcome(label, value=fn())
    except GraphgradError as e:
        return Outcome(label, error=e)
    except Exception as e:  # noqa: BLE001 - that is the point: nothing else may escape
        raise AssertionError(f"{label} raised {type(e).__name__} (not a GraphgradError): {e}") from e


def assert_array_agrees(got: Any, ref: Any, what: str, tol: Mapping, finite_only: bool = False) -> None:
    """Same shape, same dtype, same values; with ``finite_only``, the same values wherever ``ref``
    is finite (where it is inf or nan, anything goes: see the module docstring)."""
    g, r = np.asarray(got), np.asarray(ref)
    assert g.shape == r.shape, f"{what}: shape {g.shape}, the interpreter's {r.shape}"
    assert g.dtype == r.dtype, f"{what}: dtype {g.dtype}, the interpreter's {r.dtype}"
    if finite_only:
        keep = np.isfinite(r)
        g, r = g[keep], r[keep]
    np.testing.assert_allclose(g, r, equal_nan=True, err_msg=what, **tol)


def assert_dict_agrees(got: Mapping, ref: Mapping, what: str, tol: Mapping, finite_only: bool = False,
                       ordered: bool = True) -> None:
    keys_got, keys_ref = list(got), list(ref)
    if ordered:
        assert keys_got == keys_ref, f"{what}: keys {keys_got}, the interpreter's {keys_ref}"
    else:
        assert set(keys_got) == set(keys_ref), f"{what}: keys {sorted(keys_got)}, the interpreter's {sorted(keys_ref)}"
    for k in ref:
        assert_array_agrees(got[k], ref[k], f"{what}[{k!r}]", tol, finite_only)


def assert_all_finite(result: tuple, what: str) -> None:
    value, grads = result
    assert np.all(np.isfinite(value)), f"{what}: non-finite value {value} (it falls back to the interpreter)"
    for w, g in grads.items():
        assert np.all(np.isfinite(g)), f"{what}: non-finite gradient wrt {w!r} (it falls back to the interpreter)"


def is_nonfinite_error(ieee: Outcome, ref: Outcome) -> bool:
    """Whether the interpreter raised only because a value came out non-finite."""
    return isinstance(ref.error, InputError) and ieee.ok


def check_same_error(got: Outcome, ref: Outcome, valid: bool) -> None:
    assert not valid, (f"{ref} -- on a valid model with every leaf fed, only a non-finite value "
                       "may stop the interpreter (the reference itself is wrong here)")
    assert not got.ok, f"{ref}, but {got}"
    assert type(got.error) is type(ref.error), f"{ref}, but {got}"


def check_forward(graph: gg.Graph, inputs: Mapping, tol: Mapping = TOL64, valid: bool = True) -> None:
    """compile_forward against evaluate, on every named node. ``valid``: the model is well formed
    and every leaf is fed, so the interpreter may raise only for a non-finite value."""
    ref = attempt("evaluate", lambda: gg.evaluate(graph, inputs))
    got = attempt("compile_forward", lambda: gg.compile_forward(graph)(**inputs))
    if ref.ok:
        assert got.ok, f"evaluate returned, but {got}"
        assert_dict_agrees(got.value, ref.value, "compile_forward", tol, ordered=False)
        return
    ieee = attempt("evaluate(allow_nonfinite=True)", lambda: gg.evaluate(graph, inputs, allow_nonfinite=True))
    if is_nonfinite_error(ieee, ref):
        if got.ok:
            assert_dict_agrees(got.value, ieee.value, "compile_forward (IEEE values)", tol, finite_only=True,
                               ordered=False)
        else:
            assert isinstance(got.error, InputError), f"{ref}, but {got}"
        return
    check_same_error(got, ref, valid)


def check_grad(graph: gg.Graph, of: str, wrt: list[str], inputs: Mapping, tol: Mapping = TOL64,
               valid: bool = True) -> None:
    """value_and_grad on both engines, and gg.compile called directly, against the interpreter."""
    ref = attempt("interpreter", lambda: gg.value_and_grad(graph, of, wrt, inputs, engine="interpret"))
    compiled = attempt("engine='compiled'", lambda: gg.value_and_grad(graph, of, wrt, inputs, engine="compiled"))
    default = attempt("engine='auto' (gg.grad)", lambda: gg.grad(graph, of, wrt, inputs))
    direct = attempt("gg.compile", lambda: call_compiled(gg.compile(graph, of, wrt), inputs))
    if ref.ok:
        value, grads = ref.value
        for got in (compiled, direct):
            assert got.ok, f"the interpreter returned, but {got}"
            assert_array_agrees(got.value[0], value, f"{got.label}: the value of {of}", tol)
            assert_dict_agrees(got.value[1], grads, f"{got.label}: gradients", tol)
        assert default.ok, f"the interpreter returned, but {default}"
        assert_dict_agrees(default.value, grads, f"{default.label}: gradients", tol)
        return
    ieee = attempt("interpreter(allow_nonfinite=True)",
                   lambda: gg.value_and_grad(graph, of, wrt, inputs, engine="interpret", allow_nonfinite=True))
    if is_nonfinite_error(ieee, ref):
        value, grads = ieee.value
        for got in (compiled, default):
            if not got.ok:
                assert isinstance(got.error, InputError), f"{ref}, but {got}"
        if compiled.ok:
            assert_all_finite(compiled.value, compiled.label)
            assert_array_agrees(compiled.value[0], value, f"{compiled.label}: the value of {of}", tol, finite_only=True)
            assert_dict_agrees(compiled.value[1], grads, f"{compiled.label}: gradients", tol, finite_only=True)
        if direct.ok:
            assert_array_agrees(direct.value[0], value, f"{direct.label}: the value of {of} (IEEE)", tol,
                                finite_only=True)
            # past a non-finite value of `of` a gradient has no meaning (the subgradient 0 of ‖nan‖
            # that unit() gives, against ‖t‖ ⊙ unit(t) = t): gradients are compared where of is finite
            if np.all(np.isfinite(value)):
                assert_dict_agrees(direct.value[1], grads, f"{direct.label}: gradients", tol, finite_only=True)
        else:
            assert isinstance(direct.error, InputError), f"{ref}, but {direct}"
        return
    for got in (compiled, default, direct):
        check_same_error(got, ref, valid)


def call_compiled(f: Any, inputs: Mapping) -> Any:
    """Call a compiled function with the inputs it takes (a declared leaf that ``of`` and ``wrt``
    do not need is not one of its arguments; see test_compile_ignores_unneeded_leaves)."""
    return f(**{k: v for k, v in inputs.items() if k in f.leaves})


def storage(graph: gg.Graph, name: str, value: Any, batched: bool) -> np.ndarray:
    """A fed value in the compiled code's storage layout: vectors and rows 1-D, batch first."""
    v = np.asarray(value)
    shape = normalize(graph.shape(name))
    lead = v.shape[:1] if batched else ()
    if len(shape) == 0:
        return v.reshape(lead)
    if len(shape) == 1 or shape[0] == 1:  # a column [N] or a row [1, N]
        return v.reshape(lead + (-1,))
    return v


# ----------------------------------------------------------------------------- (a) typed expressions


@settings(max_examples=examples(40))
@given(typed_models(batch=None))
def test_typed_models_evaluate_as_drawn(m: TypedModel) -> None:
    """The generator's own values (op kernels, as drawn) are what the parsed text evaluates to:
    the text says what the generator meant (a check of tests/strategies.py, not of the engines)."""
    got = gg.evaluate(m.graph, m.inputs, allow_nonfinite=True)
    for n, v in m.expected.items():
        np.testing.assert_allclose(got[n], v, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=n)


@settings(max_examples=examples(100))
@given(typed_models(batch=None))
def test_typed_forward_engines_agree(m: TypedModel) -> None:
    check_forward(m.graph, m.inputs)


@settings(max_examples=examples(120))
@given(typed_models(batch=None))
def test_typed_grad_engines_agree(m: TypedModel) -> None:
    """Gradients with respect to a random subset of named nodes (leaves, intermediates, aliases, L)."""
    check_grad(m.graph, m.of, m.wrt, m.inputs)


def test_typed_models_draw_every_public_op() -> None:
    """Over a fixed set of draws, every public op of the op table appears."""
    seen: set[str] = set()

    @settings(max_examples=200, database=None, derandomize=True)
    @given(typed_models())
    def collect(m: TypedModel) -> None:
        seen.update(m.ops)

    assert not OP_CLASSES["other"], f"tests/strategies.py cannot draw {OP_CLASSES['other']}: teach _TypedBuilder"
    collect()
    assert set(gg.ops.PUBLIC_OPS) <= seen, sorted(set(gg.ops.PUBLIC_OPS) - seen)


# ----------------------------------------------------------------------------- (b) whole models
# (tests/test_props.py already holds compile/compile_forward against the interpreter in float64,
# batched or not, gradients of every named node in float64, and gg.compile's float32 gradients
# of leaves; what follows covers the rest)


def named_variables(graph: gg.Graph) -> list[str]:
    return [n for n in graph.named_nodes() if graph.op(n) not in ("literal", "size")]


@settings(max_examples=examples(20))
@given(models(batch=None, max_ops=8))
def test_models_float32_engines_agree(m: Model) -> None:
    """float32 in: every named node's value and gradient (leaves and intermediates), both engines."""
    f32 = {k: np.asarray(v, dtype=np.float32) for k, v in m.inputs.items()}
    check_forward(m.graph, f32, TOL32)
    ref = gg.evaluate(m.graph, f32)
    assert all(np.asarray(v).dtype == np.float32 for v in ref.values())
    check_grad(m.graph, "L", named_variables(m.graph), f32, TOL32)


@settings(max_examples=examples(20))
@given(models(batch=None, max_ops=8))
def test_models_vjp_engines_agree(m: Model) -> None:
    """compile_vjp of a named non-scalar node against gg.vjp (the interpreter's reverse sweep)."""
    g = m.graph
    outs = [n for n in named_variables(g) if g.op(n) not in ("input", "param", "const") and g.shape(n) != ()]
    y = outs[0] if outs else "L"
    vals = gg.evaluate(g, m.inputs)
    rng = np.random.default_rng(len(y))
    ct = rng.standard_normal(np.shape(vals[y]))
    wrt = list(m.inputs)
    ref = gg.vjp(g, y, wrt, m.inputs, ct)
    f = gg.compile_vjp(g, y, wrt)
    # (the cotangent is always fed: f(**inputs, <of>_bar=v), docs/compiler.md)
    value, grads = f(**{k: v for k, v in m.inputs.items() if k in f.leaves}, **{f.seed: ct})
    assert_array_agrees(value, vals[y], f"compile_vjp: the value of {y}", TOL64)
    assert_dict_agrees(grads, ref, "compile_vjp: gradients", TOL64)


@settings(max_examples=examples(20))
@given(models(batch=None, max_ops=8))
def test_models_standalone_module_and_specialize(m: Model) -> None:
    """The module of ``module_source()`` (exec'd with nothing but what it imports) and the
    function of ``specialize()``, called with storage-layout arrays, give the interpreter's numbers."""
    g = m.graph
    wrt = named_variables(g)
    value, grads = gg.value_and_grad(g, "L", wrt, m.inputs, engine="interpret")
    f = gg.compile(g, "L", wrt)
    f(**m.inputs)  # the signature of these inputs (batched or not) is the one module_source writes
    src = f.module_source("model.gg")
    ast.parse(src)
    ns: dict[str, Any] = {}
    exec(compile(src, "<standalone>", "exec"), ns)  # noqa: S102 - our own generated module
    fn = ns[f.name]
    assert list(inspect.signature(fn).parameters) == f.leaves
    args = [storage(g, n, m.inputs[n], bool(m.batch) and g.op(n) == "input") for n in f.leaves]
    step = f.specialize(**m.inputs)
    for label, call in (("standalone module", fn), ("specialize", step)):
        v, gr = call(*[np.copy(a) for a in args])
        np.testing.assert_allclose(v, value, err_msg=f"{label}: the value of L", **TOL64)
        assert list(gr) == wrt, f"{label}: keys {list(gr)}"
        for w in wrt:
            ref = np.asarray(grads[w])
            got = np.asarray(gr[w])
            assert got.size == ref.size, f"{label}: grad wrt {w} has {got.size} entries, not {ref.size}"
            np.testing.assert_allclose(got.reshape(ref.shape), ref, err_msg=f"{label}: grad wrt {w}", **TOL64)


# ----------------------------------------------------------------------------- contract


def test_compile_ignores_unneeded_leaves() -> None:
    """``f = gg.compile(g, of, wrt); f(**inputs)`` returns what ``value_and_grad(g, of, wrt, inputs)``
    returns (docs/compiler.md), also when inputs hold a declared leaf that of and wrt do not need:
    value_and_grad ignores it, as the interpreter does."""
    g = gg.parse("input x[N]\nconst c[K]\nh = tanh(c)\nL = sum(x * x)")
    inputs = {"x": np.array([1.0, -2.0]), "c": np.array([0.5, 0.25, 1.0])}
    value, grads = gg.value_and_grad(g, "L", ["x"], inputs, engine="interpret")
    assert gg.value_and_grad(g, "L", ["x"], inputs, engine="compiled")[0] == value
    out = attempt("gg.compile", lambda: gg.compile(g, "L", ["x"])(**inputs))
    assert out.ok, str(out)
    assert_array_agrees(out.value[0], value, "gg.compile: the value", TOL64)
    assert_dict_agrees(out.value[1], grads, "gg.compile: gradients", TOL64)



def test_compiled_engine_refuses_interpreter_only_options() -> None:
    """engine='compiled' insists on the compiled code: sizes=, dtype=, allow_nonfinite= are refused."""
    g = gg.parse("input x[N]\nL = sum(exp(x))")
    x = np.array([0.5, 1.0])
    for kw in (dict(allow_nonfinite=True), dict(dtype=np.float64), dict(sizes={"N": 2})):
        with pytest.raises(GraphgradError):
            gg.value_and_grad(g, "L", ["x"], {"x": x}, engine="compiled", **kw)
        gg.value_and_grad(g, "L", ["x"], {"x": x}, **kw)  # auto: the interpreter serves


def test_compiled_engine_nonfinite_result_is_the_interpreters_error() -> None:
    """A non-finite result from finite inputs: every engine raises the InputError naming the node."""
    g = gg.parse("input x[N]\nh = exp(x)\nL = sum(h)")
    x = np.array([1000.0, 1.0])
    for engine in ("interpret", "compiled", "auto"):
        with pytest.raises(InputError) as e:
            gg.value_and_grad(g, "L", ["x", "h"], {"x": x}, engine=engine)
        assert e.value.node == "h", engine


# ----------------------------------------------------------------------------- (c) the reported cases
# Expected values are worked out by hand (NumPy for the arithmetic), never taken from an engine.


def every_engine(graph: gg.Graph, inputs: Mapping, wrt: list[str], value: Any, grads: Mapping,
                 tol: Mapping = TOL64, of: str = "L") -> None:
    """Each entry point gives ``value`` and ``grads`` (shapes and dtypes as expected too)."""
    want = {w: np.asarray(grads[w], dtype=np.result_type(np.asarray(inputs[w]) if w in inputs else 0.0))
            for w in wrt}
    results = {
        "evaluate": (gg.evaluate(graph, inputs)[of], None),
        "compile_forward": (attempt("compile_forward", lambda: gg.compile_forward(graph)(**inputs)), None),
    }
    fwd = results["compile_forward"][0]
    assert fwd.ok, str(fwd)
    results["compile_forward"] = (fwd.value[of], None)
    for engine in ("interpret", "compiled", "auto"):
        out = attempt(f"engine={engine!r}", lambda engine=engine: gg.value_and_grad(graph, of, wrt, inputs, engine=engine))
        assert out.ok, str(out)
        results[f"engine={engine!r}"] = out.value
    out = attempt("gg.compile", lambda: call_compiled(gg.compile(graph, of, wrt), inputs))
    assert out.ok, str(out)
    results["gg.compile"] = out.value
    dtype = np.result_type(*(np.asarray(v) for v in inputs.values()))
    for label, (v, gr) in results.items():
        assert_array_agrees(v, np.asarray(value, dtype=dtype), f"{label}: the value of {of}", tol)
        if gr is not None:
            assert_dict_agrees(gr, want, f"{label}: gradients", tol)


def test_regression_parenthesised_negative_base() -> None:
    """``L = (-a) ** 2`` at a = 1.5 is 2.25 (the compiled line ``L = -a ** 2.0`` gave -2.25)."""
    g = gg.parse("input a\nL = (-a) ** 2")
    every_engine(g, {"a": np.array(1.5)}, ["a"], 2.25, {"a": np.array(3.0)})  # d/da a² = 2a


@pytest.mark.parametrize("text, f, df", [
    ("L = -a ** 2", lambda a: -(a**2), lambda a: -2 * a),  # ** binds tighter than unary minus
    ("L = (-a) ** 3", lambda a: -(a**3), lambda a: -3 * a**2),
    ("L = -(a ** 2)", lambda a: -(a**2), lambda a: -2 * a),
    ("L = (a - 2.0) ** 2", lambda a: (a - 2) ** 2, lambda a: 2 * (a - 2)),
    ("L = 2.0 - (a - 1.0)", lambda a: 3 - a, lambda a: -1.0),
    ("L = 1.0 / (a * 2.0)", lambda a: 1 / (2 * a), lambda a: -1 / (2 * a**2)),
    ("L = (a ** 2) ** 3", lambda a: a**6, lambda a: 6 * a**5),
    ("L = a ** -1", lambda a: 1 / a, lambda a: -1 / a**2),
    ("L = -(-a) ** 2 * a", lambda a: -(a**3), lambda a: -3 * a**2),
    ("L = exp(-a) ** 0.5", lambda a: np.exp(-a / 2), lambda a: -0.5 * np.exp(-a / 2)),
])
def test_regression_precedence(text: str, f: Callable, df: Callable) -> None:
    """The same family: text whose value depends on where the parentheses are."""
    g = gg.parse("input a\n" + text)
    a = 1.5
    every_engine(g, {"a": np.array(a)}, ["a"], f(a), {"a": np.array(df(a))})


@pytest.mark.parametrize("p, value", [(1.5, 0.0), (-1.5, 1.0)])
def test_regression_drelu_of_a_negation(p: float, value: float) -> None:
    """``L = drelu(-p)``: relu′(−p) is 1 for p < 0, else 0; its own derivative is 0 (it raised)."""
    g = gg.parse("param p\nL = drelu(-p)")
    every_engine(g, {"p": np.array(p)}, ["p"], value, {"p": np.array(0.0)})


@pytest.mark.parametrize("c, d", [(0.5, 1.0), (-0.5, 0.0)])
def test_regression_drelu_of_a_number(c: float, d: float) -> None:
    """``drelu(0.5)`` of a literal is the number 1.0 (AttributeError: 'bool' has no astype)."""
    g = gg.parse(f"input x[N]\nL = sum(x) * drelu({c})")
    x = np.array([1.0, 2.0, -0.5])
    every_engine(g, {"x": x}, ["x"], d * 2.5, {"x": np.full(3, d)})


def test_regression_size_used_as_a_value_under_a_name() -> None:
    """``h = N``; L = sum(x) + h + tanh(h) at N = 4: ∂L/∂h = 1 + (1 − tanh²(4)) = 1.00134...,
    a float (the compiled engine gave the integer array(1))."""
    g = gg.parse("input x[N]\nh = N\nL = sum(x) + h + tanh(h)")
    x = np.array([0.1, -0.2, 0.3, 0.4])
    L = x.sum() + 4 + np.tanh(4.0)
    dh = 1 + (1 - np.tanh(4.0) ** 2)
    assert abs(dh - 1.00134) < 1e-5
    every_engine(g, {"x": x}, ["h", "x"], L, {"h": np.array(dh), "x": np.ones(4)})
    fwd = gg.compile_forward(g)(x=x)
    assert np.asarray(fwd["h"]).dtype == np.float64 and float(fwd["h"]) == 4.0


@pytest.mark.parametrize("text, inputs", [
    ("input x[N]\nL = mean(x)", {"x": np.zeros(0)}),
    ("input X[N, K]\nL = mean(X)", {"X": np.zeros((3, 0))}),
    ("input x[N]\nparam w\nL = w * sum(x) + mean(x)", {"x": np.zeros(0), "w": np.array(2.0)}),
])
def test_regression_mean_of_nothing(text: str, inputs: dict) -> None:
    """``mean`` over an empty axis is 0/0: the interpreter's InputError naming the node, on every
    engine (the compiled code raised ZeroDivisionError); called directly, the compiled code may
    return the IEEE nan instead."""
    g = gg.parse(text)
    wrt = list(inputs)
    for engine in ("interpret", "compiled", "auto"):
        with pytest.raises(InputError, match="mean"):
            gg.value_and_grad(g, "L", wrt, inputs, engine=engine)
    with pytest.raises(InputError, match="mean"):
        gg.evaluate(g, inputs)
    value, grads = gg.value_and_grad(g, "L", wrt, inputs, engine="interpret", allow_nonfinite=True)
    assert np.isnan(value)
    direct = attempt("gg.compile", lambda: gg.compile(g, "L", wrt)(**inputs))
    if direct.ok:
        assert np.isnan(direct.value[0]), direct.value
        assert [np.shape(direct.value[1][w]) for w in wrt] == [np.shape(inputs[w]) for w in wrt]
    else:
        assert isinstance(direct.error, InputError), str(direct)
    fwd = attempt("compile_forward", lambda: gg.compile_forward(g)(**inputs))
    if fwd.ok:
        assert np.isnan(fwd.value["L"])
    else:
        assert isinstance(fwd.error, InputError), str(fwd)


def test_regression_float32_log_sigmoid() -> None:
    """float32 ``sum(log(sigmoid(x)))`` at x = [−100, −90, −85]: log σ(x) = −log(1 + e^(−x)) ≈ x,
    so the sum is −275 (the compiled code, which clips sigmoid's exponent at 80, gave −240)."""
    g = gg.parse("input x[N]\nL = sum(log(sigmoid(x)))")
    x = np.array([-100.0, -90.0, -85.0], dtype=np.float32)
    exact = float(-np.logaddexp(0.0, -x.astype(np.float64)).sum())  # -275.0 in float64
    dexact = 1 - 1 / (1 + np.exp(-x.astype(np.float64)))  # d/dx log σ(x) = 1 − σ(x) ≈ 1
    for label, v in (("evaluate", gg.evaluate(g, {"x": x})["L"]),
                     ("compile_forward", gg.compile_forward(g)(x=x)["L"]),
                     ("gg.compile", gg.compile(g, "L", ["x"])(x=x)[0])):
        assert np.asarray(v).dtype == np.float32, label
        np.testing.assert_allclose(float(v), exact, rtol=1e-4, err_msg=label)
    # the gradient: the interpreter's 1/σ(x) overflows float32 on the way (an InputError naming
    # the node); the compiled engine may raise it too, or give the right finite numbers
    with pytest.raises(InputError):
        gg.grad(g, "L", ["x"], {"x": x}, engine="interpret")
    for engine in ("compiled", "auto"):
        out = attempt(engine, lambda engine=engine: gg.value_and_grad(g, "L", ["x"], {"x": x}, engine=engine))
        if out.ok:
            value, grads = out.value
            np.testing.assert_allclose(float(value), exact, rtol=1e-4, err_msg=engine)
            assert grads["x"].dtype == np.float32
            np.testing.assert_allclose(grads["x"], dexact, rtol=1e-4, err_msg=engine)
        else:
            assert isinstance(out.error, InputError), str(out)


def test_regression_size_bound_by_a_leaf_the_loss_does_not_need() -> None:
    """``input x[K]``, ``const c[N]``, ``L = N * sum(x)``: N is bound by c's value (fed, though L
    does not read c). L = 2 · 3 = 6, ∂L/∂x = N = 2, ∂L/∂c = 0 (evaluate gave 6, grad raised)."""
    g = gg.parse("input x[K]\nconst c[N]\nL = N * sum(x)")
    inputs = {"x": np.ones(3), "c": np.zeros(2)}
    every_engine(g, inputs, ["x", "c"], 6.0, {"x": np.full(3, 2.0), "c": np.zeros(2)})
    fwd = gg.compile_forward(g)(**inputs)
    assert np.asarray(fwd["N"]).dtype == np.float64 and float(fwd["N"]) == 2.0


# ----------------------------------------------------------------------------- (d) found by these properties
# Minimal forms of what the properties above found while they were written (expected values by hand).


def test_found_gradient_of_an_intermediate_the_loss_does_not_reach() -> None:
    """``grad`` wrt an intermediate that ``of`` does not depend on gets zeros (docs/api.md), on
    both engines; the interpreter raised "missing value for x" (x was fed)."""
    g = gg.parse("input x[N]\nparam w\nh = tanh(x)\nL = w * 2.0")
    inputs = {"x": np.ones(3), "w": np.array(1.5)}
    every_engine(g, inputs, ["h"], 3.0, {"h": np.zeros(3)})
    every_engine(g, inputs, ["h", "w"], 3.0, {"h": np.zeros(3), "w": np.array(2.0)})


def test_found_size_as_a_value_the_loss_does_not_reach() -> None:
    """``h = K``, K bound by x's value, L reads neither: ∂L/∂h = 0 (the interpreter raised
    "size K is not bound" although x was fed)."""
    g = gg.parse("input x[K]\nparam w\nh = K\nL = w * 2.0")
    every_engine(g, {"x": np.ones(4), "w": np.array(1.5)}, ["h"], 3.0, {"h": np.array(0.0)})


@pytest.mark.parametrize("text, shape", [
    ("param w[1, N]\nh = w * 2.0\nL = sum(h)", (1, 3)),
    ("input w[1, N]\nh = w * 2.0\nL = sum(h)", (2, 1, 3)),  # a batch of rows
])
def test_found_compile_forward_returns_rows_as_evaluate_does(text: str, shape: tuple) -> None:
    """compile_forward returns ``{name: value}`` "like gg.evaluate" (docs/compiler.md): a row [1, N]
    as (1, N), (B, 1, N) when batched; it returned the storage layout (N,) / (B, N)."""
    g = gg.parse(text)
    w = np.arange(np.prod(shape), dtype=float).reshape(shape)
    ref = gg.evaluate(g, {"w": w})
    assert ref["h"].shape == shape
    got = gg.compile_forward(g)(w=w)
    for n in ("w", "h"):
        assert_array_agrees(got[n], ref[n], f"compile_forward[{n!r}]", TOL64)


def test_found_vjp_takes_its_cotangent_when_the_gradient_is_zero() -> None:
    """``f(**inputs, <of>_bar=v)`` (docs/compiler.md) also when vᵀJ does not depend on v
    (drelu's derivative is 0): the cotangent was refused as an unknown input."""
    g = gg.parse("input x[N]\nparam w\ny = drelu(sigmoid(x)) * w")
    x, w, v = np.array([0.5, -1.0]), np.array(2.0), np.array([1.0, 3.0])
    for wrt in (["x"], ["x", "w"]):
        f = gg.compile_vjp(g, "y", wrt)
        out = attempt(f"compile_vjp wrt {wrt}", lambda f=f: f(x=x, w=w, **{f.seed: v}))
        assert out.ok, str(out)
        value, grads = out.value
        np.testing.assert_allclose(value, [2.0, 2.0])  # drelu(σ(x)) = 1: σ > 0
        np.testing.assert_allclose(grads["x"], [0.0, 0.0])
        if "w" in wrt:
            np.testing.assert_allclose(grads["w"], v.sum())  # ∂(vᵀ y)/∂w = vᵀ drelu(σ(x)) = 4


def test_regression_sigmoid_of_nothing_and_of_the_far_tail():
    """The compiled sigmoid decides its slow path with one reduction: an empty operand has none,
    and where exp(−t) would overflow (float64 below −709, float32 below −88) σ(t) = exp(t) to the
    last bit, as the interpreter's exp(−log(1 + exp(−t))) gives it to rounding."""
    g = gg.parse("input x[N]\nh = sigmoid(x)\nL = sum(h)")
    assert gg.compile_forward(g, ["L"])(x=np.zeros(0))["L"] == 0.0
    for x in (np.array([-800.0, -745.0, -720.0, -710.0, -700.0, 0.0, 40.0]),
              np.array([-103.0, -95.0, -89.0, -85.0, 3.0], np.float32)):
        got = gg.compile_forward(g, ["h"])(x=x)["h"]
        assert got.dtype == x.dtype
        tail = x < (-709.0 if x.dtype == np.float64 else -88.0)
        np.testing.assert_array_equal(got[tail], np.exp(x[tail]))
        ref = gg.evaluate(g, {"x": x}, allow_nonfinite=True)["h"]
        np.testing.assert_allclose(got[~tail], ref[~tail], rtol=1e-6 if x.dtype == np.float32 else 1e-14)


def test_regression_review_findings():
    """Found in review: (1) finite gradients whose sum overflows raised a RuntimeWarning outside
    the errstate (an error under -W error) -- the call now goes quietly to the interpreter;
    (2) a nan beside very negative values skipped the sigmoid's exact tail; (3) a generator as
    wrt was cached by identity and grew the graph's cache on every call."""
    import warnings

    g = gg.parse("input x[N]\nparam w[N]\nL = dot(w, x)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grads = gg.grad(g, "L", ["w", "x"], {"x": np.array([1.0, -1.0]), "w": np.array([1e308, 1e308])})
    np.testing.assert_array_equal(grads["x"], [1e308, 1e308])
    s = gg.parse("input x[N]\nh = sigmoid(x)\nL = sum(h)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn = gg.compile_forward(s, ["h"]).program().function()  # the generated code itself (a call checks
        h = fn(np.array([np.nan, -100.0], np.float32))["h"]      # inputs for finiteness first)
    assert np.isnan(h[0]) and h[1] == np.exp(np.float32(-100.0))
    inputs = {"x": np.ones(2), "w": np.ones(2)}
    gg.grad(g, "L", ["w"], inputs)
    size = len(g.cache)
    for _ in range(20):
        gg.grad(g, "L", (n for n in ["w"]), inputs)
    assert len(g.cache) == size
