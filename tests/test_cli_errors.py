"""The CLI never shows a traceback for bad input: every subcommand, bad files and bad flags.

Bad input ends with exit status 2 and one ``graphgrad: error: ...`` line (argparse's usage
errors also exit 2). Subcommands are found from the parser, so later ones (derive, check,
render, codegen) are covered as soon as they land.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphgrad.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
MODEL = str(ROOT / "examples" / "residual_mlp.gg")


def subcommands() -> dict[str, bool]:
    """Available subcommand -> whether it takes a MODEL argument."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {name: any(a.dest == "model" for a in p._actions) for name, p in sub.choices.items()}


COMMANDS = subcommands()
WITH_MODEL = [c for c, m in COMMANDS.items() if m]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse: usage errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_clean_error(rc: int, err: str, argv: list[str]) -> None:
    assert rc == 2, f"{argv}: exit {rc}\n{err}"
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert last.startswith("graphgrad") and "error:" in last, f"{argv}: {err!r}"


# ----------------------------------------------------------------------------- bad model files


def _bad_files(tmp: Path, write: bool = True) -> dict[str, Path]:
    files = {
        "missing": tmp / "missing.gg",
        "directory": tmp,
        "empty": "",
        "comments-only": "# nothing\n\n",
        "not-utf8": b"input x\ny = \xff\xfe x\n",
        "utf16": "input x\n".encode("utf-16"),
        "nul": "input x\ny = x\x00\n",
        "syntax": "input x\ny = (x +\n",
        "unknown-op": "input x\ny = sigmod(x)\n",
        "shape": "input x[N]\nparam W[K, N]\ny = x @ W\n",
        "undefined": "input x\ny = z + 1\n",
        "redefined": "input x\nx = 2 * x\n",
        "import": "input x\ny = __import__('os').system('true')\n",
        "dunder": "input x\ny = x.__class__\n",
        "huge-exponent": "input x\ny = 2.0 ** 99999.0 * x\n",
        "nested": "input x\ny = " + "(" * 500 + "x" + ")" * 500 + "\n",
        "1MB-line": "input x\ny = x" + " +x" * 300_000 + "\n",
        "binary": bytes(range(256)) * 4,
    }
    out = {}
    for name, content in files.items():
        if isinstance(content, Path):
            out[name] = content
            continue
        p = tmp / f"{name}.gg"
        if write:
                p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        out[name] = p
    return out


BAD_FILES = list(_bad_files(Path("/nonexistent"), write=False))


@pytest.mark.parametrize("command", WITH_MODEL)
@pytest.mark.parametrize("bad", BAD_FILES)
def test_bad_model_file(command: str, bad: str, tmp_path: Path, capsys) -> None:
    path = _bad_files(tmp_path)[bad]
    argv = [command, str(path), "--random", "0"] if command == "eval" else [command, str(path)]
    rc, _, err = run_cli(argv, capsys)
    assert_clean_error(rc, err, argv)


# ----------------------------------------------------------------------------- bad flags


