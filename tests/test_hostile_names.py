"""No string from a model, a networkx graph, an API argument or a CLI argument reaches Python
source unchecked.

The compiler writes node names into the code it generates. Model text only admits identifiers,
but a networkx graph (``gg.from_networkx``) may name its nodes anything: ``"h 1"``, ``"np"``,
``"a\\nimport os"``, ``"np[__import__('os').system('touch PWNED')]"``. Every entry point that
compiles is run on graphs whose node names (leaves, intermediates, anonymous sub-expressions,
literals, the loss) and size names are hostile, and must

* run nothing: ``touch PWNED`` would land in the test's working directory (``tmp_path``), and
  ``os.system``/``subprocess`` are watched;
* give the interpreter's numbers (``engine="interpret"``), with results keyed by the *original*
  names (never the mangled identifiers of the generated code);
* generate source that ``ast.parse`` accepts, and a standalone module that runs in a fresh
  namespace where nothing but NumPy can be imported.

Entry points: ``gg.grad`` and ``gg.value_and_grad`` (default engine), ``gg.compile`` (``.source``,
``.module_source()``, calling it, a batched signature), ``gg.compile_forward``,
``gg.compile_vjp``, ``gg.fit``, ``gg.compile(..., name=...)`` (a bad function name is a
``NamingError``), hostile ``of``/``wrt``/``outputs``/``batched``/``sizes`` arguments, and the CLI
(``graphgrad codegen`` and ``graphgrad eval`` with hostile ``--name``/``--of``/``--wrt``/...: exit 2).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest

import graphgrad as gg
from graphgrad.cli import main as cli_main
from graphgrad.errors import GraphgradError, NamingError
from graphgrad.optim import GD
from graphgrad.shapes import normalize

PAYLOAD = "np[__import__('os').system('touch PWNED')]"

# Node names. Neighbours in this list land in the same graph (see ``rotation``): a name and its
# mangled form ("h 1"/"h_1", "np"/"np_", "λ"/"n_u3bb", "_sigmoid"/"n_sigmoid"), the NFKC pair
# "ﬁ"/"fi" (Python folds "ﬁ" to "fi" in source), a name and the adjoint name graphgrad derives
# from it ("x"/"x_bar"), generated-looking names ("_t1"/"_t1_bar").
HOSTILE = [
    PAYLOAD,
    "h 1", "h_1",
    "np", "np_",
    "self", "B",
    "lambda", "class",
    "_sigmoid", "n_sigmoid",
    "__import__",
    'a"b', "a'b",
    "a\nimport os",
    "λ", "n_u3bb",
    "ﬁ", "fi",
    "x", "x_bar",
    '"""; __import__("os").system("touch PWNED"); """',
    "z\\", "a#b", "{a}", "%s", "\x00T0\x00", "c\r__import__('os').system('touch PWNED')",
    "_t1", "_t1_bar",
    "return", "None", "__builtins__", "value_and_grad_L", "L_bar", "os.system('touch PWNED')",
    "1x", "", " ", "f(x)", "np.exp",
]
SIZE_PAIRS = [("np", "B"), ("ﬁ", "fi"), ("λ", "self"), ("B", "np"), ("os", "print"), ("sum", "exp")]
"""Size names must be valid user names (identifiers, no keywords, no leading _), so these are the
hostile ones: names of the generated code's globals, Python builtins, non-ASCII and NFKC pairs."""

# The template every graph is built from: (role, op, args, attrs). x: input [n1]; W: param
# [n2, n1]; b: param [n2]; c: const []; r: const [1, n2]; a size n1 used as a value.
ROLES = ["x", "W", "b", "c", "r", "z", "a", "h", "t", "y", "al", "two", "u", "sq", "e", "L1", "L2", "L3", "L4", "L"]


def rotation(i: int) -> dict[str, str]:
    """Role -> hostile name for graph i: over all i, every name plays every role."""
    return {role: HOSTILE[(i + j) % len(HOSTILE)] for j, role in enumerate(ROLES)}


