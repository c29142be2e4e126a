"""Check a hand-derived derivative, and say what went wrong when it is a recognisable slip.

:func:`check` compares a candidate for ∂of/∂wrt, written in the model syntax (names refer to the
graph's variables; ``dsigmoid(z)``, ``dtanh``, ``drelu`` are ops), with the reverse pass at random
points over several random sizes, every size name different (so K ≠ N and a missing transpose
cannot hide). When the two differ it looks for one of these slips:

* a missing transpose: the shapes do not fit (or fit only because a matrix is square), and
  transposing one or two operands makes the candidate right (or brings it closer);
* a missing path: the difference is exactly the contribution of one consumer branch (the residual
  path ``y = x + …`` contributes ȳ to x̄);
* an extra term, or a sign or factor error in one term or in the whole expression.

Everything is bounded, so that no candidate makes it hang or overflow the stack: ``trials`` is
1 to :data:`MAX_TRIALS`, the candidate at most :data:`MAX_CANDIDATE_CHARS` characters and
:data:`MAX_CANDIDATE_DEPTH` operators deep (a long flat sum ``a + b + ...`` of thousands of terms
is regrouped into a balanced tree first, so it stays shallow), and the search for slips gives up
on the kinds of slip whose search would take too long (saying so).

>>> import graphgrad as gg
>>> g = gg.parse("input x[N]\\nparam W[K, N]\\nconst r[K]\\nL = dot(r, W @ x)")
>>> check(g, "L", "x", "W.T @ r").correct
True
>>> print(check(g, "L", "x", "W @ r").diagnosis[0])  # doctest: +ELLIPSIS
missing transpose: ...
"""

from __future__ import annotations

import ast
import html
import io
import itertools
import keyword
import math
import tokenize
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .api import grad
from .autodiff import backward, check_of
from .errors import DerivationError, GraphgradError, NamingError, ParseError, ShapeError
from .frontends.text import _Parser
from .graph import Graph
from .interpret import evaluate
from .naming import pretty
from .shapes import fmt, normalize

TOL = 1e-7  # relative error below which a candidate is correct
MAX_TRIALS = 100
"""Most random size bindings :func:`check` tries (each wrong candidate's diagnosis costs about
70 ms per trial on the residual MLP)."""
MAX_SEED = 2**64 - 1
MAX_CANDIDATE_CHARS = 100_000
"""Longest candidate, in characters (as long as a line of a model file may be)."""
MAX_CANDIDATE_DEPTH = 100
"""Deepest nesting of operators in a candidate, after a long sum is regrouped (a derivative
written by hand is rarely ten deep)."""
MAX_CANDIDATE_NODES = 50_000
"""Most names, numbers and operators in a candidate."""
MAX_VALUE_ELEMENTS = 10_000_000
"""Most numbers in one value at a trial's sizes (a model with huge fixed dimensions)."""
_REGROUP = 32  # a sum of more top-level terms than this is regrouped into a balanced tree
_SEARCH_BUDGET = 100_000  # most candidate nodes built while searching for transposes
_MAX_TERM_SEARCH = 200  # most top-level terms searched for an extra or wrong term


_SLIPS = ("missing transpose", "missing path", "extra path", "sign error", "factor error", "extra term")
"""The kinds of slip :func:`check` recognises: a diagnosis line starting with one of these names it."""
_SHOWN_CHARS = 200  # longest candidate a repr shows in full


