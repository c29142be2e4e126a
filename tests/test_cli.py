"""The graphgrad command: subcommands, --help everywhere, one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from graphgrad.cli import build_parser, main

from conftest import RESIDUAL, ROOT, residual_values


def run(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "graphgrad", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env=env)


def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_every_subcommand_has_help(capsys):
    names = subcommands()
    assert {"demo", "eval", "ops"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert "usage: graphgrad " + name in capsys.readouterr().out


def test_eval_prints_values_and_gradients(capsys):
    assert main(["eval", str(RESIDUAL), "--of", "L", "--wrt", "x", "W1", "--random", "0", "--size", "N=3", "K=2"]) == 0
    out = capsys.readouterr().out
    assert "values:" in out and "gradients of L:" in out and "dL/dW1" in out and "dL/dx" in out


def test_eval_with_inputs_file(tmp_path, capsys):
    v = residual_values()
    np.savez(tmp_path / "v.npz", **v)
    assert main(["eval", str(RESIDUAL), "--of", "L", "--inputs", str(tmp_path / "v.npz")]) == 0
    (tmp_path / "v.json").write_text(json.dumps({k: a.tolist() for k, a in v.items()}))
    assert main(["eval", str(RESIDUAL), "--inputs", str(tmp_path / "v.json")]) == 0
    assert "values:" in capsys.readouterr().out


@pytest.mark.parametrize("args,words", [
    (["eval", "missing.gg", "--random", "0"], "cannot read"),
    (["eval", str(RESIDUAL)], "no values to evaluate with"),
    (["eval", str(RESIDUAL), "--random", "0", "--size", "N3"], "bad --size"),
    (["eval", str(RESIDUAL), "--random", "0", "--of", "y"], "not a scalar"),
    (["eval", str(RESIDUAL), "--random", "0", "--of", "L", "--wrt", "nope"], "'nope' is not defined"),
    (["eval", str(RESIDUAL), "--inputs", "vals.txt"], "unknown inputs file type"),
    (["eval", str(RESIDUAL), "--inputs", "vals.npz"], "cannot read inputs"),
])
def test_bad_input_is_one_line_exit_2(args, words, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphgrad: error: ") and words in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_model_text_reports_line_and_column(tmp_path):
    bad = tmp_path / "bad.gg"
    bad.write_text("input x[N]\nz = __import__('os').system('echo pwned')\n")
    r = run("eval", str(bad), "--random", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "line 2, col 5" in r.stderr and "pwned" not in r.stdout


def test_unknown_flag_exits_2():
    r = run("eval", "--frobnicate")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_demo_runs(tmp_path):
    r = run("demo", "-o", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "∂L/∂x" in r.stdout and "differs by" in r.stdout


def test_ops_lists_the_table(capsys):
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    assert "sigmoid" in out and "matmul" in out and "sum_to" not in out
