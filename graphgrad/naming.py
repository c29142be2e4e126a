"""Every name graphgrad makes up, and the display forms of user names.

* Sub-expression nodes: ``_t1``, ``_t2``, ... (users cannot write names that start with ``_``).
* Adjoint nodes: ``h_bar`` for the adjoint of ``h`` (``_t3_bar`` for a sub-expression).
* Tangent leaves (forward mode): ``x_dot`` for the tangent of ``x``.
* Display: trailing digits become subscripts (``W1`` -> ``W₁``, LaTeX ``W_{1}``) and adjoints
  get a bar (``h̄``, ``\\bar{h}``).

>>> pretty("W1"), pretty("h_2"), pretty("h", bar=True), latex_name("W12", bar=True)
('W₁', 'h₂', 'h̄', '\\\\bar{W}_{12}')
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Container

from .errors import NamingError

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_TRAILING = re.compile(r"^(.*?)_?(\d+)$")  # h1 and h_1 both -> h with subscript 1
_GREEK = {
    "alpha": ("α", r"\alpha"), "beta": ("β", r"\beta"), "gamma": ("γ", r"\gamma"),
    "delta": ("δ", r"\delta"), "epsilon": ("ε", r"\epsilon"), "eta": ("η", r"\eta"),
    "theta": ("θ", r"\theta"), "lam": ("λ", r"\lambda"), "mu": ("μ", r"\mu"),
    "sigma": ("σ", r"\sigma"), "tau": ("τ", r"\tau"), "phi": ("φ", r"\phi"),
    "omega": ("ω", r"\omega"),
}
RESERVED = frozenset({"input", "param", "const", "T"})
BAR = "\u0304"  # combining macron: h̄


def check_user_name(name: str, line: int | None = None, col: int | None = None) -> None:
    """Reject names users may not write: non-identifiers, keywords, ``_``-prefixed, reserved."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise NamingError(f"{name!r} is not a valid name", line=line, col=col,
                         hint="use letters, digits and _ (not first), e.g. W1 or h_out")
    if name.startswith("_"):
        raise NamingError(f"{name!r} starts with '_', which graphgrad reserves for generated names",
                         line=line, col=col, hint="drop the leading underscore")
    if name in RESERVED:
        raise NamingError(f"{name!r} is a reserved word", line=line, col=col, hint="choose another name")


def fresh_name(counter: int, taken: Container[str]) -> tuple[int, str]:
    """Next generated sub-expression name not in ``taken``: returns (new counter, name)."""
    while True:
        counter += 1
        name = f"_t{counter}"
        if name not in taken:
            return counter, name


def adjoint_name(node: str, taken: Container[str]) -> str:
    """IR name of the adjoint node of ``node``: ``h_bar`` (``h_bar2``... if taken)."""
    name = f"{node}_bar"
    k = 1
    while name in taken:
        k += 1
        name = f"{node}_bar{k}"
    return name


def tangent_name(node: str, taken: Container[str]) -> str:
    """IR name of the tangent leaf of ``node`` (forward mode): ``x_dot`` (``x_dot2``... if taken)."""
    name = f"{node}_dot"
    k = 1
    while name in taken:
        k += 1
        name = f"{node}_dot{k}"
    return name


def _split(name: str) -> tuple[str, str]:
    m = _TRAILING.match(name)
    if m and m.group(1) and not m.group(1).startswith("_t"):
        return m.group(1), m.group(2)
    return name, ""


def pretty(name: str, bar: bool = False) -> str:
    """Unicode display of a name: ``W1`` -> ``W₁``, ``alpha`` -> ``α``, bar -> ``W̄₁``."""
    stem, digits = _split(name)
    stem = _GREEK.get(stem, (stem, ""))[0]
    if bar:
        stem = stem + BAR if len(stem) == 1 else "".join(c + "\u0305" for c in stem)
    return stem + digits.translate(_SUB)


def latex_name(name: str, bar: bool = False) -> str:
    r"""LaTeX display of a name: ``W1`` -> ``W_{1}``, bar -> ``\bar{W}_{1}``."""
    stem, digits = _split(name)
    if stem in _GREEK:
        stem = _GREEK[stem][1]
    elif len(stem) > 1:
        stem = r"\mathrm{" + stem.replace("_", r"\_") + "}"
    if bar:
        stem = (r"\bar{" if len(stem) <= 2 or stem.startswith("\\") else r"\overline{") + stem + "}"
    return stem + (f"_{{{digits}}}" if digits else "")
