"""The derivation checker: it accepts right answers, rejects wrong ones, and names the slip."""

from __future__ import annotations

import pytest

import graphgrad as gg
from graphgrad.checker import CheckResult, check
from graphgrad.cli import main
from graphgrad.naming import pretty

MODEL = "examples/residual_mlp.gg"
RIGHT_X = "(y - s) + W1.T @ ((W2.T @ (y - s) + r) * dsigmoid(z))"


def test_accepts_the_correct_answer(mlp):
    res = check(mlp, "L", "x", RIGHT_X)
    assert isinstance(res, CheckResult) and res.correct and bool(res)
    assert res.max_error < 1e-12
    assert not res.diagnosis
    # several random sizes, every size name different (K ≠ N)
    assert len(res.sizes) >= 3 and all(s["K"] != s["N"] for s in res.sizes)
    assert len({(s["K"], s["N"]) for s in res.sizes}) >= 2


def test_graphgrad_check_is_callable_from_the_package(mlp):
    assert gg.check(mlp, "L", "x", RIGHT_X).correct


def test_diagnoses_the_example_transposes_and_residual_path(mlp):
    res = check(mlp, "L", "x", "W1 @ ((W2 @ (y - s) + r) * dsigmoid(z))")
    assert not res.correct
    text = "\n".join(res.diagnosis)
    assert "missing transpose" in text and "shapes do not fit" in text
    assert "W1 → W1.T" in text and "W2 → W2.T" in text
    assert "missing path" in text and "residual path" in text
    assert f"contributes {pretty('y', bar=True)} to {pretty('x', bar=True)}" in text
    assert "y = " in text
    assert "wrong" in str(res) and "expected ∂L/∂x" in str(res)


def test_missing_path_deeper_in_the_graph(mlp):
    # forgets R = dot(r, h): h̄ lacks R̄ r
    res = check(mlp, "L", "x", "(y - s) + W1.T @ ((W2.T @ (y - s)) * dsigmoid(z))")
    assert not res.correct
    assert res.diagnosis[0].startswith("missing path") and "R = " in res.diagnosis[0]
    assert "R̄ r" in res.diagnosis[0]


def test_transpose_that_fits_only_because_square():
    g = gg.parse("input x[N]\nparam A[N, N]\nconst c[N]\nL = dot(c, A @ x)")
    assert check(g, "L", "x", "A.T @ c").correct
    res = check(g, "L", "x", "A @ c")
    assert not res.correct
    assert "square" in res.diagnosis[0] and "A → A.T" in res.diagnosis[0]


def test_missing_transpose_of_a_vector(mlp):
    res = check(mlp, "L", "W1", "((W2.T @ (y - s) + r) * dsigmoid(z)) @ x")
    assert not res.correct and "x → x.T" in res.diagnosis[0]
    assert check(mlp, "L", "W1", "((W2.T @ (y - s) + r) * dsigmoid(z)) @ x.T").correct


@pytest.mark.parametrize("candidate,expect", [
    ("-(y - s) - W1.T @ ((W2.T @ (y - s) + r) * dsigmoid(z))", "sign error"),
    ("3 * ((y - s) + W1.T @ ((W2.T @ (y - s) + r) * dsigmoid(z)))", "factor error"),
    (RIGHT_X + " + W1.T @ r", "extra term"),
    ("(y - s) - W1.T @ ((W2.T @ (y - s) + r) * dsigmoid(z))", "sign error in a path"),
])
def test_sign_factor_and_extra_term(mlp, candidate, expect):
    res = check(mlp, "L", "x", candidate)
    assert not res.correct
    assert res.diagnosis and res.diagnosis[0].startswith(expect), res.diagnosis


def test_factor_is_reported(mlp):
    res = check(mlp, "L", "x", "3 * ((y - s) + W1.T @ ((W2.T @ (y - s) + r) * dsigmoid(z)))")
    assert "3 times" in res.diagnosis[0]


def test_unrecognised_difference_is_still_wrong(mlp):
    res = check(mlp, "L", "x", "W1.T @ (r * dsigmoid(z)) + s")
    assert not res.correct and res.max_error > 1e-3 and res.diagnosis


def test_bad_candidates_raise_graphgrad_errors(mlp):
    with pytest.raises(gg.ParseError):
        check(mlp, "L", "x", "x +")
    with pytest.raises(gg.UnknownOpError):
        check(mlp, "L", "x", "foo(x)")
    with pytest.raises(gg.NamingError):
        check(mlp, "L", "x", "q")
    with pytest.raises(gg.NamingError):
        check(mlp, "L", "nope", "x")


def test_cli_exit_codes(capsys):
    assert main(["check", MODEL, "--of", "L", "--wrt", "x", "--candidate", RIGHT_X]) == 0
    assert "correct" in capsys.readouterr().out
    assert main(["check", MODEL, "--of", "L", "--wrt", "x", "--candidate",
                 "W1 @ ((W2 @ (y - s) + r) * dsigmoid(z))"]) == 1
    out = capsys.readouterr().out
    assert "missing transpose" in out and "residual path" in out
    assert main(["check", MODEL, "--of", "L", "--wrt", "x", "--candidate", "x +"]) == 2
    assert "graphgrad: error:" in capsys.readouterr().err