def _inputs(tmp: Path) -> dict[str, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    files = {
        "bad.json": '{"x": [1, 2',
        "list.json": "[1, 2]",
        "strings.json": '{"x": "abc", "W1": 1}',
        "nan.json": '{"x": [NaN, 1, 2]}',
        "extra.json": '{"zz": 1}',
        "ragged.json": '{"x": [1, [2, 3]]}',
        "null.json": '{"x": null}',
        "inputs.txt": "x = 1",
    }
    out = {}
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")
        out[name] = tmp / name
    for name, data in {"notzip.npz": b"PK\x03\x04garbage", "pickle.npz": b"garbage", "empty.npz": b""}.items():
        (tmp / name).write_bytes(data)
        out[name] = tmp / name
    np.save(tmp / "one.npy", np.ones(3))
    (tmp / "one.npy").rename(tmp / "one.npz")
    out["one.npz"] = tmp / "one.npz"
    np.savez(tmp / "object.npz", x=np.array([{}], dtype=object))
    out["object.npz"] = tmp / "object.npz"
    np.savez(tmp / "shape.npz", x=np.ones((7, 7, 7)))
    out["shape.npz"] = tmp / "shape.npz"
    out["missing.npz"] = tmp / "missing.npz"
    return out


EVAL_FLAGS = [
    [], ["--random"], ["--random", "x"], ["--random", "-1"], ["--random", "0", "--batch", "-1"],
    ["--random", "0", "--batch", "0"], ["--random", "0", "--batch", "x"], ["--random", "0", "--size"],
    ["--random", "0", "--size", "N"], ["--random", "0", "--size", "N=x"], ["--random", "0", "--size", "=3"],
    ["--random", "0", "--size", "N=-3"], ["--random", "0", "--size", "N=99999999999"],
    ["--random", "0", "--of", "h"], ["--random", "0", "--of", "nope"], ["--random", "0", "--of", "L", "--wrt", "nope"],
    ["--random", "0", "--of", "L", "--wrt"], ["--random", "0", "--of", "L", "--wrt", "N"],
    ["--random", "0", "--inputs", "x.json"], ["--bogus"], ["--random", "0", "--of"],
]
INPUT_FILES = ["bad.json", "list.json", "strings.json", "nan.json", "extra.json", "ragged.json", "null.json",
               "inputs.txt", "notzip.npz", "pickle.npz", "empty.npz", "one.npz", "object.npz", "shape.npz",
               "missing.npz"]


@pytest.mark.parametrize("flags", EVAL_FLAGS, ids=lambda f: " ".join(f) or "none")
def test_eval_bad_flags(flags: list[str], capsys) -> None:
    argv = ["eval", MODEL, *flags]
    rc, _, err = run_cli(argv, capsys)
    assert_clean_error(rc, err, argv)


@pytest.mark.parametrize("name", INPUT_FILES)
def test_eval_bad_inputs_file(name: str, tmp_path: Path, capsys) -> None:
    path = _inputs(tmp_path)[name]
    argv = ["eval", MODEL, "--inputs", str(path)]
    rc, _, err = run_cli(argv, capsys)
    assert_clean_error(rc, err, argv)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unknown_flag(command: str, capsys) -> None:
    argv = [command, MODEL, "--no-such-flag"] if COMMANDS[command] else [command, "--no-such-flag"]
    rc, _, err = run_cli(argv, capsys)
    assert_clean_error(rc, err, argv)


@pytest.mark.parametrize("command", WITH_MODEL)
def test_missing_model_argument(command: str, capsys) -> None:
    rc, _, err = run_cli([command], capsys)
    assert_clean_error(rc, err, [command])


@pytest.mark.skipif("demo" not in COMMANDS, reason="no demo subcommand")
@pytest.mark.parametrize("flags", [["--seed", "x"], ["--seed", "-1"], ["--seed"]])
def test_demo_bad_flags(flags: list[str], capsys) -> None:
    rc, _, err = run_cli(["demo", *flags], capsys)
    assert_clean_error(rc, err, ["demo", *flags])


def test_unknown_command(capsys) -> None:
    rc, _, err = run_cli(["frobnicate"], capsys)
    assert_clean_error(rc, err, ["frobnicate"])


# ----------------------------------------------------------------------------- good input still works


def test_eval_good_input_runs(capsys, tmp_path: Path) -> None:
    rc, out, err = run_cli(["eval", MODEL, "--random", "0", "--of", "L"], capsys)
    assert rc == 0 and "gradients of L" in out and not err
    rc, out, _ = run_cli(["eval", MODEL, "--random", "0", "--batch", "2", "--size", "N=2", "K=1"], capsys)
    assert rc == 0 and "values:" in out


def test_regression_demo_without_printing_package(capsys, tmp_path: Path) -> None:
    """find_spec('graphgrad.printing.dot') raised when graphgrad.printing did not exist."""
    rc, out, err = run_cli(["demo", "-o", str(tmp_path)], capsys)
    assert rc == 0, err
    assert "hand-written" in out


def test_real_process_one_line_error(tmp_path: Path) -> None:
    """Through the real entry point (python -m graphgrad): stderr is exactly one line."""
    bad = tmp_path / "bad.gg"
    bad.write_bytes(b"input x\ny = \xff\n")
    r = subprocess.run([sys.executable, "-m", "graphgrad", "eval", str(bad), "--random", "0"], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("graphgrad: error: line 2, col 5:"), r.stderr
