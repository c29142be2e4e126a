"""Generated code as Python syntax trees, printed once with ``ast.unparse``.

``ast.unparse`` parenthesises by precedence (``(-a) ** 2.0``, ``(-p).dtype``). An op's ``code``
entry is a template (trusted text of the op table) in placeholder names; operands are substituted
as trees, never pasted as text, and every name comes from :class:`graphgrad.naming.CodeNames`.

>>> import ast
>>> ast.unparse(expr(f"{tok(0)} ** 2.0", ast.UnaryOp(ast.USub(), identifier("a"))))
'(-a) ** 2.0'
"""

from __future__ import annotations

import ast
import copy
import functools
import math
import re
from collections.abc import Callable

from ..errors import GraphgradError
from ..naming import CODE_GLOBALS, is_code_identifier

_TOKEN = re.compile(r"__gg(T?)(\d+)__\Z")


def tok(i: int, t: bool = False) -> str:
    """Placeholder for operand ``i`` (transposed: ``t``) in a code template."""
    return f"__gg{'T' if t else ''}{i}__"


@functools.lru_cache(maxsize=8192)


def template_tree(template: str) -> ast.AST:
    """A code template as a tree: an expression, or one statement (``a += b``)."""
    try:
        return ast.parse(template, mode="eval").body
    except SyntaxError:
        pass
    try:
        body = ast.parse(template, mode="exec").body
    except SyntaxError as e:
        raise GraphgradError(f"a code entry gave {template!r}, which is not Python: {e.msg}",
                             hint="an OpSpec code= entry returns one NumPy expression or statement") from None
    if len(body) != 1 or not isinstance(body[0], (ast.AugAssign, ast.Expr)):
        raise GraphgradError(f"a code entry gave {template!r}, not one expression or augmented assignment",
                             hint="an OpSpec code= entry returns one NumPy expression or statement")
    return body[0]


class _Substitute(ast.NodeTransformer):
    def __init__(self, spell: Callable[[int, bool], ast.expr]) -> None:
        self.spell = spell

    def visit_Name(self, node: ast.Name) -> ast.AST:
        m = _TOKEN.match(node.id)
        if m is None:
            return node
        value = self.spell(int(m[2]), bool(m[1]))
        if isinstance(node.ctx, ast.Store):  # the target of ``a += b``: a buffer, so a name
            if not isinstance(value, ast.Name):
                raise GraphgradError(f"an in-place code entry writes into {ast.unparse(value)}, not a name")
            return ast.Name(value.id, ast.Store())
        return value


def fill(template: str, spell: Callable[[int, bool], ast.expr]) -> ast.AST:
    """The template's tree with its placeholders replaced by the operands' trees."""
    return _Substitute(spell).visit(copy.deepcopy(template_tree(template)))


def is_statement(tree: ast.AST) -> bool:
    """Whether filled code is a statement (``a += b``) rather than an expression."""
    return isinstance(tree, ast.stmt)


def identifier(ident: str) -> ast.Name:
    """A name read in generated code (every identifier was checked by :mod:`graphgrad.naming`)."""
    if not is_code_identifier(ident) and ident not in CODE_GLOBALS:
        raise GraphgradError(f"internal: {ident!r} reached generated code without naming.CodeNames")
    return ast.Name(ident, ast.Load())


def const(v: float) -> ast.expr:
    """A float in generated code; a negative one as ``-c`` (``ast.unparse`` then parenthesises it)."""
    v = float(v)
    if v < 0 or (v == 0 and math.copysign(1.0, v) < 0):
        return ast.UnaryOp(ast.USub(), ast.Constant(-v))
    return ast.Constant(v)


def expr(template: str, *operands: ast.expr) -> ast.expr:
    """``template`` (in ``tok(i)`` placeholders) applied to operand trees."""
    return fill(template, lambda i, t: operands[i])


def stmt_text(template: str, deps: list) -> Callable[..., ast.expr]:
    """A statement's code: ``template`` with placeholder i read from ``deps[i]``."""
    return lambda r: fill(template, lambda i, t: r(deps[i], t))
