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
from collections.abc import Container, Iterable

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


# ----------------------------------------------------------------------------- names in generated code
# Node names are data: a networkx graph may name a node "h 1" or "np[__import__('os')...]". Every
# identifier the compiler writes into Python source comes from here, checked and mangled.

_ASCII_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_GENERATED = re.compile(r"_t\d+(?:_\w*)?\Z")  # graphgrad's own sub-expression names (_t3, _t3_bar)
CODE_GLOBALS = frozenset({"np", "B"})
"""Names the generated function itself reads (NumPy, the batch size); helper functions and op
kernels it calls all start with ``_`` (never ``_t<digit>``), which user names cannot."""


def is_code_identifier(name: object) -> bool:
    """Whether ``name`` may stand in generated source as it is.

    ASCII only (Python folds other identifiers with NFKC, so two distinct names could become one),
    not a keyword, not one of the code's globals, and ``_``-prefixed only as graphgrad's own ``_t3``.

    >>> [is_code_identifier(n) for n in ("W1", "h 1", "np", "lambda", "_t3", "_sigmoid", "λ")]
    [True, False, False, False, True, False, False]
    """
    return (isinstance(name, str) and _ASCII_IDENT.match(name) is not None and not keyword.iskeyword(name)
            and name not in CODE_GLOBALS and (not name.startswith("_") or _GENERATED.match(name) is not None))


def mangle(name: object) -> str:
    """A valid identifier close to ``name`` (which :func:`is_code_identifier` refused).

    >>> mangle("h 1"), mangle("np"), mangle("class"), mangle("1x"), mangle("_sigmoid"), mangle("λ")
    ('h_1', 'np_', 'class_', 'n1x', 'n_sigmoid', 'n_u3bb')
    """
    text = str(name)
    out = "".join(c if c.isascii() and (c.isalnum() or c == "_") else
                  ("_" if c.isascii() else f"_u{ord(c):x}") for c in text)
    if not out or not out[0].isalpha():
        out = "n" + out
    if keyword.iskeyword(out) or out in CODE_GLOBALS:
        out += "_"
    return out


class CodeNames:
    """Assigns every name a generated program uses a distinct, safe Python identifier.

    Names that are already safe keep their spelling (``W1``, ``_t3``); the rest are mangled
    (``h 1`` -> ``h_1``) without colliding with any other. ``derived(base, suffix)`` makes the
    compiler's own names (``x_bar``, ``h_sum``) from an assigned identifier.

    >>> names = CodeNames(["h 1", "h_1", "np"])
    >>> names["h 1"], names["h_1"], names["np"], names.derived("h_1", "_bar")
    ('h_1_2', 'h_1', 'np_', 'h_1_bar')
    """

    def __init__(self, names: Iterable[object], reserved: Iterable[str] = ()) -> None:
        self.taken: set[str] = set(CODE_GLOBALS) | set(reserved)
        self.ident: dict[object, str] = {}
        names = list(dict.fromkeys(names))
        for n in names:  # safe names first, so that they keep their spelling
            if is_code_identifier(n) and n not in self.taken:
                self.ident[n] = n
                self.taken.add(n)
        for n in names:
            if n not in self.ident:
                self.ident[n] = self.fresh(mangle(n))

    def __getitem__(self, name: object) -> str:
        return self.ident[name]

    def __contains__(self, name: object) -> bool:
        return name in self.ident

    def fresh(self, base: str) -> str:
        """``base`` (a valid identifier), or ``base_2``, ``base_3``... if taken; then taken."""
        if not _ASCII_IDENT.match(base) or keyword.iskeyword(base):
            raise NamingError(f"internal: {base!r} is no identifier for generated code")
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def derived(self, name: object, suffix: str) -> str:
        """A fresh identifier for a value derived from ``name`` (``x`` -> ``x_bar``)."""
        return self.fresh(self.ident[name] + suffix)


def check_function_name(name: object) -> str:
    """Validate the name of a generated function (``graphgrad.compile(..., name=...)``).

    >>> check_function_name("grad_fn")
    'grad_fn'
    >>> check_function_name("class")
    Traceback (most recent call last):
    ...
    graphgrad.errors.NamingError: 'class' cannot name the generated function: a Python keyword (fix: use letters, digits and _, not first, e.g. grad_fn)
    """
    why = None
    if not isinstance(name, str):
        why = f"a {type(name).__name__}, not a string"
    elif not _ASCII_IDENT.match(name):
        why = "not an ASCII Python identifier"
    elif keyword.iskeyword(name):
        why = "a Python keyword"
    elif name in CODE_GLOBALS:
        why = "a name the generated code uses itself"
    elif name.startswith("_"):
        why = "names starting with '_' are the generated code's helpers"
    if why is not None:
        raise NamingError(f"{name!r} cannot name the generated function: {why}",
                          hint="use letters, digits and _, not first, e.g. grad_fn")
    return name