def sizes_for(names: Mapping[str, str], i: int) -> tuple[str, str]:
    taken = set(names.values())
    for k in range(len(SIZE_PAIRS)):
        n1, n2 = SIZE_PAIRS[(i + k) % len(SIZE_PAIRS)]
        if n1 not in taken and n2 not in taken:
            return n1, n2
    raise AssertionError("no free pair of size names")


def hostile_graph(i: int) -> tuple[gg.Graph, dict[str, str], tuple[str, str]]:
    """Graph i: the residual-MLP-like template with hostile node and size names."""
    n = rotation(i)
    n1, n2 = sizes_for(n, i)
    G = nx.DiGraph()

    def node(role: str, op: str, args: tuple = (), **attrs: Any) -> None:
        name = n[role] if role in n else role
        G.add_node(name, op=op, args=tuple(n.get(a, a) for a in args), **attrs)
        for a in args:
            G.add_edge(n.get(a, a), name)

    node("x", "input", shape=(n1,))
    node("W", "param", shape=(n2, n1))
    node("b", "param", shape=(n2,))
    node("c", "const", shape=())
    node("r", "const", shape=(1, n2))
    node("z", "matmul", ("W", "x"))
    node("a", "add", ("z", "b"), anon=True)  # an anonymous sub-expression with a hostile name
    node("h", "sigmoid", ("a",))
    node("t", "tanh", ("h",))
    node("y", "matmul", ("r", "t"))  # a scalar
    node("al", "id", ("h",))  # an alias of h
    node("two", "literal", value=2.0, anon=True)
    G.add_node(n1, op="size", args=())  # the size n1 used as a value
    node("u", "mul", (n1, "x"), anon=True)
    node("sq", "pow", ("t", "two"), anon=True)
    node("e", "exp", ("u",))
    node("L1", "add", ("y", "c"), anon=True)
    node("L2", "sum", ("sq",))
    node("L3", "add", ("L1", "L2"), anon=True)
    node("L4", "dot", ("e", "x"), anon=True)
    node("L", "add", ("L3", "L4"))
    G.add_node("sum_al", op="sum", args=(n["al"],), anon=True)
    G.add_edge(n["al"], "sum_al")
    G.add_node("total", op="add", args=(n["L"], "sum_al"))
    G.add_edge(n["L"], "total")
    G.add_edge("sum_al", "total")
    g = gg.from_networkx(G)
    return g, n, (n1, n2)


