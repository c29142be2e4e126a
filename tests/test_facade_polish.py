"""What a new user sees first: CheckResult at the REPL and in a notebook, graphgrad eval's matrices
(rows aligned as NumPy aligns them), and the names an unknown --of/--wrt error offers."""

from __future__ import annotations

import re

import numpy as np
import pytest

import graphgrad as gg
from graphgrad.cli import main

from conftest import RESIDUAL

WRONG = "W1 @ ((W2 @ (y - s) + r) * dsigmoid(z))"  # no transposes, no residual path
RIGHT = "(y - s) + W1.T @ ((W2.T @ (y - s) + r) * dsigmoid(z))"


@pytest.fixture(scope="module")
def mlp_graph():
    return gg.load(RESIDUAL)


# ----------------------------------------------------------------------------- CheckResult


def test_check_result_repr_wrong(mlp_graph):
    res = gg.check(mlp_graph, "L", "x", WRONG)
    text = repr(res)
    lines = text.splitlines()
    assert lines[0] == "<CheckResult ∂L/∂x: wrong; slips: missing transpose, missing path>"
    assert lines[1] == f"  candidate: {WRONG}"
    assert lines[2].startswith("  expected:  y − s + W₁ᵀ")
    assert lines[3].startswith("  diagnosis: missing transpose: the shapes do not fit")
    assert lines[4].startswith("             missing path: x also feeds y")
    assert len(lines) == 5 and "CheckResult(of=" not in text
    assert res.slips == ["missing transpose", "missing path"]


def test_check_result_repr_correct(mlp_graph):
    res = gg.check(mlp_graph, "L", "x", RIGHT)
    lines = repr(res).splitlines()
    assert lines[0] == "<CheckResult ∂L/∂x: correct>"
    assert lines[1] == f"  candidate: {RIGHT}"
    assert re.fullmatch(r"  largest relative error: \d\.\de-\d\d over 3 random sizes", lines[2])
    assert len(lines) == 3 and res.slips == []


@pytest.mark.parametrize("candidate,slip", [
    ("-((y - s) + W1.T @ ((W2.T @ (y - s) + r) * dsigmoid(z)))", "sign error"),
    ("2 * ((y - s) + W1.T @ ((W2.T @ (y - s) + r) * dsigmoid(z)))", "factor error"),
    ("W1.T @ ((W2.T @ (y - s) + r) * dsigmoid(z))", "missing path"),
])
def test_check_result_names_the_slip(mlp_graph, candidate, slip):
    res = gg.check(mlp_graph, "L", "x", candidate)
    assert res.slips == [slip]
    assert repr(res).splitlines()[0] == f"<CheckResult ∂L/∂x: wrong; slip: {slip}>"


def test_check_result_unrecognised_has_no_slip(mlp_graph):
    res = gg.check(mlp_graph, "L", "x", "x")
    assert res.slips == []
    assert repr(res).splitlines()[0] == "<CheckResult ∂L/∂x: wrong>"
    assert "not a single recognisable slip" in repr(res)


def test_check_result_repr_of_a_long_candidate_is_short(mlp_graph):
    res = gg.check(mlp_graph, "L", "x", " + ".join(["x"] * 2000))
    cand = repr(res).splitlines()[1]
    assert len(cand) < 260 and " … " in cand


def test_check_result_html_is_a_table(mlp_graph):
    page = gg.check(mlp_graph, "L", "x", WRONG)._repr_html_()
    assert page.startswith('<table class="graphgrad-check">') and page.endswith("</table>")
    assert "wrong" in page and "missing transpose, missing path" in page
    assert page.count("<li>") == 2
    assert "W1 → W1.T" in page  # the diagnosis itself
    assert "<CheckResult" not in page
    ok = gg.check(mlp_graph, "L", "x", RIGHT)._repr_html_()
    assert "correct" in ok and "<li>" not in ok and "slip" not in ok


