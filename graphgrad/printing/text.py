"""Unicode text of graphgrad's SymPy expressions: ``W₂ᵀ ȳ + R̄ r``, ``h̄ ⊙ σ′(z)``, ``‖y − s‖``.

Matrix products are juxtaposed, transposes explicit (ᵀ), element-wise products ⊙, element-wise
functions use the op table's symbol (``OPS["sigmoid"].render.symbol``), trailing digits become
subscripts and adjoints get a bar (:mod:`graphgrad.naming`).

>>> import sympy as sp
>>> N = sp.Symbol("N", integer=True, positive=True)
>>> W, x = sp.MatrixSymbol("W1", N, N), sp.MatrixSymbol("x", N, 1)
>>> to_text(W.T * x - x)
'W₁ᵀ x − x'
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.str import StrPrinter

from ..naming import latex_name, pretty
from ..ops import OPS

_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


class Tokens:
    """The spellings one printer uses (Unicode here, LaTeX in :mod:`.latex`)."""

    minus = "−"
    plus = " + "
    sub = " − "
    had = " ⊙ "
    transpose = "ᵀ"
    lpar, rpar = "(", ")"
    one = "𝟙"
    norm = ("‖", "‖")
    space = " "

    @staticmethod
    def name(n: str, bar: bool) -> str:
        return pretty(n, bar=bar)

    @staticmethod
    def apply(op: str, arg: str) -> str:
        return f"{OPS[op].render.symbol}({arg})"

    @staticmethod
    def power(base: str, p: str, hadamard: bool) -> str:
        sup = p.translate(_SUP) if p.lstrip("-").isdigit() else f"^({p})"
        return base + ("∘" if hadamard else "") + sup

    @staticmethod
    def frac(num: str, den: str, simple_den: bool) -> str:
        if " " in num and not (num.startswith("(") and num.endswith(")")):
            num = f"({num})"
        return f"{num}/{den}" if simple_den else f"{num}/({den})"

    @staticmethod
    def call(fn: str, arg: str) -> str:
        return f"{fn}({arg})"


class Common:
    """``_print_<Class>`` methods shared by the text and LaTeX printers (via :class:`Tokens`)."""

    tok: type[Tokens] = Tokens
    rank: dict[str, int] | None = None

    def paren(self, s: str) -> str:
        return f"{self.tok.lpar}{s}{self.tok.rpar}"

    # ------------------------------------------------------------------ atoms
    def _print_Symbol(self, e: sp.Symbol) -> str:
        return self.tok.name(e.name, False)

    def _print_AdjointSymbol(self, e: sp.Symbol) -> str:
        return self.tok.name(e.name, True)

    def _print_MatrixSymbol(self, e: sp.MatrixSymbol) -> str:
        return self.tok.name(e.name, False)

    def _print_AdjointMatrix(self, e: sp.MatrixSymbol) -> str:
        return self.tok.name(e.name, True)

    def _print_OneMatrix(self, e: sp.OneMatrix) -> str:
        # a row of ones is the transpose of a column of ones: b 𝟙ᵀ broadcasts b along the columns
        rows, cols = e.shape
        return self.tok.one + (self.tok.transpose if rows == 1 and cols != 1 else "")

    def _print_Identity(self, e: sp.Identity) -> str:
        return "I"

    def _print_ZeroMatrix(self, e: sp.ZeroMatrix) -> str:
        return "0"

    def _print_Integer(self, e: sp.Integer) -> str:
        return (self.tok.minus + str(-e)) if e < 0 else str(e)

    def _print_Rational(self, e: sp.Rational) -> str:
        if e.q == 1:
            return self._print_Integer(sp.Integer(e.p))
        sign = self.tok.minus if e < 0 else ""
        return sign + self.tok.frac(str(abs(e.p)), str(e.q), True)

    def _print_Float(self, e: sp.Float) -> str:
        v = float(e)
        return (self.tok.minus if v < 0 else "") + f"{abs(v):g}"

    # ------------------------------------------------------------------ graphgrad classes
    def _print_Apply(self, e) -> str:
        return self.tok.apply(e.op, self._print(e.arg))

    _print_ScalarApply = _print_Apply  # noqa: N815 - SymPy dispatches on the class name

    def _print_Norm(self, e) -> str:
        lo, hi = self.tok.norm
        return f"{lo}{self._print(e.args[0])}{hi}"

    def _print_Inner(self, e) -> str:
        return self._print(e.args[0])

    def _print_Total(self, e) -> str:
        return self.tok.call("sum", self._print(e.args[0]))

    def _print_Diag(self, e) -> str:
        return self.tok.call("diag", self._print(e.args[0]))

    # ------------------------------------------------------------------ matrix algebra
    def _atomic(self, e: sp.Basic) -> bool:
        """Whether ``e`` prints without operators at its top level (no parentheses needed)."""
        if isinstance(e, (sp.MatrixSymbol, sp.Symbol, sp.OneMatrix, sp.Identity, sp.Integer)):
            return not (isinstance(e, sp.Integer) and e < 0)
        name = type(e).__name__
        return name in ("Apply", "ScalarApply", "Norm", "Total", "Diag", "Transpose")

    def _print_Transpose(self, e: sp.Transpose) -> str:
        a = e.arg
        s = self._print(a)
        if not self._atomic(a) or type(a).__name__ == "Transpose":
            s = self.paren(s)
        return s + self.tok.transpose

    def _coeff(self, c: sp.Expr) -> str:
        """A scalar coefficient in front of a matrix: ``2``, ``S̄``, ``(2/n)``."""
        s = self._print(c)
        if isinstance(c, sp.Integer) or self._atomic(c):
            return s
        return self.paren(s)

    def _print_MatMul(self, e: sp.MatMul) -> str:
        coeff, mats = e.as_coeff_matrices()
        neg = coeff.could_extract_minus_sign()
        if neg:
            coeff = -coeff
        parts = []
        for m in mats:
            s = self._print(m)
            if isinstance(m, (sp.MatAdd, sp.HadamardProduct, sp.MatMul)) or \
                    (isinstance(m, sp.HadamardPower) and m.exp.is_negative):
                s = self.paren(s)
            parts.append(s)
        body = parts[0] if parts else ""
        for s in parts[1:]:
            body += s if s.startswith(self.tok.lpar) else self.tok.space + s
        if coeff != 1:
            body = self._coeff(coeff) + (self.tok.space + body if body else "")
        return (self.tok.minus if neg else "") + body

    def _sign_split(self, e: sp.Basic) -> tuple[bool, sp.Basic]:
        if isinstance(e, sp.MatMul):
            coeff, _ = e.as_coeff_matrices()
            if coeff.could_extract_minus_sign():
                return True, -e
        elif not isinstance(e, sp.MatrixExpr) and e.could_extract_minus_sign():
            return True, -e
        return False, e

    def _spread(self, signed: list[tuple[bool, sp.Basic]]) -> list[tuple[bool, sp.Basic]]:
        """A scalar sum broadcast as ``(c₁ + c₂)·𝟙`` spread into the outer sum in its place, term by
        term with its own sign: ``s + (1 − a)𝟙`` reads ``s − a + 1``, and the sign of a broadcast
        sum is never lost or doubled."""
        out = []
        for neg, u in signed:
            c = _ones(u)
            if c is None or not isinstance(c, sp.Add):
                out.append((neg, u))
                continue
            for piece in c.as_ordered_terms():
                pneg, pu = self._sign_split(piece)
                out.append((neg != pneg, pu))
        return out

    def _term(self, e: sp.Basic) -> str:
        c = _ones(e)
        if c is not None:  # c·𝟙 inside a sum reads as the number c
            return self._print(c)
        return self._print(e)

    def _sum(self, terms: list[sp.Basic]) -> str:
        # short terms first (y − s + W₁ᵀ(…)), or, given a rank of names, in the model's order
        # (x + W₂ h + b₂); not a minus sign first when a plus term exists
        rank = getattr(self, "rank", None)
        if rank:
            def key(t: tuple[bool, sp.Basic]) -> tuple:
                names = [rank[a.name] for a in t[1].free_symbols if getattr(a, "name", None) in rank]
                return (min(names, default=len(rank)), _size(t[1]))
        else:
            def key(t: tuple[bool, sp.Basic]) -> tuple:
                return (_size(t[1]),)
        signed = self._spread(sorted((self._sign_split(t) for t in terms), key=key))
        first = next((i for i, t in enumerate(signed) if not t[0]), 0)
        ordered = [signed[first]] + signed[:first] + signed[first + 1:]
        out = ""
        for i, (neg, t) in enumerate(ordered):
            s = self._term(t)
            if isinstance(t, (sp.Add, sp.MatAdd)):
                s = self.paren(s)
            if i == 0:
                out = (self.tok.minus + s) if neg else s
            else:
                out += (self.tok.sub if neg else self.tok.plus) + s
        return out

    def _print_MatAdd(self, e: sp.MatAdd) -> str:
        return self._sum(list(e.args))

    def _print_Add(self, e: sp.Add) -> str:
        return self._sum(list(e.as_ordered_terms()))

    def _print_HadamardProduct(self, e: sp.HadamardProduct) -> str:
        num, den = [], []
        # the incoming adjoint first, local derivatives (σ′(z)) last: h̄ ⊙ σ′(z)
        for a in sorted(e.args, key=_hadamard_rank):
            if isinstance(a, sp.HadamardPower) and a.exp.is_negative:
                den.append(a.base if a.exp == -1 else sp.HadamardPower(a.base, -a.exp))
            else:
                num.append(a)
        def f(a: sp.Basic) -> str:
            s = self._print(a)
            return s if self._atomic(a) else self.paren(s)
        top = self.tok.had.join(f(a) for a in num) if num else "1"
        if not den:
            return top
        bottom = self.tok.had.join(f(a) for a in den)
        return self.tok.frac(top, bottom, True) if len(den) == 1 else self.tok.frac(top, bottom, False)

    def _print_HadamardPower(self, e: sp.HadamardPower) -> str:
        base = self._print(e.base)
        if not self._atomic(e.base):
            base = self.paren(base)
        return self.tok.power(base, self._print_exp(e.exp), True)

    def _print_exp(self, p: sp.Expr) -> str:
        return str(p) if isinstance(p, sp.Integer) else self._print(p)

    # ------------------------------------------------------------------ scalar algebra
    def _print_Mul(self, e: sp.Mul) -> str:
        if e.could_extract_minus_sign():
            s = self._print(-e)
            if isinstance(-e, sp.Add):
                s = self.paren(s)
            return self.tok.minus + s
        num, den = sp.fraction(e)

        def prod(x: sp.Expr) -> str:
            factors = sorted(sp.Mul.make_args(x), key=lambda f: (not f.is_Number, not _is_adjoint(f)))
            parts = []
            for f in factors:
                s = self._print(f)
                if isinstance(f, sp.Add):
                    s = self.paren(s)
                parts.append(s)
            return self.tok.space.join(parts)

        if den == 1:
            return prod(num)
        return self.tok.frac(prod(num), prod(den), len(sp.Mul.make_args(den)) == 1 and
                             not isinstance(den, sp.Add))

    def _print_Pow(self, e: sp.Pow) -> str:
        base, p = e.args
        if p == sp.Rational(1, 2):
            return self.tok.apply("sqrt", self._print(base))
        if p.is_negative:
            inv = base ** -p
            return self.tok.frac("1", self._print(inv), self._atomic(inv))
        b = self._print(base)
        if not self._atomic(base):
            b = self.paren(b)
        return self.tok.power(b, self._print_exp(p), False)

    def _print_Abs(self, e: sp.Abs) -> str:
        return f"|{self._print(e.args[0])}|"


def _is_adjoint(e: sp.Basic) -> bool:
    return type(e).__name__ in ("AdjointSymbol", "AdjointMatrix")


def _hadamard_rank(e: sp.Basic) -> int:
    """Adjoints first, then other factors, then sums, then local derivatives (σ′(z))."""
    if _is_adjoint(e):
        return 0
    if type(e).__name__ in ("Apply", "ScalarApply") and OPS[e.op].name.startswith("d"):
        return 3
    return 2 if isinstance(e, sp.MatAdd) else 1


def _size(e: sp.Basic) -> int:
    return sum(1 for _ in sp.preorder_traversal(e))


def _ones(e: sp.Basic) -> sp.Expr | None:
    if isinstance(e, sp.OneMatrix):
        return sp.Integer(1)
    if isinstance(e, sp.MatMul):
        coeff, mats = e.as_coeff_matrices()
        if len(mats) == 1 and isinstance(mats[0], sp.OneMatrix):
            return coeff
    return None


class TextPrinter(Common, StrPrinter):
    """SymPy's StrPrinter with graphgrad's notation."""

    printmethod = "_graphgrad_text"


def to_text(expr: sp.Basic, rank: dict[str, int] | None = None) -> str:
    """Unicode text of a SymPy expression in graphgrad's notation.

    ``rank`` (name -> position in the model) orders the terms of sums as the model writes them.
    """
    p = TextPrinter()
    p.rank = rank
    return p.doprint(expr)


__all__ = ["TextPrinter", "to_text", "Common", "Tokens", "latex_name"]
