"""One derivative: :func:`derivative` gives ∂of/∂wrt as one matrix expression (:class:`Derivative`).

The adjoints of the symbolic sweep are substituted into one another (``_inline``): small ones
and ones used once are inlined, the rest stay shared ``where`` clauses. For a vector ``of`` the
result is the Jacobian, read off as the linear map of the cotangent (``_linear_map``).
:meth:`Derivative.evaluate` computes the value from the SymPy expression itself (``lambdify``),
independently of :mod:`graphgrad.interpret`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp
from sympy import (
    HadamardProduct,
    Identity,
    MatAdd,
    MatMul,
    MatrixExpr,
    MatrixSymbol,
    OneMatrix,
    Transpose,
    ZeroMatrix,
)

from ..arguments import check_graph, check_mapping, check_node_name
from ..errors import DerivationError, NamingError, node_label, shown
from ..feed import prepare
from ..graph import LEAF_OPS, Graph
from ..shapes import is_scalar, matrix_form, normalize
from .equations import _latex, _present, _text, adjoint_symbol, model_rank, sweep
from .expressions import Diag, Inner, Total, dims, is_matrix, size_symbol, var_symbol
from .factoring import factor_scalars
from .numeric import _lambdify_eval

SMALL = 12  # an adjoint whose expression has at most this many tree nodes is inlined wherever used
LARGE = 80  # one that has more stays a shared definition even if used once: no deep nesting, so
# deriving and printing a 10,000-node chain stays linear and within the recursion limit


def _size(e: sp.Basic) -> int:
    return sum(1 for _ in sp.preorder_traversal(e))


def _count(e: sp.Basic, syms: set) -> dict[sp.Basic, int]:
    out: dict[sp.Basic, int] = {}
    for a in sp.preorder_traversal(e):
        if a in syms:
            out[a] = out.get(a, 0) + 1
    return out


def _inline(target: sp.Basic, defs: list[tuple[sp.Basic, sp.Basic]], force: bool = False
            ) -> tuple[sp.Basic, list[tuple[sp.Basic, sp.Basic]]]:
    """Substitute definitions (given dependencies first) into ``target``.

    A definition is inlined when it is small, or used once and not large; the others stay as
    shared sub-expressions (``where`` clauses), so the result grows linearly with the graph and
    never nests deeper than a bounded amount.
    """
    rhs = dict(defs)
    syms = set(rhs)
    # which definitions the target needs, and how often each symbol is used
    need: set[sp.Basic] = set()
    todo = [target]
    uses: dict[sp.Basic, int] = {}
    seen_expr: set[int] = set()
    while todo:
        e = todo.pop()
        if id(e) in seen_expr:
            continue
        seen_expr.add(id(e))
        for s, k in _count(e, syms).items():
            uses[s] = uses.get(s, 0) + k
            if s not in need:
                need.add(s)
                todo.append(rhs[s])
    resolved: dict[sp.Basic, sp.Basic] = {}
    kept: list[tuple[sp.Basic, sp.Basic]] = []
    inline: dict[sp.Basic, sp.Basic] = {}
    for s, _ in defs:
        if s not in need:
            continue
        e = rhs[s].xreplace(inline).doit() if inline else rhs[s]
        resolved[s] = e
        size = _size(e)
        if force or size <= SMALL or (uses.get(s, 0) <= 1 and size <= LARGE):
            inline[s] = e
        else:
            kept.append((s, e))
    body = target.xreplace(inline).doit() if inline else target
    return body, kept


def _fmt_name(graph: Graph, n: str, latex: bool) -> str:
    from ..naming import latex_name, pretty

    return latex_name(n) if latex else pretty(n)


@dataclass
class Derivative:
    """∂of/∂wrt as one matrix expression ``body`` (plus shared sub-expressions ``where``).

    ``expr`` is the single SymPy expression (``where`` substituted); ``evaluate(inputs)``
    computes it numerically from the SymPy expression itself.
    """

    graph: Graph
    of: str
    wrt: str
    body: sp.Basic
    where: list[tuple[sp.Basic, sp.Basic]] = field(default_factory=list)
    jacobian: bool = False
    expand: bool = False

    @property
    def expr(self) -> sp.Basic:
        """The derivative as one SymPy expression (shared sub-expressions substituted)."""
        e = self.body
        for s, d in reversed(self.where):
            e = e.xreplace({s: d})
        return e.doit() if self.where else e

    def _lhs(self, latex: bool) -> str:
        of, wrt = _fmt_name(self.graph, self.of, latex), _fmt_name(self.graph, self.wrt, latex)
        return f"\\frac{{\\partial {of}}}{{\\partial {wrt}}}" if latex else f"∂{of}/∂{wrt}"

    def __str__(self) -> str:
        text = f"{self._lhs(False)} = {_text(self.body)}"
        rank = model_rank(self.graph) if self.expand else None
        if self.where:
            text += "\n  where " + "\n        ".join(f"{_text(s)} = {_text(d, rank)}" for s, d in self.where)
        return text

    def latex(self) -> str:
        """The derivative in LaTeX (with ``\\text{where}`` lines for shared sub-expressions)."""
        text = f"{self._lhs(True)} = {_latex(self.body)}"
        rank = model_rank(self.graph) if self.expand else None
        for i, (s, d) in enumerate(self.where):
            text += (r",\quad \text{where } " if i == 0 else r",\ ") + f"{_latex(s)} = {_latex(d, rank)}"
        return text

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    def evaluate(self, inputs: Mapping[str, Any], sizes: Mapping[str, int] | None = None, *,
                 dtype: Any = None) -> np.ndarray:
        """The derivative's value at ``inputs``, computed from the SymPy expression (lambdify).

        The result has ``wrt``'s shape as fed, like :func:`graphgrad.grad` (``(N,)`` for a vector
        fed 1-D, ``(N, 1)`` for one fed as a column); a Jacobian is ``(M, N)``. dtypes follow
        :func:`graphgrad.evaluate`: all-float32 inputs give float32 (every intermediate value is
        rounded to it), float64 or integers float64, a mix is an error unless ``dtype=`` says which.

        >>> import graphgrad as gg
        >>> d = derivative(gg.parse("input x[N]\\nL = sum(x * x)"), "L", "x")
        >>> d.evaluate({"x": np.array([1.0, 2.0], dtype=np.float32)})
        array([2., 4.], dtype=float32)
        """

        inputs = check_mapping(inputs, "inputs")
        if sizes is not None:
            sizes = check_mapping(sizes, "sizes", keys="size names")
        feed = prepare(self.graph, inputs, None, sizes, dtype)
        dt = feed.dtype

        def value(e: sp.Basic) -> Any:  # computed by NumPy, then rounded to the inputs' dtype
            return np.asarray(_lambdify_eval(e, env), dtype=dt)

        if feed.batch is not None:
            raise DerivationError("Derivative.evaluate takes one sample, not a batch",
                                  hint="feed inputs without the leading batch axis")
        env: dict[sp.Basic, Any] = {}
        for n, v in feed.values.items():
            env[var_symbol(n, self.graph.shape(n))] = v[0, 0] if is_scalar(self.graph.shape(n)) else v
        for n, v in feed.sizes.items():
            env[size_symbol(n)] = int(v)
        conv = sweep(self.graph, self.of).converter
        assert conv is not None
        for n in self.graph.named_nodes():  # named intermediates, from their SymPy definitions
            if self.graph.op(n) not in LEAF_OPS:
                conv(n)
                v = value(conv.definition(n))
                env[conv.memo[n]] = v[()] if v.ndim == 0 else v
        for s, d in self.where:
            v = value(d)
            env[s] = v[()] if v.ndim == 0 else v
        out = value(self.body)
        if self.jacobian:
            r, c = (int(sp.sympify(d).subs({size_symbol(k): v for k, v in feed.sizes.items()}))
                    for d in self.body.shape)
            J = np.broadcast_to(out, (r, c)).copy()
            return J[:, 0] if is_scalar(self.graph.shape(self.wrt)) else J
        shape = normalize(self.graph.shape(self.wrt))
        r, c = matrix_form(shape)
        rc = tuple(feed.sizes.get(d, d) if isinstance(d, str) else d for d in (r, c))
        full = np.broadcast_to(out, rc).copy()
        if self.wrt in feed.fed_shape:
            return full.reshape(feed.fed_shape[self.wrt])
        if len(shape) == 0:
            return full[0, 0]
        if len(shape) == 1:
            return full[:, 0]
        return full


def derivative(graph: Graph, of: str, wrt: str, expand: bool = False, *, prime: str = "symbol"
               ) -> Derivative:
    """∂of/∂wrt as one matrix expression; for a vector ``of``, the Jacobian.

    ``expand=True`` writes it in inputs, params and consts alone (named intermediates used more
    than once, and large, stay shared in ``where`` clauses).

    >>> import graphgrad as gg
    >>> g = gg.parse("input x[N]\\nconst v[N]\\nf = v @ v.T @ x")
    >>> print(derivative(g, "f", "x"))
    ∂f/∂x = v vᵀ
    """
    check_graph(graph, "derivative")
    check_node_name(graph, of, "of")
    if not isinstance(wrt, str):
        several = not isinstance(wrt, (bytes, Mapping)) and hasattr(wrt, "__iter__")
        raise NamingError(f"wrt must be one node name (str), got {type(wrt).__name__} {shown(wrt)}",
                          node=node_label(wrt), hint="call derivative once per variable" if several else
                          "pass wrt='x'")
    if wrt not in graph:
        raise NamingError(f"wrt {shown(wrt)} is not defined", node=node_label(wrt),
                         hint="wrt must name a variable: " + graph.names_text())
    if not graph.is_named(wrt) or graph.op(wrt) in ("literal", "size"):
        raise DerivationError(f"cannot differentiate with respect to {graph.describe(wrt)}", node=wrt,
                              hint="wrt must be an input, param, const or named intermediate")
    sw = sweep(graph, of)
    conv = sw.converter
    assert conv is not None
    jac = sw.cotangent
    if jac and len(normalize(graph.shape(wrt))) == 2 and matrix_form(graph.shape(wrt))[1] != 1:
        raise DerivationError(f"the Jacobian of vector {of!r} with respect to matrix {wrt!r} is a 3-tensor",
                              node=wrt, hint="take a scalar of it, or use graphgrad.vjp")
    if wrt not in sw.total:
        R, C = dims(graph.shape(wrt))
        zero = sp.Integer(0) if is_scalar(graph.shape(wrt)) else ZeroMatrix(R, C)
        if jac:
            zero = ZeroMatrix(dims(graph.shape(of))[0], R)
        return Derivative(graph, of, wrt, zero, jacobian=jac, expand=expand)
    defs: list[tuple[sp.Basic, sp.Basic]] = []
    if expand:
        for n in graph.named_nodes():
            if graph.op(n) not in LEAF_OPS:
                conv(n)
                defs.append((conv.memo[n], conv.definition(n)))
    named = [n for n in sw.order if graph.is_named(n) and graph.op(n) != "size" and n in sw.total]
    for v in named:
        if jac and v == of:
            continue
        defs.append((adjoint_symbol(graph, v), conv(sw.total[v])))
    if wrt == of and not jac:
        target: sp.Basic = sp.Integer(1)
    else:
        target = adjoint_symbol(graph, wrt)
    body, where = _inline(target, defs, force=jac)
    if jac:
        fbar = adjoint_symbol(graph, of)
        body = Transpose(_linear_map(body, fbar)).doit() if body != fbar else Identity(fbar.shape[0])
        body = _tidy(body)
    body = factor_scalars(_present(body, graph, prime, conv))
    where = [(s, factor_scalars(_present(d, graph, prime, conv))) for s, d in where]
    return Derivative(graph, of, wrt, body, where, jacobian=jac, expand=expand)


def _tidy(e: sp.Basic) -> sp.Basic:
    return e.doit() if is_matrix(e) else e


def _linear_map(e: sp.Basic, f: MatrixSymbol) -> MatrixExpr:
    """The matrix A with ``e = A f`` for an expression ``e`` linear in the vector ``f``."""
    fail = DerivationError("cannot write this Jacobian as a matrix expression",
                           hint="use graphgrad.jacobian for its numbers")
    if e == f:
        return Identity(f.shape[0])
    if not e.has(f):
        raise fail
    if isinstance(e, (MatAdd, sp.Add)):
        return MatAdd(*(_linear_map(t, f) for t in e.args)).doit()
    if isinstance(e, Inner):
        return _linear_map(e.args[0], f)
    if isinstance(e, Total) and e.args[0].shape[1] == 1:
        u = e.args[0]  # sum(d ⊙ X) = dᵀ X, sum(X) = 𝟙ᵀ X
        if isinstance(u, HadamardProduct):
            others = [a for a in u.args if not a.has(f)]
            inner = [a for a in u.args if a.has(f)]
            if len(inner) == 1:
                d = others[0] if len(others) == 1 else HadamardProduct(*others)
                return MatMul(d.T, _linear_map(inner[0], f)).doit()
        return MatMul(OneMatrix(1, u.shape[0]), _linear_map(u, f)).doit()
    if isinstance(e, sp.Mul):
        inner = [a for a in e.args if a.has(f)]
        if len(inner) != 1:
            raise fail
        rest = sp.Mul(*(a for a in e.args if not a.has(f)))
        return (rest * _linear_map(inner[0], f)).doit()
    if isinstance(e, MatMul):
        coeff, mats = e.as_coeff_matrices()
        idx = [i for i, m in enumerate(mats) if m.has(f)]
        if coeff.has(f) or len(idx) != 1:
            raise fail
        k = idx[0]
        if k < len(mats) - 1:
            if e.shape == (1, 1):
                return _linear_map(Transpose(e).doit(), f)
            raise fail
        left = mats[:k]
        inner = _linear_map(mats[k], f)
        return MatMul(coeff, *left, inner).doit() if left or coeff != 1 else inner
    if isinstance(e, HadamardProduct):
        inner = [a for a in e.args if a.has(f)]
        if len(inner) != 1 or inner[0].shape[1] != 1:
            raise fail
        others = [a for a in e.args if not a.has(f)]
        d = others[0] if len(others) == 1 else HadamardProduct(*others)
        return MatMul(Diag(d), _linear_map(inner[0], f)).doit()
    raise fail
