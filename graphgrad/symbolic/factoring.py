"""Scalar factoring of matrix expressions: :func:`factor_scalars` undoes SymPy's distribution of scalars.

SymPy writes ``2 X w − 2 t``; the equations and derivatives print ``2 (X w − t)``, with the
coefficients of nested products flattened into one (``(2/n) Xᵀ(X w − t)``).
"""

from __future__ import annotations

import sympy as sp
from sympy import (
    HadamardPower,
    HadamardProduct,
    Identity,
    MatAdd,
    MatMul,
    MatrixExpr,
    MatrixSymbol,
    OneMatrix,
)
from sympy.core.symbol import Str

from .expressions import hadamard


def _split_coeff(t: sp.Basic) -> tuple[sp.Expr, list]:
    if isinstance(t, MatMul):
        c, mats = t.as_coeff_matrices()
        return c, list(mats)
    return sp.Integer(1), [t]


def _common(coeffs: list[sp.Expr]) -> sp.Expr:
    """The scalar factor shared by all coefficients (numeric content and identical symbolic part)."""
    nums, rests = zip(*(c.as_coeff_Mul() for c in coeffs))
    rest = rests[0] if all(r == rests[0] for r in rests) else sp.Integer(1)
    num = sp.Integer(1)
    if all(n.is_Rational for n in nums):
        num = abs(sp.gcd_list([sp.Rational(n) for n in nums])) or sp.Integer(1)
        if all(n < 0 for n in nums):
            num = -num
    return num * rest


def factor_scalars(e: sp.Basic) -> sp.Basic:
    """Undo SymPy's distribution of scalars over sums: 2 X w − 2 t -> 2 (X w − t), and flatten
    the coefficients of nested products into one ((2/n) Xᵀ(X w − t))."""
    if not isinstance(e, sp.Basic) or not e.args or isinstance(e, (MatrixSymbol, sp.Symbol)):
        return e
    memo: dict[sp.Basic, sp.Basic] = {}
    for node in sp.postorder_traversal(e):
        if node in memo or not isinstance(node, sp.Basic):
            continue
        if not node.args or isinstance(node, (MatrixSymbol, sp.Symbol, Str, OneMatrix, Identity)):
            memo[node] = node
            continue
        args = [memo.get(a, a) for a in node.args]
        if isinstance(node, MatAdd):
            parts = [_split_coeff(a) for a in args]
            common = _common([c for c, _ in parts])
            terms = []
            for c, mats in parts:
                cc = c / common
                body = mats[0] if len(mats) == 1 else MatMul(*mats)
                terms.append(body if cc == 1 else MatMul(cc, *mats))
            inner = MatAdd(*terms)
            memo[node] = inner if common == 1 else MatMul(common, inner)
        elif isinstance(node, MatMul):
            coeff, mats = sp.Integer(1), []
            for a in args:
                if isinstance(a, MatMul):
                    c, ms = _split_coeff(a)
                    coeff, mats = coeff * c, mats + ms
                elif isinstance(a, MatrixExpr):
                    mats.append(a)
                else:
                    coeff = coeff * a
            memo[node] = MatMul(*([coeff] if coeff != 1 else []), *mats) if (coeff != 1 or len(mats) > 1) \
                else mats[0]
        elif isinstance(node, HadamardProduct):
            memo[node] = hadamard(*args)  # (c 𝟙) ⊙ u = c u, scalars out front
        elif isinstance(node, HadamardPower) and isinstance(args[0], HadamardPower):
            memo[node] = HadamardPower(args[0].base, args[0].exp * args[1])  # (a∘⁻¹)∘² = a∘⁻²
        else:
            memo[node] = node.func(*args) if args != list(node.args) else node
    return memo[e]