def values(g: gg.Graph, seed: int = 0, batch: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dims = {}
    for leaf in g.leaves():
        for d in g.shape(leaf):
            if isinstance(d, str):
                dims.setdefault(d, 3 if not dims else 2)
    out = {}
    for leaf in g.leaves():
        shape = tuple(dims[d] if isinstance(d, str) else d for d in g.shape(leaf))
        if batch and g.op(leaf) == "input":
            shape = (batch, *shape)
        out[leaf] = rng.uniform(-1, 1, shape) * 0.5
    return out


def variables(g: gg.Graph) -> list[str]:
    return [v for v in g.named_nodes() if g.op(v) not in ("literal", "size")]


def storage(g: gg.Graph, name: str, value: Any, batched: bool = False) -> np.ndarray:
    """A fed value in the generated code's storage layout (vectors and rows 1-D, batch first)."""
    v = np.asarray(value)
    shape = normalize(g.shape(name))
    lead = v.shape[:1] if batched else ()
    if len(shape) == 0:
        return v.reshape(lead)
    if len(shape) == 1 or shape[0] == 1:
        return v.reshape(lead + (-1,))
    return v


def assert_same(got: Mapping, ref: Mapping, what: str) -> None:
    assert list(got) == list(ref), f"{what}: keys {list(got)!r}, expected the original names {list(ref)!r}"
    for k in ref:
        r = np.asarray(ref[k])
        a = np.asarray(got[k])
        assert a.size == r.size, f"{what}[{k!r}]: {a.shape} against {r.shape}"
        np.testing.assert_allclose(a.reshape(r.shape), r, rtol=1e-9, atol=1e-12, err_msg=f"{what}[{k!r}]")


def only_numpy(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002 - __import__'s signature
    """__import__ for the standalone module: NumPy and nothing else."""
    if name == "numpy" or name.startswith("numpy."):
        return builtins.__import__(name, globals, locals, fromlist, level)
    raise AssertionError(f"the generated module imports {name!r}")


def exec_standalone(src: str) -> dict[str, Any]:
    """exec a generated module in a fresh namespace whose __import__ gives NumPy only."""
    ast.parse(src)
    ns: dict[str, Any] = {"__name__": "graphgrad_standalone",
                          "__builtins__": {**vars(builtins), "__import__": only_numpy}}
    exec(compile(src, "<standalone>", "exec"), ns)  # noqa: S102 - the code under test
    return ns


# ----------------------------------------------------------------------------- the watch


@pytest.fixture(autouse=True)
def nothing_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Work in tmp_path (so ``touch PWNED`` would land there) and watch processes being started."""
    monkeypatch.chdir(tmp_path)
    started: list[Any] = []

    def refuse(*args: Any, **kw: Any) -> int:
        started.append(args)
        raise AssertionError(f"generated code started a process: {args!r}")

    monkeypatch.setattr(os, "system", refuse)
    monkeypatch.setattr(os, "popen", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    yield tmp_path
    assert not started, f"processes were started: {started!r}"
    assert not (tmp_path / "PWNED").exists(), "the payload ran: PWNED was created"


def small_graph(x: str, loss: str) -> gg.Graph:
    """``loss = sum(tanh(x)) + c`` with the given node names."""
    G = nx.DiGraph()
    G.add_node(x, op="input", args=(), shape=("N",))
    G.add_node("c", op="const", args=(), shape=())
    G.add_node("t", op="tanh", args=(x,))
    G.add_node("s", op="sum", args=("t",), anon=True)
    G.add_node(loss, op="add", args=("s", "c"))
    G.add_edges_from([(x, "t"), ("t", "s"), ("s", loss), ("c", loss)])
    return gg.from_networkx(G)


def test_empty_node_names() -> None:
    """The empty string is a node name too (found by the rotations below): as a batched input,
    whose batch size the code must read (it wrote ``B = 1``), and as the loss (KeyError: None)."""
    g = small_graph("", "L")
    for x in (np.array([0.5, -1.0, 2.0]), np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])):
        vals = {"": x, "c": np.array(0.25)}
        ref_value, ref = gg.value_and_grad(g, "L", ["", "c", "t"], vals, engine="interpret")
        assert ref["c"] == (len(x) if x.ndim == 2 else 1.0)  # summed over the batch
        value, grads = gg.value_and_grad(g, "L", ["", "c", "t"], vals)
        np.testing.assert_allclose(value, ref_value, rtol=1e-12)
        assert_same(grads, ref, f"gg.value_and_grad, x of shape {x.shape}")
    g = small_graph("x", "")
    vals = {"x": np.array([0.5, -1.0, 2.0]), "c": np.array(0.25)}
    ref_value, ref = gg.value_and_grad(g, "", ["x", "c"], vals, engine="interpret")
    value, grads = gg.value_and_grad(g, "", ["x", "c"], vals)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    assert_same(grads, ref, "gg.value_and_grad of ''")
    f = gg.compile(g, "", ["x", "c"])
    ast.parse(f.source)
    assert f.name.isidentifier()


GRAPHS = list(range(len(HOSTILE)))


def _id(i: int) -> str:
    return f"rot{i}-" + ascii(HOSTILE[i])[1:-1][:12]


def test_graphs_are_built_as_meant() -> None:
    """Every rotation is a valid graph whose nodes keep their hostile names."""
    for i in GRAPHS:
        g, n, (n1, n2) = hostile_graph(i)
        assert set(n.values()) <= set(g.nx), i
        assert g.shape(n["W"]) == (n2, n1)
    seen = {name for i in GRAPHS for name in rotation(i).values()}
    assert seen == set(HOSTILE)


@pytest.mark.parametrize("i", GRAPHS, ids=_id)
def test_grad_and_value_and_grad(i: int) -> None:
    g, n, _ = hostile_graph(i)
    vals = values(g)
    wrt = variables(g)
    ref_value, ref = gg.value_and_grad(g, "total", wrt, vals, engine="interpret")
    assert_same(gg.grad(g, "total", wrt, vals), ref, "gg.grad")
    value, grads = gg.value_and_grad(g, "total", wrt, vals)
    np.testing.assert_allclose(value, ref_value, rtol=1e-9)
    assert_same(grads, ref, "gg.value_and_grad")
    # the loss itself hostile
    of = n["L"]
    assert_same(gg.grad(g, of, wrt[:5], vals), gg.grad(g, of, wrt[:5], vals, engine="interpret"), f"gg.grad of {of!r}")


@pytest.mark.parametrize("i", GRAPHS, ids=_id)
def test_compile(i: int) -> None:
    g, n, _ = hostile_graph(i)
    vals = values(g)
    wrt = variables(g)
    for of in ("total", n["L"]):  # the function's default name comes from of: value_and_grad_<of>
        ref_value, ref = gg.value_and_grad(g, of, wrt, vals, engine="interpret")
        f = gg.compile(g, of, wrt)
        ast.parse(f.source)
        value, grads = f(**{k: v for k, v in vals.items() if k in f.leaves})
        np.testing.assert_allclose(value, ref_value, rtol=1e-9)
        assert_same(grads, ref, f"gg.compile of {of!r}")
        src = f.module_source("hostile.gg")
        ns = exec_standalone(src)
        fn = ns[f.name]
        assert len(inspect.signature(fn).parameters) == len(f.leaves)
        value, grads = fn(*[storage(g, k, vals[k]) for k in f.leaves])
        np.testing.assert_allclose(value, ref_value, rtol=1e-9)
        assert_same(grads, ref, f"the standalone module of {of!r}")


@pytest.mark.parametrize("i", GRAPHS, ids=_id)
def test_compile_batched(i: int) -> None:
    """A batched signature: the generated code reads the batch size (its global B)."""
    g, n, _ = hostile_graph(i)
    vals = values(g, batch=4)
    wrt = variables(g)
    ref_value, ref = gg.value_and_grad(g, "total", wrt, vals, engine="interpret")
    for reduce in (None, "sum"):
        f = gg.compile(g, "total", wrt, reduce=reduce, batched=[n["x"]])
        ast.parse(f.source)
        value, grads = f(**vals)
        np.testing.assert_allclose(value, ref_value if reduce is None else np.sum(ref_value), rtol=1e-9)
        assert_same(grads, ref, f"gg.compile(batched, reduce={reduce})")
        ns = exec_standalone(f.module_source())
        value, grads = ns[f.name](*[storage(g, k, vals[k], k == n["x"]) for k in f.leaves])
        np.testing.assert_allclose(value, ref_value if reduce is None else np.sum(ref_value), rtol=1e-9)
        assert_same(grads, ref, f"the batched standalone module (reduce={reduce})")


@pytest.mark.parametrize("i", GRAPHS, ids=_id)
def test_compile_forward_and_vjp(i: int) -> None:
    g, n, _ = hostile_graph(i)
    vals = values(g)
    ref = gg.evaluate(g, vals)
    f = gg.compile_forward(g)
    ast.parse(f.source)
    got = f(**vals)
    assert set(got) == set(ref), f"forward keys {sorted(map(ascii, got))}"
    assert_same({k: got[k] for k in ref}, ref, "gg.compile_forward")
    ns = exec_standalone(f.module_source())
    got = ns[f.name](*[storage(g, k, vals[k]) for k in f.leaves])
    assert_same({k: got[k] for k in ref}, ref, "the standalone forward module")
    # the VJP of the vector h (its cotangent input is named after h: <h>_bar)
    h = n["h"]
    leaves = [n[r] for r in ("x", "W", "b")]
    ct = np.linspace(-1.0, 1.0, np.size(ref[h]))
    vref = gg.vjp(g, h, leaves, vals, ct)
    fv = gg.compile_vjp(g, h, leaves)
    ast.parse(fv.source)
    value, grads = fv(**{k: v for k, v in vals.items() if k in fv.leaves}, **{fv.seed: ct})
    assert_same({h: value}, {h: ref[h]}, "gg.compile_vjp value")
    assert_same(grads, vref, "gg.compile_vjp")
    ns = exec_standalone(fv.module_source())
    args = [ct if k == fv.seed else storage(g, k, vals[k]) for k in fv.leaves]
    value, grads = ns[fv.name](*args)
    assert_same(grads, vref, "the standalone VJP module")


@pytest.mark.parametrize("i", GRAPHS, ids=_id)
def test_fit(i: int) -> None:
    """gg.fit compiles the gradient (reduce='sum'); one GD step is p − lr·∂L/∂p."""
    g, n, _ = hostile_graph(i)
    vals = values(g)
    params = {n["W"]: vals[n["W"]], n["b"]: vals[n["b"]]}
    data = {k: v for k, v in vals.items() if k not in params}
    ref_value, ref = gg.value_and_grad(g, "total", list(params), vals, engine="interpret")
    trained, hist = gg.fit(g, "total", params, data, GD(lr=0.1), steps=1)
    assert list(trained) == list(params)
    for p in params:
        np.testing.assert_allclose(trained[p], params[p] - 0.1 * ref[p], rtol=1e-9, atol=1e-12, err_msg=ascii(p))
    np.testing.assert_allclose(hist.loss[0], ref_value, rtol=1e-9)


# ----------------------------------------------------------------------------- API arguments

BAD_FUNCTION_NAMES = [PAYLOAD, "h 1", "np", "B", "lambda", "class", "_sigmoid", "__import__", 'a"b', "a'b",
                      "a\nimport os", "λ", "ﬁ", "1x", "", "f(x)", "np.exp", "None", "return", "\x00T0\x00"]


@pytest.mark.parametrize("name", BAD_FUNCTION_NAMES, ids=ascii)
def test_bad_function_name_is_a_naming_error(name: str) -> None:
    g, n, _ = hostile_graph(0)
    wrt = variables(g)
    for make in (lambda: gg.compile(g, "total", wrt, name=name), lambda: gg.compile_forward(g, name=name),
                 lambda: gg.compile_vjp(g, n["h"], wrt[:3], name=name)):
        with pytest.raises(NamingError):
            _ = make().source  # (refused when compiling, or at the latest when the code is made)


def test_good_function_name_names_the_function() -> None:
    g, _, _ = hostile_graph(1)
    vals = values(g)
    f = gg.compile(g, "total", variables(g), name="grad_fn")
    f(**{k: v for k, v in vals.items() if k in f.leaves})
    ns = exec_standalone(f.module_source())
    assert callable(ns["grad_fn"]) and f.name == "grad_fn"
    assert f.source.lstrip().startswith("def grad_fn(")


NOT_IN_GRAPHS = [PAYLOAD + "#", "q\nimport os", 'q"b', "np.sum", "__import__('os')", "", "\x00"]


@pytest.mark.parametrize("bad", NOT_IN_GRAPHS, ids=ascii)
def test_hostile_arguments_are_refused_or_harmless(bad: str) -> None:
    """Names in of/wrt/outputs/batched/sizes/keyword inputs that the graph does not have."""
    g, n, _ = hostile_graph(2)
    if bad in g:  # ("" is a node of some rotations: take one without it)
        g, n, _ = next(hostile_graph(i) for i in GRAPHS if bad not in hostile_graph(i)[0])
    vals = values(g)
    wrt = variables(g)
    with pytest.raises(NamingError):
        gg.grad(g, bad, None, vals)
    with pytest.raises(NamingError):
        gg.grad(g, "total", [bad], vals)
    with pytest.raises(NamingError):
        gg.compile(g, "total", [bad])
    with pytest.raises(NamingError):
        gg.compile_forward(g, [bad])
    with pytest.raises(NamingError):
        _ = gg.compile(g, "total", wrt, batched=[bad]).source
    with pytest.raises(GraphgradError):
        gg.compile(g, "total", wrt)(**vals, **{bad: 1.0})
    # sizes= only informs the matrix-chain order: an unknown (or hostile) size name is refused or
    # ignored (the code is the same as without it), never written into the code
    ref_value, ref = gg.value_and_grad(g, "total", wrt, vals, engine="interpret")
    plain = gg.compile(g, "total", wrt).source
    for sizes in ({bad: 3}, {bad: 3, "__batch__": 2}):
        try:
            f = gg.compile(g, "total", wrt, sizes=sizes)
            src = f.source
        except GraphgradError:
            continue
        ast.parse(src)
        if "__batch__" not in sizes:
            assert src == plain, f"sizes={sizes!r} changed the code"
        value, grads = f(**{k: v for k, v in vals.items() if k in f.leaves})
        np.testing.assert_allclose(value, ref_value, rtol=1e-9)
        assert_same(grads, ref, f"gg.compile(sizes={sizes!r})")


# ----------------------------------------------------------------------------- the CLI

MODEL = """# variables and sizes named like the generated code's globals, builtins and ops
# (model text declares ASCII names only)
input np[B]
param self[K, B]  exp[K]
const print
os = sigmoid(self @ np + exp)
L = sum(os) * print + B * sum(np) + norm(os) ** 2
"""


@pytest.fixture
def model_file(nothing_runs: Path) -> Path:
    p = nothing_runs / "hostile.gg"
    p.write_text(MODEL, encoding="utf-8")
    return p


def model_values(batch: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    x_shape = (batch, 3) if batch else (3,)
    return {"np": rng.standard_normal(x_shape), "self": rng.standard_normal((2, 3)),
            "exp": rng.standard_normal(2), "print": np.array(0.7)}


@pytest.mark.parametrize("flags, wrt, batch, name", [
    (["--of", "L", "--wrt", "np", "self", "exp", "os"], ["np", "self", "exp", "os"], None, "value_and_grad_L"),
    (["--of", "L", "--wrt", "np", "self", "exp", "print", "--batch"], ["np", "self", "exp", "print"], 4,
     "value_and_grad_L"),
    (["--of", "L", "--wrt", "self", "exp", "--batch", "np", "--reduce", "sum", "--size", "B=3", "K=2"],
     ["self", "exp"], 4, "value_and_grad_L"),
    (["--of", "L", "--name", "grad_fn"], None, None, "grad_fn"),
])
def test_cli_codegen_module_runs_standalone(model_file: Path, flags: list[str], wrt: list[str] | None,
                                            batch: int | None, name: str) -> None:
    g = gg.load(model_file)
    out = model_file.with_name("out.py")
    assert cli_main(["codegen", str(model_file), *flags, "-o", str(out)]) == 0
    ns = exec_standalone(out.read_text(encoding="utf-8"))
    wrt = wrt or g.leaves()
    vals = model_values(batch)
    ref_value, ref = gg.value_and_grad(g, "L", wrt, vals, engine="interpret")
    fn = ns[name]
    leaves = gg.compile(g, "L", wrt).leaves  # the order of the arguments
    assert len(inspect.signature(fn).parameters) == len(leaves)
    value, grads = fn(*[storage(g, k, vals[k], batch is not None and k == "np") for k in leaves])
    np.testing.assert_allclose(value, np.sum(ref_value) if "--reduce" in flags else ref_value, rtol=1e-9)
    assert_same(grads, ref, f"graphgrad codegen {' '.join(flags)}")


def test_cli_codegen_forward_and_vjp_modules(model_file: Path) -> None:
    g = gg.load(model_file)
    vals = model_values()
    ref = gg.evaluate(g, vals)
    out = model_file.with_name("fwd.py")
    assert cli_main(["codegen", str(model_file), "--forward", "-o", str(out)]) == 0
    ns = exec_standalone(out.read_text(encoding="utf-8"))
    got = ns["forward"](*[storage(g, k, vals[k]) for k in gg.compile_forward(g).leaves])
    assert_same({k: got[k] for k in ref}, ref, "graphgrad codegen --forward")
    out = model_file.with_name("vjp.py")
    assert cli_main(["codegen", str(model_file), "--of", "os", "--vjp", "--wrt", "np", "self", "-o", str(out)]) == 0
    ns = exec_standalone(out.read_text(encoding="utf-8"))
    ct = np.array([0.5, -1.0])
    fv = gg.compile_vjp(g, "os", ["np", "self"])
    args = [ct if k == fv.seed else storage(g, k, vals[k]) for k in fv.leaves]
    _, grads = ns[fv.name](*args)
    assert_same(grads, gg.vjp(g, "os", ["np", "self"], vals, ct), "graphgrad codegen --vjp")


@pytest.mark.parametrize("name", BAD_FUNCTION_NAMES[:-1], ids=ascii)  # (argv cannot hold NUL)
def test_cli_codegen_bad_name_exits_2(model_file: Path, capsys, name: str) -> None:
    out = model_file.with_name("bad.py")
    assert cli_main(["codegen", str(model_file), "--of", "L", "--name", name, "-o", str(out)]) == 2
    assert not out.exists()
    assert cli_main(["codegen", str(model_file), "--of", "L", "--name", name]) == 2
    captured = capsys.readouterr()
    assert "def " not in captured.out
    assert captured.err.startswith("graphgrad: error:") and "Traceback" not in captured.err


@pytest.mark.parametrize("bad", [PAYLOAD, "a\nimport os", 'a"b', "h 1", "__import__"], ids=ascii)
def test_cli_hostile_arguments_exit_2(model_file: Path, capsys, bad: str) -> None:
    m = str(model_file)
    for argv in (["codegen", m, "--of", bad],
                 ["codegen", m, "--of", "L", "--wrt", bad],
                 ["codegen", m, "--forward", bad],
                 ["codegen", m, "--of", "L", "--batch", bad],
                 ["eval", m, "--of", bad, "--random", "0"],
                 ["eval", m, "--of", "L", "--wrt", bad, "--random", "0"]):
        assert cli_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("graphgrad: error:") and "Traceback" not in err, (argv, err)


@pytest.mark.parametrize("bad", [PAYLOAD, "a\nimport os", "__import__", "np", "B"], ids=ascii)
def test_cli_codegen_hostile_size_is_refused_or_harmless(model_file: Path, capsys, bad: str) -> None:
    """--size only informs the matrix-chain order: a size name the model lacks is refused (exit 2,
    one line) or ignored, never written into the module."""
    out = model_file.with_name("sized.py")
    rc = cli_main(["codegen", str(model_file), "--of", "L", "--size", f"{bad}=3", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc in (0, 2) and "Traceback" not in err
    if rc == 2:
        assert err.startswith("graphgrad: error:") and not out.exists()
        return
    src = out.read_text(encoding="utf-8")
    ast.parse(src)
    exec_standalone(src)
    if bad not in MODEL:
        assert bad not in src


def test_cli_eval_of_the_hostile_model(model_file: Path, capsys) -> None:
    assert cli_main(["eval", str(model_file), "--of", "L", "--wrt", "np", "self", "exp", "--random", "0",
                     "--size", "B=3", "K=2"]) == 0
    assert "L" in capsys.readouterr().out
