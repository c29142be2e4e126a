"""Numbers from SymPy expressions: :func:`evaluate_expr` and the ``lambdify`` behind it.

The expression is printed for NumPy with graphgrad's classes spelled out (``Apply`` calls the
op's SymPy scalar formula, lambdified, not the evaluator's kernel), so the values it gives are
an independent check on :mod:`graphgrad.interpret`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import sympy as sp
from sympy import (
    HadamardPower,
    HadamardProduct,
    Identity,
    MatAdd,
    MatMul,
    MatrixSymbol,
    OneMatrix,
    Transpose,
    ZeroMatrix,
)

from ..graph import Graph
from ..ops import OPS
from .expressions import Apply, Diag, Inner, Norm, Total, is_matrix, var_symbol


def _elementwise_kernel(op: str) -> Callable[[np.ndarray], np.ndarray]:
    """The op's SymPy scalar formula, lambdified for NumPy (the evaluator's kernel is not used)."""
    t = sp.Symbol("t", real=True)
    f = sp.lambdify(t, OPS[op].sympy(t), "numpy")

    def k(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(f(x), dtype=np.float64) * np.ones_like(x, dtype=np.float64)

    return k


_KERNELS: dict[str, Callable] = {}


def _namespace() -> dict[str, Any]:
    ns: dict[str, Any] = {"_gg_diag": lambda d: np.diagflat(d)}
    for name, spec in OPS.items():
        if spec.elementwise and spec.arity == 1:
            if name not in _KERNELS:
                _KERNELS[name] = _elementwise_kernel(name)
            ns[f"_gg_{name}"] = _KERNELS[name]
    return ns


def _lambdify_eval(expr: sp.Basic, env: Mapping[sp.Basic, Any]) -> Any:
    """Compute ``expr`` with NumPy at the values in ``env`` (symbol -> value)."""
    from sympy.printing.numpy import NumPyPrinter

    class Printer(NumPyPrinter):
        def _print_MatMul(self, e: MatMul) -> str:
            coeff, mats = e.as_coeff_matrices()
            body = " @ ".join(f"({self._print(m)})" for m in mats)
            return f"(({self._print(coeff)}) * ({body}))" if coeff != 1 else f"({body})"

        def _print_MatAdd(self, e: MatAdd) -> str:
            return "(" + " + ".join(f"({self._print(a)})" for a in e.args) + ")"

        def _print_Transpose(self, e: Transpose) -> str:
            return f"numpy.swapaxes({self._print(e.arg)}, -1, -2)"

        def _print_HadamardProduct(self, e: HadamardProduct) -> str:
            return "(" + " * ".join(f"({self._print(a)})" for a in e.args) + ")"

        def _print_HadamardPower(self, e: HadamardPower) -> str:
            return f"(({self._print(e.base)}) ** ({self._print(e.exp)}))"

        def _print_Apply(self, e: Apply) -> str:
            return f"_gg_{e.op}({self._print(e.arg)})"

        _print_ScalarApply = _print_Apply  # noqa: N815 - SymPy dispatches on the class name

        def _print_Norm(self, e: Norm) -> str:
            return f"numpy.sqrt(numpy.sum(({self._print(e.args[0])}) ** 2))"

        def _print_Inner(self, e: Inner) -> str:
            return f"({self._print(e.args[0])})[0, 0]"

        def _print_Total(self, e: Total) -> str:
            return f"numpy.sum({self._print(e.args[0])})"

        def _print_OneMatrix(self, e: OneMatrix) -> str:
            return f"numpy.ones(({self._print(e.shape[0])}, {self._print(e.shape[1])}))"

        def _print_ZeroMatrix(self, e: ZeroMatrix) -> str:
            return f"numpy.zeros(({self._print(e.shape[0])}, {self._print(e.shape[1])}))"

        def _print_Identity(self, e: Identity) -> str:
            return f"numpy.eye({self._print(e.shape[0])})"

        def _print_Diag(self, e: Diag) -> str:
            return f"_gg_diag({self._print(e.args[0])})"

    free = sorted((s for s in _atoms(expr) if s in env), key=str)
    plain: dict[sp.Basic, sp.Basic] = {}
    for i, s in enumerate(free):
        plain[s] = MatrixSymbol(f"v{i}", *s.shape) if is_matrix(s) else sp.Symbol(f"v{i}")
    e = expr.xreplace(plain) if plain else expr
    f = sp.lambdify([plain[s] for s in free], e, modules=[_namespace(), "numpy"], printer=Printer)
    with np.errstate(all="ignore"):
        return f(*(env[s] for s in free))


def _atoms(expr: sp.Basic) -> set[sp.Basic]:
    """The symbols and matrix symbols in ``expr`` (iteratively: one walk, no recursion)."""
    out: set[sp.Basic] = set()
    stack = [expr]
    seen: set[int] = set()
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (sp.Symbol, MatrixSymbol)):
            out.add(e)
        else:
            stack.extend(a for a in e.args if isinstance(a, sp.Basic))
    return out


def evaluate_expr(expr: sp.Basic, values: Mapping[str, Any], graph: Graph) -> Any:
    """Compute a SymPy expression over a graph's variables at ``values`` (name -> matrix form)."""
    env: dict[sp.Basic, Any] = {}
    for n, v in values.items():
        env[var_symbol(n, graph.shape(n))] = v
    return _lambdify_eval(expr, env)
