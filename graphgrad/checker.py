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

>>> import graphgrad as gg
>>> g = gg.parse("input x[N]\\nparam W[K, N]\\nconst r[K]\\nL = dot(r, W @ x)")
>>> check(g, "L", "x", "W.T @ r").correct
True
>>> print(check(g, "L", "x", "W @ r").diagnosis[0])  # doctest: +ELLIPSIS
missing transpose: ...
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .autodiff import backward, check_of
from .errors import DerivationError, GraphgradError, NamingError, ParseError, ShapeError
from .evaluate import evaluate, grad
from .frontends.text import _Parser
from .graph import Graph
from .naming import pretty
from .shapes import fmt, normalize

TOL = 1e-7  # relative error below which a candidate is correct


@dataclass
class CheckResult:
    """The verdict on one candidate: ``correct``, ``max_error``, the ``sizes`` tried, ``diagnosis``."""

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

    def __str__(self) -> str:
        head = f"∂{pretty(self.of)}/∂{pretty(self.wrt)}"
        sizes = "; ".join(" ".join(f"{k}={v}" for k, v in s.items()) or "fixed" for s in self.sizes)
        err = "none (the shapes do not fit)" if not np.isfinite(self.max_error) else f"{self.max_error:.1e}"
        lines = [f"{'correct' if self.correct else 'wrong'}: {self.candidate}",
                 f"  largest relative error at random points: {err}; sizes tried: {sizes}",
                 f"  expected {head} = " + self.expected.replace("\n", "\n  ")]
        if self.diagnosis:
            lines.append("  diagnosis:")
            lines += [f"    - {d}" for d in self.diagnosis]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- building candidates


def _parse_expr(text: str) -> ast.expr:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ParseError(f"the candidate is not an expression: {e.msg}", col=e.offset,
                         hint="write it in the model syntax, e.g. W1.T @ z") from None
    return tree.body


def build(graph: Graph, text: str) -> tuple[Graph, str]:
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

    import copy

    mapping: dict[int, int] = {}
    clone = copy.deepcopy(tree)
    for a, b in zip(ast.walk(tree), ast.walk(clone)):
        mapping[id(a)] = id(b)
    picks = {mapping[p] for p in picks}
    return ast.fix_missing_locations(T().visit(clone))


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

    check_of(graph, of)
    if wrt not in graph or not graph.is_named(wrt):
        raise NamingError(f"wrt {wrt!r} is not a variable of the model", node=str(wrt),
                         hint="wrt must name a variable: " + ", ".join(graph.named_nodes()))
    if not isinstance(candidate, str) or not candidate.strip():
        raise ParseError("the candidate is empty", hint="write an expression, e.g. W1.T @ z")
    expected = str(derivative(graph, of, wrt)).split(" = ", 1)[1]  # shared parts stay in 'where'
    rng = np.random.default_rng(seed)
    runs = [_Trial(graph, of, wrt, s, rng) for s in _sizes(graph, trials, rng)]
    tree = _parse_expr(candidate)
    want_shape = normalize(graph.shape(wrt))
    diagnosis: list[str] = []

    def attempt(text: str, quick: bool = False) -> tuple[float, list[np.ndarray] | None, str | None]:
        """(largest error, candidate values per trial, why it failed to build); ``quick`` stops
        after the first trial when that one is already wrong."""
        try:
            g, node = build(graph, text)
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

    err, values, why = attempt(candidate)
    result = CheckResult(of, wrt, candidate, err <= tol, err, [r.sizes for r in runs], expected, diagnosis)
    if result.correct:
        return result

    # 1. transposes: the shapes do not fit, or fit only because a matrix is square
    work_tree, work_values, work_err = tree, values, err
    sites = _transpose_sites(tree, graph)
    best: tuple[float, set[int], list[np.ndarray] | None] | None = None
    for k in (1, 2, 3) if values is None else (1, 2):
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
        diagnosis.append(f"the shapes do not fit ({why}), and no transpose of one to three operands fixes them")
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
    if len(terms) > 1:
        for t, sign in terms:
            try:
                g, node = build(graph, ast.unparse(t))
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


__all__ = ["check", "check_all", "CheckResult", "build", "DerivationError"]
