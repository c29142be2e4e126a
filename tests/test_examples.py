"""examples/residual_mlp.py: the builder's residual MLP is the graph of residual_mlp.gg, and the
script runs from the repository root in a fresh interpreter, quickly, printing what it says."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import graphgrad as gg

from conftest import RESIDUAL, ROOT

SCRIPT = ROOT / "examples" / "residual_mlp.py"
CPU_LIMIT_S = 3.0  # it takes about 0.9 s of CPU (most of it importing NumPy and SymPy); the aim is < 2 s


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("examples_residual_mlp", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_builder_graph_is_the_model_file(example):
    built, loaded = example.build(), gg.load(RESIDUAL)
    assert built == loaded
    assert built.named_nodes() == loaded.named_nodes()
    assert {n: built.shape(n) for n in built.named_nodes()} == {n: loaded.shape(n) for n in loaded.named_nodes()}
    assert example.compare(built, loaded, trials=3, seed=1) <= 1e-12


def test_compare_catches_a_different_model(example):
    """The check is not vacuous: the MLP without its residual path fails it."""
    g = gg.Graph()
    x = g.input("x", "N")
    W1, b1 = g.param("W1", ("K", "N")), g.param("b1", "K")
    W2, b2 = g.param("W2", ("N", "K")), g.param("b2", "N")
    r, s = g.const("r", "K"), g.const("s", "N")
    h = gg.sigmoid((W1 @ x + b1).named("z"), name="h")
    y = (W2 @ h + b2).named("y")  # no x +
    (0.5 * gg.norm(y - s) ** 2).named("S") + gg.dot(r, h, name="R")
    with pytest.raises(AssertionError):
        example.compare(g, gg.load(RESIDUAL), trials=1)


def test_gradients_match_the_library(example):
    L, grads = example.gradients(gg.load(RESIDUAL), N=3, K=2, seed=0)
    rng = np.random.default_rng(0)
    g = gg.load(RESIDUAL)
    inputs = {n: rng.standard_normal([{"N": 3, "K": 2}[d] for d in g.shape(n)]) for n in g.leaves()}
    want = gg.grad(g, "L", None, inputs)
    assert grads.keys() == want.keys() == set(g.leaves())
    for n in want:
        np.testing.assert_allclose(grads[n], want[n], rtol=1e-12)
    assert np.isclose(L, gg.evaluate(g, inputs)["L"])


def _printed_gradients(out: str) -> dict[str, np.ndarray]:
    """The ∂L/∂name arrays the script prints, read back from its text."""
    tail = out[out.index("\nat N="):]
    chunks = re.split(r"^\s*∂L/∂(\w+)\s+", tail, flags=re.M)[1:]
    out_arrays = {}
    for name, text in zip(chunks[::2], chunks[1::2]):
        rows = [[float(t) for t in re.findall(r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?", row)]
                for row in text.strip().splitlines() if row.strip()]
        arr = np.array(rows)
        out_arrays[name] = arr[0] if text.lstrip().startswith("[") and not text.lstrip().startswith("[[") else arr
    return out_arrays


def test_script_runs_from_the_repository_root():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = os.times()
    r = subprocess.run([sys.executable, "examples/residual_mlp.py"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, env=env)
    after = os.times()
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    assert cpu < CPU_LIMIT_S, f"examples/residual_mlp.py took {cpu:.2f} s of CPU"

    out = r.stdout
    assert "builder graph == residual_mlp.gg: True" in out
    assert "largest relative difference 0.0e+00" in out
    g = gg.load(RESIDUAL)
    assert str(gg.backprop(g, "L")) in out  # the equations, all of them
    assert len(str(gg.backprop(g, "L")).splitlines()) == 11

    printed = _printed_gradients(out)
    rng = np.random.default_rng(0)
    inputs = {n: rng.standard_normal([{"N": 3, "K": 2}[d] for d in g.shape(n)]) for n in g.leaves()}
    want = gg.grad(g, "L", None, inputs)
    assert printed.keys() == want.keys()
    for n, v in want.items():
        assert printed[n].shape == v.shape, n
        np.testing.assert_allclose(printed[n], v, atol=1e-4, err_msg=n)


def test_script_refuses_bad_sizes():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "examples/residual_mlp.py", "--size", "0", "2"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "N and K must be from 1 to" in r.stderr and "Traceback" not in r.stderr
