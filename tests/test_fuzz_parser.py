"""Fuzzing the model-text parser: every input parses or raises a located GraphgradError.

The contract checked on every input (:func:`check`): ``parse`` returns a Graph, or raises a
``GraphgradError`` whose line and column are set and lie inside the text; never another
exception, never a warning, never a hang, and never code execution (a ``sys`` audit hook
watches for ``exec``, imports, processes, sockets and file opens while parsing).

Inputs: hypothesis text (any Unicode), token soups of model pieces and hostile snippets,
mutations of valid models, a list of hand-written attacks, and random bytes through ``load``.

A longer campaign, outside pytest: ``python tests/test_fuzz_parser.py 100000`` runs that many
seeded random mutations and prints the counts.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphgrad as gg
from graphgrad.frontends.text import MAX_LINE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from strategies import chain_text, examples  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VALID = (ROOT / "examples" / "residual_mlp.gg").read_text(encoding="utf-8")
EVERY_OP = """# every public op once
input x[N]  X[N, B]
param W[K, N]  b[K]  c
const r[K]
z = W @ x + b - c
h = sigmoid(z) * tanh(z) / (1.5 + relu(z))
u = exp(-h) + log(1 + h ** 2) + sqrt(dsigmoid(h) + dtanh(h) + drelu(h))
m = mean(X.T @ x) + sum(W @ X)
L = norm(u) + dot(r, h) + m / N
"""
BASES = (VALID, EVERY_OP, chain_text(4))
COUNTS: Counter = Counter()  # inputs tried, by source and outcome
SLOW = 5.0  # seconds: anything slower counts as a hang

# ----------------------------------------------------------------------------- the contract

_WATCH = ("exec", "import", "os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn",
          "socket.connect", "open", "ctypes.dlopen", "os.remove", "shutil.rmtree")
_events: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _events is None or not event.startswith(_WATCH):
        return
    if event == "exec" and "networkx" in getattr(args[0], "co_filename", ""):
        return  # networkx compiles its argmap decorators on first use
    if event == "open" and args[0] == "<unknown>":
        return  # CPython looks for the source line of a SyntaxError in a file named like this
    _events.append(f"{event}{args!r:.80}")


sys.addaudithook(_audit)


def check(text: str, source: str = "text") -> str:
    """Parse ``text`` and check the contract; returns "ok" or the error class name."""
    global _events
    COUNTS[source] += 1
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _events = []
        try:
            graph = gg.parse(text)
            outcome = "ok"
        except gg.GraphgradError as e:
            outcome = type(e).__name__
            _located(e, text)
        finally:
            events, _events = _events, None
    assert not events, f"parsing ran code: {events}"
    assert not caught, f"warnings leaked: {[str(w.message) for w in caught]}"
    assert time.perf_counter() - t0 < SLOW, f"parsing took {time.perf_counter() - t0:.1f} s"
    if outcome == "ok":
        assert len(graph) > 0
        graph.validate()
    COUNTS[f"{source}:{outcome}"] += 1
    return outcome


def _located(e: gg.GraphgradError, text: str) -> None:
    lines = text.splitlines() or [""]
    assert isinstance(e.line, int) and isinstance(e.col, int), f"error without line/col: {e!r}"
    assert 1 <= e.line <= len(lines), f"line {e.line} outside 1..{len(lines)}: {e}"
    assert 1 <= e.col <= len(lines[e.line - 1]) + 1, \
        f"col {e.col} outside line {e.line} ({len(lines[e.line - 1])} chars): {e}"
    assert "\n" not in str(e), "an error message is one line"


# ----------------------------------------------------------------------------- strategies

HOSTILE = (
    "__import__('os').system('touch /tmp/graphgrad-pwned')", "__import__", "x.__class__",
    "x.__class__.__base__.__subclasses__()", "().__class__", "x.__dict__", "globals()", "eval('1')",
    "exec('1')", "open('/etc/passwd')", "lambda: 0", "[i for i in x]", "f'{x}'", "x if x else x",
    "(y := x)", "x[0]", "x[::]", "{x}", "{1: x}", "*x", "**x", "await x", "yield x", "x and x", "not x",
    "x < x", "x // x", "x % x", "x << 1", "x | x", "~x", "1e308 * 1e308", "2 ** 99999999", "9 ** 9 ** 9",
    "1" * 400, "1e999", "-1e999", "0.0 / 0.0", "1 / 0", "(-8) ** 0.5", "1j", "True", "None", "'s'", "b's'",
    "...", "x.T.T.T", "x . T", "sigmoid()", "sigmoid(x, x)", "sigmoid(x=x)", "dot(*x)", "unit(x)",
    "sum_to(x, x)", "id(x)", "input", "param", "const", "T", "_t1", "x_bar", "\\", "\t", "\r", "\x0c",
    "\u2028", "\ufeff", "ｘ", "αβγ", "#", "=", "==", ":=", ";", ",", "(", ")", "[", "]", "@", "**",
)
TOKENS = (
    "input ", "param ", "const ", "x", "y", "W", "b", "N", "K", "[", "]", "[N]", "[K, N]", "[0]", "[1, 2, 3]",
    ", ", " = ", " + ", " - ", " * ", " / ", " @ ", " ** ", "-", ".T", "(", ")", "sigmoid(", "norm(", "dot(",
    "sum(", "log(", "2", "0.5", "1e-3", "\n", "\n", "  ", "# c\n", *HOSTILE,
)


@st.composite
def mutants(draw, base: st.SearchStrategy[str] | None = None) -> str:
    """A valid model with a few random edits (insert/delete/replace/duplicate/swap/truncate)."""
    text = draw(base if base is not None else st.sampled_from(BASES))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("insert", "delete", "replace", "dup", "swap", "truncate", "char")))
        i = draw(st.integers(0, len(text)))
        if kind == "insert":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
        elif kind == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 12)):]
        elif kind == "replace":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i + draw(st.integers(1, 6)):]
        elif kind == "char":
            text = text[:i] + draw(st.characters()) + text[i + 1:]
        elif kind == "truncate":
            text = text[:i]
        else:
            lines = text.splitlines()
            if len(lines) > 1:
                a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
                if kind == "dup":
                    lines.insert(b, lines[a])
                else:
                    lines[a], lines[b] = lines[b], lines[a]
                text = "\n".join(lines)
    return text


# ----------------------------------------------------------------------------- tests


@settings(max_examples=examples(200))
@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    check(text, "unicode")


@settings(max_examples=examples(200))
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_token_soup(text: str) -> None:
    check(text, "tokens")


@settings(max_examples=examples(200))
@given(st.lists(st.sampled_from(TOKENS), max_size=12).map(lambda ts: "input x[N]\nparam W[K, N]\ny = " + "".join(ts)))
def test_equation_soup(text: str) -> None:
    check(text, "equations")


@settings(max_examples=examples(200))
@given(mutants())
def test_mutated_models(text: str) -> None:
    check(text, "mutants")


@settings(max_examples=examples(60))
@given(st.binary(max_size=200) | st.text(max_size=100).map(lambda t: t.encode("utf-16")))
def test_any_bytes_through_load(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "model.gg"
    path.write_bytes(data)
    COUNTS["bytes"] += 1
    try:
        gg.load(path)
    except gg.GraphgradError as e:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            assert e.line is not None and e.col is not None and "UTF-8" in e.message, str(e)
            return
        _located(e, text)


DEEP = 100_000


@pytest.mark.parametrize("text", [
    pytest.param("input x\ny = " + h, id=h[:30]) for h in HOSTILE
] + [
    pytest.param("input x\ny = " + "(" * n + "x" + ")" * n, id=f"parens-{n}") for n in (50, 199, 200, 1000, DEEP)
] + [
    pytest.param("input x\ny = " + "-" * DEEP + "x", id="unary-100k"),
    pytest.param("input x\ny = " + "sigmoid(" * 1000 + "x" + ")" * 1000, id="calls-1000"),
    pytest.param("input x\ny = " + " + ".join(["x"] * 20_000), id="sum-20k-terms"),
    pytest.param("input x\ny = " + "x" + ".T" * 20_000, id="transpose-20k"),
    pytest.param("input x\ny = x ** " + "9" * 5000, id="exponent-5000-digits"),
    pytest.param("input x\ny = x ** 1e308", id="exponent-1e308"),
    pytest.param("input x\ny = x * " + "1" * 400, id="int-beyond-float"),
    pytest.param("input x\ny = " + "x" * (MAX_LINE + 1), id="line-over-limit"),
    pytest.param("input x\ny = x" + " " * (1 << 20), id="1MB-line"),
    pytest.param("# " + "a" * (1 << 20) + "\ninput x", id="1MB-comment"),
    pytest.param("input x\ny = x\x00", id="NUL"),
    pytest.param("\x00", id="NUL-only"),
    pytest.param("input x\ny = ααα + foo", id="non-ascii-col"),
    pytest.param("input x[" + "N," * 10_000 + "]", id="10k-dims"),
    pytest.param("input " + " ".join(f"x{i}" for i in range(20_000)), id="20k-declarations"),
    pytest.param("input x[99999999999999999999999]", id="huge-dim"),
    pytest.param("input x[-1]", id="negative-dim"),
    pytest.param("input x\n" * 3, id="redeclared"),
    pytest.param("", id="empty"),
    pytest.param("\n\n   \n# only comments\n", id="blank"),
])
def test_hostile(text: str) -> None:
    check(text, "hostile")


def test_hostile_is_not_executed(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    for payload in (f"__import__('os').system('touch {target}')", f"open('{target}', 'w')",
                    f"exec(\"open('{target}', 'w')\")"):
        with pytest.raises(gg.GraphgradError):
            gg.parse(f"input x\ny = {payload}")
    assert not target.exists()


# ----------------------------------------------------------------------------- regressions


@pytest.mark.parametrize("text, col", [
    ("input x\ny = x * " + "1" * 400, 9),  # was OverflowError: int too large to convert to float
    ("input x\ny = x * (-8.0) ** 0.5", 9),  # was TypeError: float() of a complex constant
    ("input x\nä = x + foo", 9),  # ast columns count UTF-8 bytes: was col 10
    ("input x\ny = x\x00", 6),  # was a ParseError without a column
    ("", 1),  # was a ParseError without line and column
])
def test_regressions_located(text: str, col: int) -> None:
    with pytest.raises(gg.GraphgradError) as info:
        gg.parse(text)
    assert info.value.col == col, str(info.value)


def test_regression_column_counts_characters() -> None:
    line = "ä = x + foo"
    with pytest.raises(gg.NamingError) as info:
        gg.parse("input x\n" + line)
    assert line[info.value.col - 1:].startswith("foo"), str(info.value)


def test_regression_no_warning_leaks() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(gg.ParseError):
            gg.parse("input x\ny = x + '\\d'")  # was: DeprecationWarning invalid escape sequence
    assert not caught


def test_report_counts() -> None:
    """Runs last in this file: prints how many inputs were tried (pytest -s shows it)."""
    total = sum(v for k, v in COUNTS.items() if ":" not in k)
    print(f"\nparser fuzzing: {total} inputs; " + ", ".join(f"{k}={v}" for k, v in sorted(COUNTS.items())))
    assert total > 0 or not COUNTS


# ----------------------------------------------------------------------------- a longer campaign


def campaign(n: int, seed: int = 0) -> Counter:
    """``n`` seeded random mutations of the example model and of token soups, outside hypothesis."""
    import random

    rng = random.Random(seed)
    for _ in range(n):
        if rng.random() < 0.5:
            text = rng.choice(BASES)
            for _ in range(rng.randint(1, 4)):
                i = rng.randint(0, len(text))
                r = rng.random()
                if r < 0.4:
                    text = text[:i] + rng.choice(TOKENS) + text[i:]
                elif r < 0.7:
                    text = text[:i] + text[i + rng.randint(1, 12):]
                elif r < 0.9:
                    text = text[:i] + chr(rng.randint(0, 0x2FFF)) + text[i + 1:]
                else:
                    text = text[:i]
            check(text, "campaign-mutants")
        else:
            check("".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 40))), "campaign-tokens")
    return COUNTS


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    t0 = time.perf_counter()
    counts = campaign(n)
    print(f"{n} inputs in {time.perf_counter() - t0:.1f} s, no contract violation")
    for k, v in sorted(counts.items()):
        print(f"  {k:<32} {v}")