def _short(text: str, limit: int = _SHOWN_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters (a long candidate keeps its two ends)."""
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 41].rstrip() + " … " + one[-38:].lstrip()


@dataclass
class CheckResult:
    """The verdict on one candidate: ``correct``, ``max_error``, the ``sizes`` tried, ``diagnosis``.

    ``print(result)`` gives the full report; the repr (the REPL, a notebook cell's text) is a short
    summary, and notebooks show :meth:`_repr_html_`, a small table:

    >>> import graphgrad as gg
    >>> g = gg.parse("input x[N]\\nparam W[K, N]\\nconst r[K]\\nL = dot(r, W @ x)")
    >>> gg.check(g, "L", "x", "W @ r")  # doctest: +ELLIPSIS
    <CheckResult ∂L/∂x: wrong; slip: missing transpose>
      candidate: W @ r
      expected:  Wᵀ r
      diagnosis: missing transpose: the shapes do not fit (...); with W → W.T they do and the result is right
    >>> gg.check(g, "L", "x", "W.T @ r")  # doctest: +ELLIPSIS
    <CheckResult ∂L/∂x: correct>
      candidate: W.T @ r
      largest relative error: ... over 3 random sizes
    >>> gg.check(g, "L", "x", "W.T @ r").slips
    []
    >>> print(gg.check(g, "L", "x", "-(W.T @ r)")._repr_html_())  # doctest: +ELLIPSIS
    <table class="graphgrad-check">...<b style="color: #b00020">wrong</b>...sign error...</table>
    """

    of: str
    wrt: str
    candidate: str
    correct: bool
    max_error: float
    sizes: list[dict[str, int]]
    expected: str
    diagnosis: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.correct

    @property
    def slips(self) -> list[str]:
        """The kinds of slip the diagnosis found (``["missing transpose", "missing path"]``);
        empty when the candidate is right or its error is no single recognisable slip."""
        out = []
        for d in self.diagnosis:
            kind = d.partition(":")[0]
            if kind.startswith(_SLIPS) and kind not in out:
                out.append(kind)
        return out

    def _head(self) -> str:
        return f"∂{pretty(self.of)}/∂{pretty(self.wrt)}"

    def _error_text(self) -> str:
        return "none (the shapes do not fit)" if not np.isfinite(self.max_error) else f"{self.max_error:.1e}"

    def _sizes_text(self) -> str:
        return "; ".join(" ".join(f"{k}={v}" for k, v in s.items()) or "fixed" for s in self.sizes)

    def __str__(self) -> str:
        lines = [f"{'correct' if self.correct else 'wrong'}: {self.candidate}",
                 f"  largest relative error at random points: {self._error_text()}; sizes tried: {self._sizes_text()}",
                 f"  expected {self._head()} = " + self.expected.replace("\n", "\n  ")]
        if self.diagnosis:
            lines.append("  diagnosis:")
            lines += [f"    - {d}" for d in self.diagnosis]
        return "\n".join(lines)

    def __repr__(self) -> str:
        verdict = "correct" if self.correct else "wrong"
        slips = self.slips
        head = f"<CheckResult {self._head()}: {verdict}" + (
            f"; slip{'s' if len(slips) > 1 else ''}: {', '.join(slips)}" if slips else "") + ">"
        lines = [head, f"  candidate: {_short(self.candidate)}"]
        if self.correct:
            n = len(self.sizes)
            lines.append(f"  largest relative error: {self._error_text()} over {n} random size{'s' if n != 1 else ''}")
            return "\n".join(lines)
        lines.append("  expected:  " + self.expected.replace("\n", "\n             "))
        for i, d in enumerate(self.diagnosis):
            lines.append(("  diagnosis: " if i == 0 else "             ") + d)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """A small table for notebooks; every piece of text escaped."""
        e = html.escape
        color = "#1b7f3b" if self.correct else "#b00020"
        verdict = f'<b style="color: {color}">{"correct" if self.correct else "wrong"}</b>'
        rows = [("candidate", f"<code>{e(_short(self.candidate, 1000))}</code>"),
                ("expected", f'<span style="white-space: pre-wrap">{e(self.expected)}</span>'),
                ("largest relative error", e(self._error_text())),
                ("sizes tried", e(self._sizes_text()))]
        if self.slips:
            rows.append(("slip" + ("s" if len(self.slips) > 1 else ""), e(", ".join(self.slips))))
        if self.diagnosis:
            rows.append(("diagnosis", "<ul style=\"margin: 0\">" + "".join(f"<li>{e(d)}</li>" for d in self.diagnosis)
                         + "</ul>"))
        body = "".join(f'<tr><th style="text-align: left">{k}</th><td style="text-align: left">{v}</td></tr>'
                       for k, v in rows)
        return (f'<table class="graphgrad-check"><caption style="text-align: left">{e(self._head())}: {verdict}'
                f"</caption>{body}</table>")


# ----------------------------------------------------------------------------- building candidates


def _top_level_terms(text: str) -> list[tuple[int, str]] | None:
    """The signed top-level terms of a one-line sum (``a - b + c`` -> ``[(1, 'a'), (-1, 'b'),
    (1, 'c')]``), found with the tokenizer (no recursion); None when the text is not such a sum or
    has an operator binding more loosely than ``+`` at the top level."""
    if "\n" in text or "\r" in text:
        return None
    cuts: list[tuple[int, int, int]] = []  # (start of the operator, end, sign)
    level, prev = 0, None
    tight = {"+", "-", "*", "/", "@", "**", ".", "%", "//", "~"}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:  # it would swallow the parentheses added after it
                return None
            if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
                continue
            if tok.type == tokenize.OP:
                if tok.string in "([{":
                    level += 1
                elif tok.string in ")]}":
                    level -= 1
                elif level == 0:
                    if tok.string not in tight:
                        return None
                    binary = prev is not None and (prev.type in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING)
                                                   or prev.string in (")", "]", "}"))
                    if tok.string in "+-" and binary:
                        cuts.append((tok.start[1], tok.end[1], 1 if tok.string == "+" else -1))
            elif level == 0 and tok.type == tokenize.NAME and (keyword.iskeyword(tok.string)
                                                               or keyword.issoftkeyword(tok.string)):
                return None
            prev = tok
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    if level != 0 or not cuts:
        return None
    terms, start, sign = [], 0, 1
    for a, b, sg in cuts:
        terms.append((sign, text[start:a].strip()))
        start, sign = b, sg
    terms.append((sign, text[start:].strip()))
    return terms if all(t for _, t in terms) else None


def _balanced(terms: list[tuple[int, str]]) -> str:
    """``t1 ± t2 ± ...`` as a balanced tree of parenthesised sums: the same value, depth log2(n)."""
    parts = [f"({t})" if sign > 0 else f"(-({t}))" for sign, t in terms]
    while len(parts) > 1:
        parts = [f"({parts[i]} + {parts[i + 1]})" if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def _depth(tree: ast.AST) -> int:
    """How deep ``tree`` nests (iterative)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((k, d + 1) for k in ast.iter_child_nodes(node))
    return deepest


def _regroup(text: str) -> str:
    """``text``, or, for a sum of many terms, the same sum grouped as a balanced tree."""
    terms = _top_level_terms(text)
    return _balanced(terms) if terms is not None and len(terms) > _REGROUP else text


def _parse_expr(text: str) -> ast.expr:
    too_deep = ParseError(f"the candidate nests too deeply (more than {MAX_CANDIDATE_DEPTH} operators deep)",
                          hint="write a chain of products or transposes in fewer steps, or check it in parts")
    try:
        with warnings.catch_warnings():  # e.g. "invalid escape sequence": not the user's concern
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ParseError(f"the candidate is not an expression: {e.msg}", col=e.offset,
                         hint="write it in the model syntax, e.g. W1.T @ z") from None
    except (RecursionError, MemoryError):
        raise too_deep from None
    except ValueError as e:  # e.g. a NUL character
        raise ParseError(f"the candidate is not an expression: {e}", hint="write it in the model syntax") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_CANDIDATE_NODES:
        raise ParseError(f"the candidate has {nodes:,} names, numbers and operators (limit "
                         f"{MAX_CANDIDATE_NODES:,})", hint="check it in parts")
    if _depth(tree) > MAX_CANDIDATE_DEPTH + 2:  # + Expression and the root
        raise too_deep
    return tree.body


def build_candidate(graph: Graph, text: str) -> tuple[Graph, str]:
    """A copy of ``graph`` with the expression ``text`` added; returns (graph, node)."""
    p = _Parser("<candidate>")
    p.g = graph.copy()
    p.sizes = set(graph.size_names())
    name = "candidate"
    while name in p.g:
        name += "_"
    prefix = f"{name} = "
    try:
        p._equation(prefix + text, 1)
    except GraphgradError as e:
        col = None if e.col is None else max(1, e.col - len(prefix))
        raise type(e)(e.message, node=None if e.node == name else e.node, col=col, hint=e.hint) from None
    return p.g, name


def _sizes(graph: Graph, trials: int, rng: np.random.Generator) -> list[dict[str, int]]:
    """Size bindings with every size name different from every other (K ≠ N)."""
    names = graph.size_names()
    out = []
    for _ in range(trials):
        vals = rng.choice(np.arange(2, 2 + max(6, 2 * len(names))), size=len(names), replace=False)
        out.append({n: int(v) for n, v in zip(names, vals)})
    return out


def _check_sizes(graph: Graph, sizes: dict[str, int]) -> None:
    """Refuse a model whose values at ``sizes`` would not fit in memory (huge fixed dimensions)."""
    for n in graph.topo_order():
        shape = [sizes.get(d, 1) if isinstance(d, str) else int(d) for d in graph.shape(n)]
        count = math.prod(shape)
        if count > MAX_VALUE_ELEMENTS:
            raise ShapeError(f"{graph.describe(n)} would hold {count:,} numbers at the sizes tried "
                             f"(limit {MAX_VALUE_ELEMENTS:,})", hint="use size names (N, K) for large dimensions")


def _values(graph: Graph, sizes: dict[str, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    vals = {}
    for n in graph.leaves():
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in graph.shape(n))
        vals[n] = rng.uniform(0.3, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    return vals


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b), initial=0.0) / max(1.0, float(np.max(np.abs(b), initial=0.0))))


class _Trial:
    """The values at one random point, the expected gradient, and a cache of candidate values."""

    def __init__(self, graph: Graph, of: str, wrt: str, sizes: dict[str, int], rng: np.random.Generator):
        self.sizes = sizes
        for _ in range(5):
            self.vals = _values(graph, sizes, rng)
            self.truth = np.asarray(grad(graph, of, wrt, self.vals)[wrt], dtype=np.float64)
            if np.all(np.isfinite(self.truth)):
                break

    def value(self, g: Graph, node: str) -> np.ndarray:
        return np.asarray(evaluate(g, self.vals, outputs=[node], sizes=self.sizes)[node], dtype=np.float64)


# ----------------------------------------------------------------------------- transposes


def _transpose_sites(tree: ast.expr, graph: Graph) -> list[tuple[int, str]]:
    """Places where a transpose may be missing or extra: matmul operands, matrix and vector names."""
    sites: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            sites += [(id(node.left), "wrap"), (id(node.right), "wrap")]
        if isinstance(node, ast.Name) and node.id in graph and normalize(graph.shape(node.id)):
            sites.append((id(node), "wrap"))
        if isinstance(node, ast.Attribute) and node.attr == "T":
            sites.append((id(node), "unwrap"))
    sites.append((id(tree), "wrap"))
    seen, out = set(), []
    for s in sites:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def _toggle(tree: ast.expr, picks: set[int]) -> ast.expr:
    """A copy of ``tree`` with the transposes at ``picks`` added (or removed, on ``.T`` nodes)."""

    class T(ast.NodeTransformer):
        def visit(self, node: ast.AST) -> ast.AST:
            key = id(node)
            new = self.generic_visit(node)
            if key in picks:
                if isinstance(node, ast.Attribute) and node.attr == "T":
                    return new.value  # type: ignore[attr-defined]
                return ast.Attribute(value=new, attr="T", ctx=ast.Load())
            return new

    copies = _clone(tree)
    clone = copies[id(tree)]
    picks = {id(copies[p]) for p in picks}
    return ast.fix_missing_locations(T().visit(clone))


def _clone(tree: ast.AST) -> dict[int, ast.AST]:
    """A deep copy of ``tree``, made without recursion: id(original node) -> its copy."""
    new: dict[int, ast.AST] = {}
    for node in reversed(list(ast.walk(tree))):  # ast.walk lists parents before their children
        fields = {}
        for name, value in ast.iter_fields(node):
            if isinstance(value, ast.AST):
                value = new[id(value)]
            elif isinstance(value, list):
                value = [new[id(v)] if isinstance(v, ast.AST) else v for v in value]
            fields[name] = value
        c = type(node)(**fields)
        for a in node._attributes:
            if hasattr(node, a):
                setattr(c, a, getattr(node, a))
        new[id(node)] = c
    return new


def _describe_toggle(tree: ast.expr, picks: set[int]) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if id(node) in picks:
            src = ast.unparse(node)
            if isinstance(node, ast.Attribute) and node.attr == "T":
                out.append(f"{src} → {ast.unparse(node.value)}")
            else:
                src = src if isinstance(node, (ast.Name, ast.Call, ast.Attribute)) else f"({src})"
                out.append(f"{src} → {src}.T")
    return out


# ----------------------------------------------------------------------------- paths


def _named_consumer(graph: Graph, c: str) -> str:
    """The user-named node whose equation contains node ``c``."""
    n = c
    while not graph.is_named(n):
        succ = graph.consumers(n)
        if not succ:
            return n
        n = succ[0]
    return n


def _branches(graph: Graph, of: str, wrt: str) -> list[tuple[str, str, str]]:
    """(variable, consumer, contribution node) for each consumer of every node used twice."""
    bw = backward(graph, of)
    keep = graph.ancestors(of) | {of}
    out = []
    for v, contribs in bw.contributions.items():
        if len(contribs) < 2 or v not in keep:
            continue
        if v != wrt and wrt not in graph.ancestors(v):
            continue
        for cons, node in contribs:
            out.append((v, cons, node))
    return out


def _branch_effect(graph: Graph, of: str, wrt: str, v: str, node: str, trial: _Trial) -> np.ndarray:
    """What the contribution ``node`` to v̄ adds to ∂of/∂wrt at the trial's point."""
    bw = backward(graph, of)
    contrib = np.asarray(evaluate(bw.graph, trial.vals, outputs=[node], sizes=trial.sizes)[node], dtype=np.float64)
    shape = normalize(graph.shape(v))
    if contrib.shape != tuple(trial.sizes.get(d, d) if isinstance(d, str) else d for d in shape):
        contrib = np.broadcast_to(contrib, tuple(trial.sizes.get(d, d) if isinstance(d, str) else d
                                                 for d in shape))
    if v == wrt:
        return contrib
    g = graph.copy()
    name = "checkC"
    while name in g:
        name += "_"
    C = g.const(name, graph.shape(v))
    g.apply("sum", g.apply("mul", C, g[v]), name=name + "L")
    return np.asarray(grad(g, name + "L", wrt, {**trial.vals, name: contrib})[wrt], dtype=np.float64)


def _path_text(graph: Graph, of: str, wrt: str, v: str, cons: str) -> str:
    from .printing.text import to_text
    from .symbolic import model_rank, sweep

    sw = sweep(graph, of)
    conv = sw.converter
    assert conv is not None
    named = _named_consumer(graph, cons)
    conv(named)
    defn = to_text(conv.definition(named), model_rank(graph))
    contrib = ""
    for c, n in sw.contributions.get(v, []):
        if c == cons:
            contrib = to_text(conv(n))
    residual = graph.op(cons) in ("add", "sub") and v in graph.args(cons)
    V = pretty(v)
    via = f"{pretty(named)} = {defn}"
    text = (f"{V} also feeds {via} directly (the residual path), which" if residual
            else f"{V} also reaches {pretty(of)} through {via}; that path")
    text += f" contributes {contrib} to {pretty(v, bar=True)}"
    if v != wrt:
        text += f", and through it to ∂{pretty(of)}/∂{pretty(wrt)}"
    return text


# ----------------------------------------------------------------------------- terms


def _terms(tree: ast.expr) -> list[tuple[ast.expr, int]]:
    """Top-level additive terms with their signs."""
    out: list[tuple[ast.expr, int]] = []
    stack = [(tree, 1)]
    while stack:
        node, sign = stack.pop()
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            stack.append((node.right, sign if isinstance(node.op, ast.Add) else -sign))
            stack.append((node.left, sign))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            stack.append((node.operand, -sign))
        else:
            out.append((node, sign))
    return out


# ----------------------------------------------------------------------------- the checker


def check(graph: Graph, of: str, wrt: str, candidate: str, *, trials: int = 3, seed: int = 0,
          tol: float = TOL) -> CheckResult:
    """Is ``candidate`` (model syntax) ∂of/∂wrt? Compared at random points over ``trials`` random
    sizes with distinct size values; a wrong candidate gets a diagnosis of the slip."""
    from .symbolic import derivative

    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or not 1 <= trials <= MAX_TRIALS:
        raise GraphgradError(f"trials must be an integer from 1 to {MAX_TRIALS}, got {trials!r}", hint="e.g. trials=3")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise GraphgradError(f"seed must be an integer from 0 to 2**64 - 1, got {seed!r}", hint="e.g. seed=0")
    check_of(graph, of)
    if not isinstance(wrt, str) or wrt not in graph or not graph.is_named(wrt):
        raise NamingError(f"wrt {wrt!r} is not a variable of the model", node=str(wrt),
                         hint="wrt must name a variable: " + ", ".join(graph.named_nodes()))
    if not isinstance(candidate, str) or not candidate.strip():
        raise ParseError("the candidate is empty", hint="write an expression, e.g. W1.T @ z")
    if len(candidate) > MAX_CANDIDATE_CHARS:
        raise ParseError(f"the candidate is {len(candidate):,} characters long (limit {MAX_CANDIDATE_CHARS:,})",
                         hint="check it in parts")
    source = _regroup(candidate.strip())  # a long flat sum, as a shallow tree
    tree = _parse_expr(source)
    expected = str(derivative(graph, of, wrt)).split(" = ", 1)[1]  # shared parts stay in 'where'
    rng = np.random.default_rng(seed)
    sizes = _sizes(graph, trials, rng)
    for sz in sizes:
        _check_sizes(graph, sz)
    runs = [_Trial(graph, of, wrt, s, rng) for s in sizes]
    want_shape = normalize(graph.shape(wrt))
    diagnosis: list[str] = []

    def attempt(text: str, quick: bool = False) -> tuple[float, list[np.ndarray] | None, str | None]:
        """(largest error, candidate values per trial, why it failed to build); ``quick`` stops
        after the first trial when that one is already wrong."""
        try:
            g, node = build_candidate(graph, text)
        except ShapeError as e:
            msg = e.message
            op, _, rest = msg.partition(": ")
            return float("inf"), None, rest if rest.startswith(op) else msg
        except GraphgradError:
            raise
        got = normalize(g.shape(node))
        if got != want_shape and got != ():
            return float("inf"), None, f"the result has shape {fmt(got)}, but {wrt} has shape {fmt(want_shape)}"
        values = []
        for r in runs:
            v = np.broadcast_to(r.value(g, node), r.truth.shape)
            values.append(v)
            if quick and _rel(v, r.truth) > tol:
                break
        return max(_rel(v, r.truth) for v, r in zip(values, runs)), values, None

    try:
        err, values, why = attempt(source)
    except GraphgradError as e:
        if source == candidate.strip():
            raise
        raise type(e)(e.message, node=e.node, hint=e.hint) from None  # columns of the regrouped text
    result = CheckResult(of, wrt, candidate, err <= tol, err, [r.sizes for r in runs], expected, diagnosis)
    if result.correct:
        return result

    # 1. transposes: the shapes do not fit, or fit only because a matrix is square
    work_tree, work_values, work_err = tree, values, err
    sites = _transpose_sites(tree, graph)
    size = sum(1 for _ in ast.walk(tree))
    best: tuple[float, set[int], list[np.ndarray] | None] | None = None
    searched = 0  # the most operands changed at once that the search covered
    for k in (1, 2, 3) if values is None else (1, 2):
        if math.comb(len(sites), k) * size > _SEARCH_BUDGET:
            break
        searched = k
        found = False
        for combo in itertools.combinations([s for s, _ in sites], k):
            picks = set(combo)
            e, vals, _ = attempt(ast.unparse(_toggle(tree, picks)), quick=True)
            if vals is not None and (best is None or e < best[0] - 1e-12):
                best = (e, picks, vals)
                found = found or e <= tol
        if found or (best is not None and values is None):
            break
    if best is not None and best[2] is not None and len(best[2]) < len(runs):
        e, vals, _ = attempt(ast.unparse(_toggle(tree, best[1])))
        best = (e, best[1], vals)
    if best is not None and (values is None or best[0] <= tol):
        fixes = ", ".join(_describe_toggle(tree, best[1]))
        if values is None:
            head = f"missing transpose: the shapes do not fit ({why})"
        else:
            square = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in graph
                      and len(normalize(graph.shape(n.id))) == 2]
            head = "missing transpose: the shapes fit only because " + (
                ", ".join(square) + " is square" if square else "the sizes are equal")
        diagnosis.append(f"{head}; with {fixes} they do" + (" and the result is right" if best[0] <= tol
                                                             else ""))
        work_tree, work_values, work_err = _toggle(tree, best[1]), best[2], best[0]
    elif values is None:
        if searched == 3:
            diagnosis.append(f"the shapes do not fit ({why}), and no transpose of one to three operands fixes them")
        elif searched:
            diagnosis.append(f"the shapes do not fit ({why}), and no transpose of one or {searched} operands "
                             "fixes them (the candidate is too large to search further)")
        else:
            diagnosis.append(f"the shapes do not fit ({why}); the candidate is too large to search for a "
                             "missing transpose")
        return result
    if work_err <= tol:
        return result
    assert work_values is not None

    # 2. the whole expression off by a sign or a factor
    truth = [r.truth for r in runs]
    num = sum(float(np.sum(v * t)) for v, t in zip(work_values, truth))
    den = sum(float(np.sum(t * t)) for t in truth)
    k = num / den if den else 0.0
    if den and all(_rel(v, k * t) <= 1e-6 for v, t in zip(work_values, truth)):
        if abs(k + 1) < 1e-6:
            diagnosis.append("sign error: the candidate is the negative of the derivative")
        else:
            diagnosis.append(f"factor error: the candidate is {k:.6g} times the derivative")
        return result

    # 3. a missing or doubled path
    diffs = [t - v for v, t in zip(work_values, truth)]
    for v, cons, node in _branches(graph, of, wrt):
        effects = [_branch_effect(graph, of, wrt, v, node, r) for r in runs]
        for mult, what in ((1, "missing path"), (-1, "extra path (counted twice)"),
                           (2, "sign error in a path")):
            if all(_rel(d, mult * e) <= 1e-6 for d, e in zip(diffs, effects)) and \
                    any(np.max(np.abs(e)) > 1e-9 for e in effects):
                diagnosis.append(f"{what}: {_path_text(graph, of, wrt, v, cons)}")
                return result

    # 4. one term extra, of the wrong sign, or off by a factor
    terms = _terms(work_tree)
    if len(terms) > _MAX_TERM_SEARCH:
        diagnosis.append(f"not recognised as one slip (relative error {work_err:.1e}); with {len(terms)} terms "
                         "the candidate is too large to search for an extra or wrong term")
        return result
    if len(terms) > 1:
        for t, sign in terms:
            try:
                g, node = build_candidate(graph, ast.unparse(t))
            except GraphgradError:
                continue
            tv = [np.broadcast_to(r.value(g, node), r.truth.shape) for r in runs]
            rest = [v - sign * x for v, x in zip(work_values, tv)]
            src = ast.unparse(t)
            if all(_rel(rv, tr) <= 1e-6 for rv, tr in zip(rest, truth)):
                diagnosis.append(f"extra term: {'−' if sign < 0 else '+'}{src} does not belong")
                return result
            if all(_rel(rv - sign * x, tr) <= 1e-6 for rv, x, tr in zip(rest, tv, truth)):
                diagnosis.append(f"sign error: the term {src} should have the opposite sign")
                return result
            n2 = sum(float(np.sum(x * (tr - rv))) for x, tr, rv in zip(tv, truth, rest))
            d2 = sum(float(np.sum(x * x)) for x in tv)
            if d2:
                f = n2 / d2
                if all(_rel(rv + f * x, tr) <= 1e-6 for rv, x, tr in zip(rest, tv, truth)):
                    diagnosis.append(f"factor error: the term {src} should be multiplied by "
                                     f"{f / sign:.6g}")
                    return result
    diagnosis.append(f"not a single recognisable slip (relative error {work_err:.1e}); "
                     f"compare term by term with the expected expression")
    return result


def check_all(graph: Graph, of: str, candidates: Mapping[str, str], **kw: Any) -> dict[str, CheckResult]:
    """:func:`check` for several ``wrt -> candidate`` pairs."""
    return {w: check(graph, of, w, c, **kw) for w, c in candidates.items()}


__all__ = ["check", "check_all", "CheckResult", "build_candidate", "DerivationError", "MAX_TRIALS", "MAX_CANDIDATE_CHARS",
           "MAX_CANDIDATE_DEPTH", "MAX_CANDIDATE_NODES"]
