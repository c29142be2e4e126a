"""The CLI never shows a traceback for bad input: every subcommand, bad files and bad flags.

Bad input ends with exit status 2 and one ``graphgrad: error: ...`` line (argparse's usage
errors also exit 2). Subcommands are found from the parser, so later ones (derive, check,
render, codegen) are covered as soon as they land.
"""

from __future__ import annotations

import errno
import io
import os
import re
import signal
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from graphgrad.cli import build_parser, common, main
from graphgrad.cli.common import MAX_JSON_BYTES, MAX_MODEL_BYTES, MAX_NPZ_BYTES
from graphgrad.cli.common import load_model as load

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
    """Exit 2 and exactly one line on stderr, ``graphgrad[ COMMAND]: error: ...``."""
    assert rc == 2, f"{argv}: exit {rc}\n{err}"
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.endswith("\n"), f"{argv}: not one line: {err!r}"
    assert re.match(r"graphgrad( [a-z]+)?: error: \S", err), f"{argv}: {err!r}"


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
    """find_spec('graphgrad.drawing.dot') raised when graphgrad.printing did not exist."""
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


# ----------------------------------------------------------------------------- regressions: the adversarial run
# 304 bad invocations found 11 tracebacks and 3 hangs; each case below is one of them, or a
# neighbour found while fixing them. Every one must end with exit 2 and one line on stderr.

CHECK = ["check", MODEL, "--of", "L", "--wrt", "x"]
RIGHT_X = "(y - s) + W1.T @ ((W2.T @ (y - s) + r) * dsigmoid(z))"


