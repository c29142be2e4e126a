r"""LaTeX of graphgrad's SymPy expressions: ``W_{2}^{\top} \bar{y}``, ``\bar{h} \odot \sigma'\left(z\right)``.

The same rules as :mod:`.text` (shared through :class:`~graphgrad.printing.text.Common`), with
LaTeX spellings, on top of SymPy's ``LatexPrinter``.

>>> import sympy as sp
>>> N = sp.Symbol("N", integer=True, positive=True)
>>> W, x = sp.MatrixSymbol("W1", N, N), sp.MatrixSymbol("x", N, 1)
>>> to_latex(W.T * x)
'W_{1}^{\\top} x'
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter

from ..naming import latex_name
from ..ops import OPS
from .text import Common, Tokens


class LatexTokens(Tokens):
    """LaTeX spellings."""

    minus = "-"
    plus = " + "
    sub = " - "
    had = r" \odot "
    transpose = r"^{\top}"
    lpar, rpar = r"\left(", r"\right)"
    one = r"\mathbf{1}"
    norm = (r"\left\lVert ", r"\right\rVert")
    space = " "

    @staticmethod
    def name(n: str, bar: bool) -> str:
        return latex_name(n, bar=bar)

    @staticmethod
    def apply(op: str, arg: str) -> str:
        if op == "sqrt":
            return rf"\sqrt{{{arg}}}"
        return rf"{OPS[op].render.latex}\left({arg}\right)"

    @staticmethod
    def power(base: str, p: str, hadamard: bool) -> str:
        circ = "\\circ " if hadamard else ""
        return "{" + base + "}^{" + circ + p + "}"

    @staticmethod
    def frac(num: str, den: str, simple_den: bool) -> str:
        return rf"\frac{{{num}}}{{{den}}}"

    @staticmethod
    def call(fn: str, arg: str) -> str:
        return rf"\operatorname{{{fn}}}\left({arg}\right)"


class LaTeXPrinter(Common, LatexPrinter):
    """SymPy's LatexPrinter with graphgrad's notation."""

    tok = LatexTokens
    printmethod = "_graphgrad_latex"

    def _coeff(self, c: sp.Expr) -> str:
        s = self._print(c)
        return self.paren(s) if isinstance(c, sp.Add) else s

    def _print_Abs(self, e: sp.Abs) -> str:
        return rf"\left|{self._print(e.args[0])}\right|"


def to_latex(expr: sp.Basic, rank: dict[str, int] | None = None) -> str:
    """LaTeX of a SymPy expression in graphgrad's notation (``rank``: as in :func:`.text.to_text`)."""
    p = LaTeXPrinter()
    p.rank = rank
    return p.doprint(expr)


__all__ = ["LaTeXPrinter", "to_latex"]