def test_check_result_html_escapes_everything():
    CheckResult = type(gg.check(gg.parse("input x\nL = x"), "L", "x", "1"))
    res = CheckResult(of="<L>", wrt="x&y", candidate="a < b <script>alert(1)</script>",
                      correct=False, max_error=1.0, sizes=[{"N": 2}], expected="<i>e</i>",
                      diagnosis=["sign error: <b>bold</b> & more"])
    page = res._repr_html_()
    for raw in ("<script>", "<i>e</i>", "<b>bold</b>", "<L>", "x&y"):
        assert raw not in page
    assert "&lt;script&gt;" in page and "&lt;b&gt;bold&lt;/b&gt; &amp; more" in page
    assert "sign error" in page


# ----------------------------------------------------------------------------- eval's matrices


def _arrays(out: str) -> list[list[str]]:
    """The printed arrays of more than one line, each as its lines."""
    lines, blocks, i = out.splitlines(), [], 0
    while i < len(lines):
        if lines[i].count("[") - lines[i].count("]") > 0:  # an array that goes on
            block = [lines[i]]
            depth = lines[i].count("[") - lines[i].count("]")
            while depth > 0:
                i += 1
                block.append(lines[i])
                depth += lines[i].count("[") - lines[i].count("]")
            blocks.append(block)
        i += 1
    return blocks


def _assert_aligned(block: list[str]) -> None:
    """A matrix's rows stand under its first row: each row's '[' in the column of the first row's
    inner '[', nothing but blanks before it, and the decimal points of every column aligned."""
    first = block[0]
    col = first.index("[[") + 1
    dots = [m.start() for m in re.finditer(r"\.", first)]
    assert len(dots) >= 2, first
    for row in block[1:]:
        assert row.index("[") == col, f"row not under the first:\n{first}\n{row}"
        assert row[:col].strip() == "", row
        assert [m.start() for m in re.finditer(r"\.", row)] == dots, f"columns not aligned:\n{first}\n{row}"