@contextmanager
def deadline(seconds: int = 5):
    """Fail (instead of hanging the suite) if the block blocks: a FIFO opened for reading waits for
    a writer forever, /dev/zero never ends."""
    if not hasattr(signal, "SIGALRM"):
        pytest.skip("needs SIGALRM")

    def boom(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: the CLI blocked")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def bad(argv: list[str], capsys) -> str:
    """Run ``argv``; assert a clean one-line error; return the line."""
    with deadline():
        rc, _, err = run_cli(argv, capsys)
    assert_clean_error(rc, err, argv)
    return err


@pytest.mark.parametrize("trials", ["0", "-1", "1e8", "100000000", "101", "abc", "3.5", ""])
def test_check_trials_bounded(trials: str, capsys) -> None:
    """--trials 0 was max() of an empty sequence; --trials 100000000 ran for hours."""
    err = bad([*CHECK, "--candidate", RIGHT_X, "--trials", trials], capsys)
    assert "--trials" in err and "1 to 100" in err


@pytest.mark.parametrize("seed", ["-5", "-1", str(2**64), "x"])
def test_check_seed_bounded(seed: str, capsys) -> None:
    """NumPy rejected --seed -5 with a traceback."""
    err = bad([*CHECK, "--candidate", RIGHT_X, "--seed", seed], capsys)
    assert "--seed" in err


def test_check_largest_trials_and_seed_still_work(capsys) -> None:
    rc, out, err = run_cli([*CHECK, "--candidate", RIGHT_X, "--trials", "5", "--seed", str(2**64 - 1)], capsys)
    assert rc == 0 and out.startswith("correct") and not err


def test_checker_api_bounds() -> None:
    from graphgrad.checker import check
    from graphgrad.errors import GraphgradError

    g = load(MODEL)
    for kw in ({"trials": 0}, {"trials": 10**8}, {"trials": 2.5}, {"seed": -5}, {"seed": "0"}):
        with pytest.raises(GraphgradError):
            check(g, "L", "x", RIGHT_X, **kw)


@pytest.mark.parametrize("candidate", [
    " + ".join(["x"] * 20_000),                   # the reported one: RecursionError in ast
    "x" * 100_001,                                # over the length limit
    "x" + ".T" * 5000,                            # a deep chain of attribute nodes
    "-" * 20_000 + "x",                           # a deep chain of unary minus
    " * ".join(["x"] * 3000),                     # a deep product (left-nested)
    "x" + " ** 1" * 3000,                         # a deep power (right-nested)
    "sigmoid(" * 300 + "x" + ")" * 300,           # nested calls
    "(" * 1000 + "x" + ")" * 1000,                # nested parentheses
    "x\ny = 3", "x = 3", "   ", "x +",
], ids=["sum-20000", "long", "T-chain", "neg-chain", "product", "power", "calls", "parens", "two-lines",
        "assignment", "blank", "syntax"])
def test_check_candidate_bounded(candidate: str, capsys) -> None:
    bad([*CHECK, f"--candidate={candidate}"], capsys)


def test_check_long_flat_sum_still_works(capsys) -> None:
    """A sum of thousands of terms is regrouped into a shallow tree: it is checked, not refused."""
    g = "input x[N]\nconst r[N]\nL = dot(r, x)\n"
    cand = " - ".join(["r"] * 2001)  # r - r - r ... = -1999 r: a factor slip, 2001 terms
    from graphgrad import parse
    from graphgrad.checker import check

    res = check(parse(g), "L", "x", cand)
    assert not res.correct and "-1999" in res.diagnosis[0]
    res = check(parse(g), "L", "x", " + ".join(["r", "- r"] * 1000) + " + r")
    assert res.correct


def test_check_huge_fixed_dims_refused(tmp_path: Path, capsys) -> None:
    m = tmp_path / "huge.gg"
    m.write_text("input x[100000]\nparam W[100000, 100000]\nL = sum(W @ x)\n")
    err = bad(["check", str(m), "--of", "L", "--wrt", "x", "--candidate", "W.T @ x"], capsys)
    assert "10,000,000,000 numbers" in err


# --- files that are not plain, small, regular files


def _fifo(tmp: Path, name: str) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    p = tmp / name
    os.mkfifo(p)
    return p


def _argv(command: str, model: str) -> list[str]:
    extra = {"eval": ["--random", "0"], "derive": ["--of", "L"], "check": ["--of", "L", "--wrt", "x",
             "--candidate", "x"], "codegen": ["--of", "L"]}
    return [command, model, *extra.get(command, [])]


@pytest.mark.parametrize("command", WITH_MODEL)
def test_fifo_model_refused_without_blocking(command: str, tmp_path: Path, capsys) -> None:
    """A FIFO as MODEL blocked forever in open()."""
    err = bad(_argv(command, str(_fifo(tmp_path, "m.gg"))), capsys)
    assert "FIFO" in err and "not a regular file" in err


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_device_model_refused(device: str, capsys) -> None:
    """/dev/zero as MODEL read forever (and then ran out of memory)."""
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    err = bad(_argv("eval", device), capsys)
    assert "character device" in err


@pytest.mark.parametrize("command", WITH_MODEL)
def test_model_over_size_limit(command: str, tmp_path: Path, capsys) -> None:
    big = tmp_path / "big.gg"
    with open(big, "wb") as f:  # sparse: instant, but stat says 1 MiB + 1
        f.truncate(MAX_MODEL_BYTES + 1)
    err = bad(_argv(command, str(big)), capsys)
    assert "over the limit of 1 MiB" in err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
@pytest.mark.parametrize("command", WITH_MODEL)
def test_unreadable_model(command: str, tmp_path: Path, capsys) -> None:
    m = tmp_path / "secret.gg"
    m.write_text("input x\ny = x\n")
    m.chmod(0)
    err = bad(_argv(command, str(m)), capsys)
    assert "Permission denied" in err


def test_inputs_json_nested_100000_deep(tmp_path: Path, capsys) -> None:
    """RecursionError in json."""
    for text in ("[" * 100_000 + "]" * 100_000, '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"):
        (tmp_path / "deep.json").write_text(text)
        err = bad(["eval", MODEL, "--inputs", str(tmp_path / "deep.json")], capsys)
        assert "nested too deeply" in err


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_inputs_over_size_limit(suffix: str, tmp_path: Path, capsys) -> None:
    big = tmp_path / f"big{suffix}"
    with open(big, "wb") as f:
        f.truncate((MAX_JSON_BYTES if suffix == ".json" else MAX_NPZ_BYTES) + 1)
    err = bad(["eval", MODEL, "--inputs", str(big)], capsys)
    assert "over the limit" in err


@pytest.mark.parametrize("what", ["fifo.json", "fifo.npz", "/dev/zero", "directory"])
def test_inputs_not_a_regular_file(what: str, tmp_path: Path, capsys) -> None:
    if what == "/dev/zero" and not os.path.exists(what):
        pytest.skip("no /dev/zero")
    path = {"directory": str(tmp_path), "/dev/zero": what}.get(what) or str(_fifo(tmp_path, what))
    err = bad(["eval", MODEL, "--inputs", path], capsys)
    assert "not a regular file" in err


def test_npz_that_unpacks_past_the_limit(tmp_path: Path, capsys, monkeypatch) -> None:
    """A small .npz of zeros may unpack to gigabytes: its members' sizes count, not the file's."""
    monkeypatch.setattr(common, "MAX_NPZ_BYTES", 100_000)
    np.savez_compressed(tmp_path / "bomb.npz", x=np.zeros(50_000))  # ~400 kB unpacked, ~1 kB packed
    assert (tmp_path / "bomb.npz").stat().st_size < 100_000
    err = bad(["eval", MODEL, "--inputs", str(tmp_path / "bomb.npz")], capsys)
    assert "unpacks to" in err


def test_npz_whose_header_lies(tmp_path: Path, capsys) -> None:
    """A header claiming 10¹² numbers made NumPy allocate them before finding the data short."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    buf.write(bytes(64))
    with zipfile.ZipFile(tmp_path / "liar.npz", "w") as z:
        z.writestr("x.npy", buf.getvalue())
    err = bad(["eval", MODEL, "--inputs", str(tmp_path / "liar.npz")], capsys)
    assert "claims shape" in err


def test_inputs_whose_intermediates_would_not_fit(tmp_path: Path, capsys) -> None:
    """x[N] of 10⁵ numbers is small, but x @ x.T would hold 10¹⁰."""
    m = tmp_path / "outer.gg"
    m.write_text("input x[N]\nL = sum(x @ x.T)\n")
    np.savez(tmp_path / "x.npz", x=np.ones(100_000))
    err = bad(["eval", str(m), "--inputs", str(tmp_path / "x.npz")], capsys)
    assert "10,000,000,000 numbers" in err
    err = bad(["eval", str(m), "--random", "0", "--size", "N=100000"], capsys)
    assert "10,000,000,000 numbers" in err


def test_inputs_json_not_utf8(tmp_path: Path, capsys) -> None:
    (tmp_path / "v.json").write_bytes(b'{"x": "\xff"}')
    assert "not UTF-8" in bad(["eval", MODEL, "--inputs", str(tmp_path / "v.json")], capsys)


# --- outputs that cannot be written


def test_demo_out_dir_dev_full(capsys) -> None:
    """demo -o /dev/full: an OSError traceback."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    assert "not a directory" in bad(["demo", "-o", "/dev/full"], capsys)


def test_demo_out_dir_is_a_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "f").write_text("x")
    assert "not a directory" in bad(["demo", "-o", str(tmp_path / "f")], capsys)


@pytest.mark.parametrize("target", ["directory", "empty", "model", "missing-folder", "/dev/full"])
@pytest.mark.parametrize("command", ["codegen", "render"])
def test_output_that_cannot_be_written(command: str, target: str, tmp_path: Path, capsys) -> None:
    if target == "/dev/full" and (command == "render" or not os.path.exists("/dev/full")):
        pytest.skip("render picks the format from the suffix; /dev/full has none")
    model = tmp_path / "m.gg"
    model.write_text(Path(MODEL).read_text())
    out = {"directory": str(tmp_path), "empty": "", "model": str(model),
           "missing-folder": str(tmp_path / "no" / "such" / "x.svg"), "/dev/full": "/dev/full"}[target]
    argv = [command, str(model), "-o", out] + (["--of", "L"] if command == "codegen" else [])
    bad(argv, capsys)
    assert model.read_text() == Path(MODEL).read_text()  # never overwritten


class _FullStdout(io.StringIO):
    def write(self, s: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("argv", [["ops"], ["codegen", MODEL, "--of", "L"], ["derive", MODEL, "--of", "L"]])
def test_stdout_full(argv: list[str], capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdout", _FullStdout())
    assert "No space left on device" in bad(argv, capsys)


def test_real_process_stdout_dev_full() -> None:
    """Through the real entry point: no 'Exception ignored' from Python's final flush either."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "graphgrad", "ops"], stdout=full, stderr=subprocess.PIPE,
                           text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "No space left" in r.stderr, r.stderr


# --- codegen --name


@pytest.mark.parametrize("name", ["class", "np", "_helper", "λ", "1x", "a-b", "lambda", ""])
def test_codegen_name_must_make_a_module_that_parses(name: str, tmp_path: Path, capsys) -> None:
    """--name class wrote a module that does not parse, and exited 0."""
    out = tmp_path / "m.py"
    err = bad(["codegen", MODEL, "--of", "L", "--name", name, "-o", str(out)], capsys)
    assert "cannot name the generated function" in err and not out.exists()


def test_codegen_good_name_parses(tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.py"
    rc, _, _ = run_cli(["codegen", MODEL, "--of", "L", "--name", "grad_fn", "-o", str(out)], capsys)
    assert rc == 0 and "def grad_fn(" in out.read_text()
    import ast

    ast.parse(out.read_text())


# --- sizes, batches, seeds


@pytest.mark.parametrize("size", [["N=-1"], ["N=abc"], ["N=1e9"], ["N=0"], ["N=١٢"], ["N=99999999999999999999"],
                                  ["N=3", "N=4"], ["Q=3"], ["N=1000000000"], ["N=100000", "K=100000"],
                                  ["N=30000", "K=30000"]])
@pytest.mark.parametrize("command", ["eval", "render"])
def test_random_sizes_bounded(command: str, size: list[str], capsys) -> None:
    """--random never tries to allocate gigabytes: the sizes are checked against the model first."""
    bad([command, MODEL, "--random", "0", "--size", *size], capsys)


@pytest.mark.parametrize("size", [["N=-1"], ["N=abc"], ["N=1e9"], ["N=0"], ["N=3", "N=4"], ["Q=3"]])
def test_codegen_sizes_checked(size: list[str], capsys) -> None:
    bad(["codegen", MODEL, "--of", "L", "--size", *size], capsys)


@pytest.mark.parametrize("flags", [["--batch", "1000000000"], ["--batch", "100000", "--size", "N=10000"],
                                   ["--batch", "1e3"]])
def test_batch_bounded(flags: list[str], capsys) -> None:
    bad(["eval", MODEL, "--random", "0", *flags], capsys)


def test_repeated_size_flags_add_up(capsys) -> None:
    """--size N=2 --size K=1 used to keep only the last flag's bindings."""
    rc, out, _ = run_cli(["eval", MODEL, "--random", "0", "--size", "N=2", "--size", "K=1"], capsys)
    assert rc == 0 and re.search(r"W1\s+\[1, 2\]", out)


@pytest.mark.parametrize("flags", [["--random", "-5"], ["--random", str(2**64)], ["--random", "1.5"]])
def test_random_seed_bounded(flags: list[str], capsys) -> None:
    bad(["eval", MODEL, *flags], capsys)


@pytest.mark.parametrize("flags", [["--seed", "-5"], ["--seed", str(2**64)]])
def test_demo_seed_bounded(flags: list[str], capsys) -> None:
    bad(["demo", *flags], capsys)


# --- names and flags


@pytest.mark.parametrize("argv", [
    ["eval", MODEL, "--random", "0", "--of", "nope"],
    ["eval", MODEL, "--random", "0", "--of", "N"],
    ["eval", MODEL, "--random", "0", "--of", "L", "--wrt", "nope"],
    ["derive", MODEL, "--of", "nope"],
    ["derive", MODEL, "--of", "L", "--wrt", "nope"],
    ["derive", MODEL, "--of", "L", "--wrt", "N"],
    [*CHECK[:3], "nope", "--wrt", "x", "--candidate", "x"],
    [*CHECK[:3], "h", "--wrt", "x", "--candidate", "x"],
    [*CHECK[:3], "L", "--wrt", "nope", "--candidate", "x"],
    [*CHECK[:3], "L", "--wrt", "N", "--candidate", "x"],
    [*CHECK, "--candidate", "nope + x"],
    ["render", MODEL, "--of", "nope", "--random", "0"],  # was a NetworkXError traceback
    ["render", MODEL, "--of", "nope", "--backward"],
    ["render", MODEL, "--of", "y", "--backward"],
    ["render", MODEL, "--between", "nope", "L"],
    ["codegen", MODEL, "--of", "nope"],
    ["codegen", MODEL, "--of", "L", "--wrt", "nope"],
    ["codegen", MODEL, "--forward", "nope"],
    ["codegen", MODEL, "--of", "L", "--batch", "nope"],
], ids=lambda a: " ".join(x for x in a if x != MODEL))
def test_bad_names(argv: list[str], capsys) -> None:
    bad(argv, capsys)


@pytest.mark.parametrize("argv", [
    ["render", MODEL, "--backward", "--backward-only"],
    ["render", MODEL, "--scale", "0"], ["render", MODEL, "--scale", "nan"], ["render", MODEL, "--scale", "inf"],
    ["render", MODEL, "--scale", "-1"], ["render", MODEL, "--size", "N=3"],
    ["codegen", MODEL, "--forward", "--of", "L"], ["codegen", MODEL, "--forward", "--vjp"],
    ["codegen", MODEL, "--forward", "--reduce", "sum"], ["codegen", MODEL, "--of", "L", "--reduce", "sum"],
    ["codegen", MODEL, "--of", "L", "--vjp", "--reduce", "sum"], ["codegen", MODEL],
    ["eval", MODEL, "--random", "0", "--wrt", "x"], ["eval", MODEL, "--size", "N=3"],
    ["eval", MODEL, "--batch", "2"], ["eval", MODEL, "--inputs", "x.json", "--random", "0"],
    ["derive", MODEL, "--of", "L", "--expand"], ["derive", MODEL, "--of", "L", "--prime", "nope"],
    [*CHECK, "--candidate", "-x"],  # argparse takes -x for a flag (--help says: write --candidate=-x)
], ids=lambda a: " ".join(x for x in a if x != MODEL))
def test_conflicting_or_ignored_flags(argv: list[str], capsys) -> None:
    bad(argv, capsys)


def test_eval_inputs_with_size_is_refused(tmp_path: Path, capsys) -> None:
    np.savez(tmp_path / "v.npz", x=np.ones(3))
    assert "only with --random" in bad(["eval", MODEL, "--inputs", str(tmp_path / "v.npz"), "--size", "N=3"],
                                       capsys)


def test_no_command_is_one_error_line(capsys) -> None:
    rc, out, err = run_cli([], capsys)
    assert_clean_error(rc, err, [])
    assert "usage: graphgrad" in out  # the help still goes to stdout


def test_argparse_errors_are_one_line(capsys) -> None:
    err = bad(["eval", MODEL, "--random"], capsys)
    assert err.startswith("graphgrad eval: error: argument --random") and "graphgrad eval --help" in err


def test_traceback_on_request(monkeypatch) -> None:
    """GRAPHGRAD_TRACEBACK=1 lets the error through, for debugging."""
    from graphgrad.errors import GraphgradError

    monkeypatch.setenv("GRAPHGRAD_TRACEBACK", "1")
    with pytest.raises(GraphgradError):
        main(["eval", MODEL])


def test_internal_bugs_keep_their_traceback(monkeypatch) -> None:
    """Only bad input is turned into one line: a bug in graphgrad still raises."""
    from graphgrad.cli import ops

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(ops, "run", broken)
    with pytest.raises(ZeroDivisionError):
        main(["ops"])