def test_eval_matrices_aligned_as_in_the_issue(capsys):
    argv = ["eval", str(RESIDUAL), "--of", "L", "--wrt", "x", "W1", "--random", "0", "--size", "N=3", "K=2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    blocks = _arrays(out)
    labels = [b[0].split()[0] for b in blocks]
    assert labels == ["W1", "W2", "dL/dW1"]
    for b in blocks:
        _assert_aligned(b)
    grad_rows = next(b for b in blocks if b[0].lstrip().startswith("dL/dW1"))
    assert len(grad_rows) == 2  # K = 2 rows


def test_eval_aligned_with_long_names_and_shapes(tmp_path, capsys):
    model = tmp_path / "wide.gg"
    model.write_text("input x[N]\nparam Weights[K, N]\nconst r[K]\nhidden = sigmoid(Weights @ x)\n"
                     "Loss = dot(r, hidden)\n")
    assert main(["eval", str(model), "--of", "Loss", "--wrt", "Weights", "x", "--random", "1",
                 "--size", "N=3", "K=6"]) == 0
    out = capsys.readouterr().out
    blocks = _arrays(out)
    assert [b[0].split()[0] for b in blocks] == ["Weights", "dLoss/dWeights"]
    for b in blocks:
        assert len(b) == 6
        _assert_aligned(b)
    # every array starts in one column, values and gradients alike
    starts = {re.match(r"  \S+ +\[[^\]]*\]  ", line).end() for line in out.splitlines()
              if line.startswith("  ") and not line.startswith("   ")}
    assert len(starts) == 1, out


def test_eval_wrapped_vector_stays_right_of_the_labels(tmp_path, capsys):
    model = tmp_path / "long.gg"
    model.write_text("input x[N]\nL = sum(x)\n")
    assert main(["eval", str(model), "--of", "L", "--random", "0", "--size", "N=40"]) == 0
    out = capsys.readouterr().out
    for block in _arrays(out):
        first = block[0]
        col = first.index("[")
        for row in block[1:]:
            assert row[:col + 1].strip() == "" and len(row) <= 100, row


# ----------------------------------------------------------------------------- unknown names


def _hint_names(err: str, flag: str) -> list[str]:
    m = re.search(re.escape(flag) + r" must name a node of the model: (.*)\)$", err.strip())
    assert m, err
    return m.group(1).split(", ")


@pytest.mark.parametrize("argv,flag", [
    (["derive", str(RESIDUAL), "--of", "Loss"], "--of"),
    (["derive", str(RESIDUAL), "--of", "L", "--wrt", "Q"], "--wrt"),
    (["derive", str(RESIDUAL), "--of", "Loss", "--wrt", "x"], "--of"),
    (["eval", str(RESIDUAL), "--of", "Loss", "--random", "0"], "--of"),
    (["eval", str(RESIDUAL), "--of", "L", "--wrt", "x", "Q", "--random", "0"], "--wrt"),
])
def test_unknown_name_lists_every_name(argv, flag, mlp_graph, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("graphgrad: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert captured.out == ""  # nothing printed before the error
    bad = "Loss" if flag == "--of" else "Q"
    assert f"{flag} {bad!r} is not defined" in err
    names = _hint_names(err, flag)
    assert names == mlp_graph.named_nodes()
    assert {"x", "W1", "b1", "W2", "b2", "r", "s"} <= set(names)  # inputs, params, consts


def test_unknown_name_suggests_a_close_one(capsys):
    assert main(["derive", str(RESIDUAL), "--of", "L", "--wrt", "w1"]) == 2
    assert "did you mean W1?" in capsys.readouterr().err
    assert main(["eval", str(RESIDUAL), "--of", "l", "--random", "0"]) == 2
    assert "did you mean L?" in capsys.readouterr().err


def test_unknown_name_in_a_large_model_is_one_bounded_line(tmp_path, capsys):
    lines = ["input x[N]", "h0 = sigmoid(x)"] + [f"h{i} = sigmoid(h{i - 1})" for i in range(1, 300)]
    model = tmp_path / "deep.gg"
    model.write_text("\n".join(lines + ["L = sum(h299)"]) + "\n")
    assert main(["derive", str(model), "--of", "Loss"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 1000
    assert "x, h0, h1" in err and "h298, h299, L)" in err and "(242 more)" in err


@pytest.mark.parametrize("bad", ["a\nimport os", "np[__import__('os').system('touch PWNED')]", "x" * 10_000])
def test_hostile_name_is_one_short_line(bad, capsys):
    for argv in (["derive", str(RESIDUAL), "--of", bad], ["derive", str(RESIDUAL), "--of", "L", "--wrt", bad],
                 ["eval", str(RESIDUAL), "--of", "L", "--wrt", bad, "--random", "0"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("graphgrad: error: ") and err.count("\n") == 1 and len(err) < 500, err


def test_good_names_still_work(capsys):
    assert main(["derive", str(RESIDUAL), "--of", "L", "--wrt", "x"]) == 0
    assert "∂L/∂x" in capsys.readouterr().out
    assert main(["eval", str(RESIDUAL), "--of", "L", "--wrt", "h", "--random", "0"]) == 0  # an intermediate
    assert "dL/dh" in capsys.readouterr().out


def test_gradcheck_report_reads_in_a_notebook():
    g = gg.parse("input x[N]\nL = sum(x * x)")
    report = gg.gradcheck(g, "L", ["x"], {"x": np.array([1.0, -2.0])})
    assert repr(report).startswith("<GradcheckReport passed: x ") and "dataclass" not in repr(report)
    html_text = report._repr_html_()
    assert "<table>" in html_text and "<td>x</td>" in html_text
    bad = gg.GradcheckReport(False, {"a<b": 0.5}, culprit="h<1>", detail="mul & co")
    assert "&lt;" in bad._repr_html_() and "&amp;" in bad._repr_html_() and "'h<1>'" in repr(bad)


def test_tab_completion_finds_the_lazy_names():
    names = dir(gg)
    for n in ("render", "derivative", "fit", "compile", "jacobian", "check", "CheckResult", "sigmoid"):
        assert n in names, n
    assert gg.CheckResult.__name__ == "CheckResult"
