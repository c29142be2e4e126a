"""The model text format (``*.gg``), parsed with ``ast`` against a whitelist -- never ``eval``.

::

    # residual MLP with a two-branch loss
    input x[N]
    param W1[K, N]  b1[K]  W2[N, K]  b2[N]
    const r[K]  s[N]

    z = W1 @ x + b1
    h = sigmoid(z)
    y = x + W2 @ h + b2
    S = 0.5 * norm(y - s)**2
    R = dot(r, h)
    L = S + R

* Declarations: ``input``, ``param`` or ``const``, then one or more ``name[dims]`` (dims are ints
  or size names; ``name`` alone or ``name[]`` is a scalar), separated by spaces or commas.
* Equations: ``name = expr``, one per line, where ``expr`` uses names, numbers, ``+ - * / @ **``,
  unary ``-``, ``.T``, parentheses and calls of the ops in the op table (``sigmoid(z)``). A size
  name may be used as a scalar (``(1/n) * norm(X @ w - t)**2``). Exponents are numbers.
* ``#`` starts a comment. A name is defined once, before it is used.
"""

from __future__ import annotations

import ast
import difflib
import operator
import os
import re
import warnings
from pathlib import Path

from ..errors import GraphgradError, NamingError, ParseError, UnknownOpError
from ..files import read_file
from ..graph import Graph, Var
from ..naming import check_user_name
from ..ops import PUBLIC_OPS

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.MatMult: "matmul",
           ast.Pow: "pow"}
_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
          ast.Div: operator.truediv, ast.Pow: operator.pow}
_DECL = re.compile(r"(input|param|const)(?=\s|$)")
_ITEM = re.compile(r"\s*([A-Za-z_]\w*)\s*(\[([^\]\[]*)\])?\s*,?")
_NAMES = {
    ast.Lambda: "lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator expression",
    ast.Subscript: "indexing", ast.Compare: "a comparison", ast.BoolOp: "and/or",
    ast.IfExp: "a conditional expression", ast.List: "a list", ast.Tuple: "a tuple",
    ast.Dict: "a dict", ast.Set: "a set", ast.JoinedStr: "an f-string", ast.Starred: "*args",
    ast.Await: "await", ast.Yield: "yield", ast.NamedExpr: "the := operator", ast.Slice: "a slice",
}
MAX_LINE = 100_000


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BAD_CHAR = re.compile("[\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_BAD_NAMES = {"\x0b": "LINE TABULATION", "\x0c": "FORM FEED", "\x1c": "FILE SEPARATOR",
              "\x1d": "GROUP SEPARATOR", "\x1e": "RECORD SEPARATOR", "\x85": "NEXT LINE",
              "\u2028": "LINE SEPARATOR", "\u2029": "PARAGRAPH SEPARATOR"}


def split_lines(text: str) -> list[str]:
    r"""The model's lines, as editors count them and every error's line/col does: a line ends at
    ``\n``, ``\r\n`` or ``\r`` (not at the other characters :meth:`str.splitlines` breaks at,
    which :func:`parse` rejects).

    >>> split_lines("a\r\nb\rc\n"), split_lines("a\u2028b"), split_lines("")
    (['a', 'b', 'c'], ['a\u2028b'], [])
    """
    lines = _LINE_BREAK.split(text)
    if lines[-1] == "":
        lines.pop()  # a final line break ends the last line; it does not start another
    return lines


def locate(text: str, pos: int) -> tuple[int, int]:
    r"""The (line, col), both from 1, of character ``pos`` of ``text``, on :func:`split_lines` lines.

    >>> locate("ab\r\ncd", 5)
    (2, 2)
    """
    line, start = 1, 0
    for m in _LINE_BREAK.finditer(text, 0, pos):
        line, start = line + 1, m.end()
    return line, pos - start + 1


def parse(text: str, source: str = "<model>") -> Graph:
    """Parse model text into a validated :class:`Graph` (nothing in it is executed)."""
    if not isinstance(text, str):
        raise ParseError(f"model text must be str, got {type(text).__name__}",
                         hint="decode bytes first (text.decode('utf-8')), or read a file with graphgrad.load(path)")
    if not isinstance(source, str):
        raise ParseError(f"source must be str (the model's name in messages), got {type(source).__name__}",
                         hint="pass source='my_model.gg', or leave it out")
    return _Parser(source).parse(text)


MAX_MODEL_BYTES = 1 << 20
"""Largest model file :func:`load` reads (1 MiB: a model of tens of thousands of lines)."""


def load(path: str | Path) -> Graph:
    """Read and parse a model file (``*.gg``): a regular file of at most :data:`MAX_MODEL_BYTES`
    (a FIFO or ``/dev/zero`` is refused, never read)."""
    if not isinstance(path, (str, os.PathLike)):
        raise ParseError(f"the path of a model file must be str or os.PathLike, got {type(path).__name__}",
                         hint="pass the file's path, e.g. graphgrad.load('model.gg'); for model text use graphgrad.parse")
    try:
        p = Path(path)
    except TypeError:  # an os.PathLike whose __fspath__ gives bytes
        raise ParseError("the path of a model file must be text", hint="pass the path as str") from None
    raw = read_file(p, "model file", MAX_MODEL_BYTES, "give the path of a model file (*.gg)", ParseError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        head = raw[: e.start].decode("utf-8")  # valid up to the bad byte; lines and cols as parse counts them
        line, col = locate(head, len(head))
        raise ParseError(f"{p.name} is not UTF-8 text (byte 0x{raw[e.start]:02x})", line=line,
                         col=col, hint="save the model file as UTF-8") from None
    return parse(text, source=str(p))


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.g = Graph()
        self.sizes: set[str] = set()
        self.defined_at: dict[str, int] = {}
        self.later: dict[str, int] = {}

    def parse(self, text: str) -> Graph:
        bad = _BAD_CHAR.search(text)
        if bad:  # NUL, or a line break of str.splitlines that no editor shows as one
            line, col = locate(text, bad.start())
            c = bad.group()
            if c == "\x00":
                raise ParseError("the model text contains a NUL byte", line=line, col=col,
                                 hint="model files are plain text")
            raise ParseError(f"invalid character U+{ord(c):04X} ({_BAD_NAMES[c]})", line=line, col=col,
                             hint="remove it; lines end with a plain newline (\\n)")
        lines = split_lines(text)
        # where each name gets defined, for a better 'used before defined' message
        for i, raw in enumerate(lines, 1):
            m = re.match(r"\s*([A-Za-z_]\w*)\s*=(?!=)", raw)
            if m:
                self.later.setdefault(m.group(1), i)
        for i, raw in enumerate(lines, 1):
            if len(raw) > MAX_LINE:
                raise ParseError(f"line is {len(raw)} characters long (limit {MAX_LINE})", line=i,
                                 col=MAX_LINE + 1,
                                 hint="split the expression into named steps")
            code = raw.split("#", 1)[0]
            if not code.strip():
                continue
            indent = len(code) - len(code.lstrip())
            m = _DECL.match(code, indent)
            if m:
                self._declaration(m.group(1), code, m.end(), i)
            else:
                self._equation(code, i)
        if len(self.g) == 0:
            raise ParseError("the model is empty", line=max(len(lines), 1), col=1,
                             hint="declare inputs and write equations")
        return self.g

    # ------------------------------------------------------------------ declarations
    def _declaration(self, kind: str, code: str, pos: int, line: int) -> None:
        items = 0
        end = len(code.rstrip())
        while pos < end:
            m = _ITEM.match(code, pos)
            if not m or m.end() == pos:
                raise ParseError(f"cannot read a declaration at {code[pos:].strip()[:20]!r}", line=line,
                                 col=pos + 1 + (len(code[pos:]) - len(code[pos:].lstrip())),
                                 hint=f"write {kind} name[dims], e.g. {kind} W1[K, N]")
            name, col = m.group(1), m.start(1) + 1
            dims: list[int | str] = []
            if m.group(3) is not None and m.group(3).strip():
                dcol = m.start(3) + 1
                for part in m.group(3).split(","):
                    d = part.strip()
                    pcol = dcol + len(part) - len(part.lstrip())
                    if re.fullmatch(r"\d+", d):
                        dims.append(int(d))
                    elif d.isidentifier() and not d.startswith("_"):
                        check_user_name(d, line=line, col=pcol)  # not a keyword or reserved word
                        dims.append(d)
                        self.sizes.add(d)
                    else:
                        raise ParseError(f"bad dim {d!r} in {name}[{m.group(3)}]", line=line, col=pcol,
                                         hint="dims are integers or size names, e.g. [K, N]")
                    dcol += len(part) + 1
            if name in self.sizes:
                raise NamingError(f"{name!r} is used as a size, so it cannot also be a variable",
                                 line=line, col=col, hint="rename the variable or the size")
            try:
                getattr(self.g, kind)(name, tuple(dims))
            except GraphgradError as e:
                raise type(e)(e.message, node=name, line=line, col=col, hint=e.hint) from None
            self.g.attrs(name).update(line=line, col=col)
            self.defined_at[name] = line
            for d in dims:
                if isinstance(d, str) and d in self.g and self.g.op(d) != "size":
                    raise NamingError(f"{d!r} is a variable, so it cannot also be a size", line=line,
                                     col=col, hint="rename the variable or the size")
            items += 1
            pos = m.end()
        if items == 0:
            raise ParseError(f"{kind} declares nothing", line=line, col=pos + 1,
                             hint=f"write {kind} name[dims], e.g. {kind} x[N]")

    # ------------------------------------------------------------------ equations
    def _equation(self, code: str, line: int) -> None:
        try:
            with warnings.catch_warnings():  # e.g. "invalid escape sequence": not the user's concern
                warnings.simplefilter("ignore")
                tree = ast.parse(code.strip(), mode="exec")
        except SyntaxError as e:
            off = len(code) - len(code.lstrip())
            raise ParseError(f"syntax error: {e.msg}", line=line, col=(e.offset or 1) + off,
                             hint="equations read name = expression") from None
        except (RecursionError, MemoryError, ValueError, OverflowError):
            raise ParseError("expression too deeply nested or too large", line=line, col=1,
                             hint="split it into named steps") from None
        off = len(code) - len(code.lstrip())
        self.off = off
        self.src = code.strip().encode("utf-8")
        if len(tree.body) != 1:
            raise ParseError("one equation per line", line=line, col=1 + off)
        stmt = tree.body[0]
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1 or \
                not isinstance(stmt.targets[0], ast.Name):
            raise ParseError(f"expected 'name = expression', got {_what(stmt)}", line=line,
                             col=stmt.col_offset + 1 + off,
                             hint="each line is a declaration (input/param/const) or name = expression")
        target = stmt.targets[0].id
        tcol = stmt.targets[0].col_offset + 1 + off
        if target in self.g:
            first = self.g.attrs(target).get("line")
            raise NamingError(f"{target!r} is already defined" + (f" on line {first}" if first else ""),
                             line=line, col=tcol, hint="give each value its own name")
        if target in self.sizes:
            raise NamingError(f"{target!r} is a size name", line=line, col=tcol,
                             hint="rename the variable or the size")
        try:
            value = self._expr(stmt.value, line, target)
            if isinstance(value, float):
                value = self.g.literal(value)
            self.g.name_node(value, target, line=line, col=tcol)
        except GraphgradError as e:
            if e.line is None or e.node is None:
                raise type(e)(e.message, node=e.node or target, line=e.line or line,
                              col=e.col if e.line else tcol, hint=e.hint) from None
            raise
        self.defined_at[target] = line

    def _expr(self, root: ast.AST, line: int, target: str) -> Var | float:
        """Build the expression's nodes, post-order and iteratively; pure numbers fold to floats."""
        done: dict[int, Var | float] = {}
        stack: list[tuple[ast.AST, bool]] = [(root, False)]
        while stack:
            node, visited = stack.pop()
            if not visited:
                self._check(node, line)
                stack.append((node, True))
                kids = _children(node)
                stack.extend((k, False) for k in reversed(kids))
                continue
            done[id(node)] = self._build(node, done, line, target)
        return done[id(root)]

    def _col(self, node: ast.AST) -> int:
        # ast's col_offset counts UTF-8 bytes; columns users see count characters
        chars = len(self.src[: getattr(node, "col_offset", 0)].decode("utf-8", "ignore"))
        return chars + 1 + self.off

    def _check(self, node: ast.AST, line: int) -> None:
        col = self._col(node)
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise ParseError(f"the operator {_opname(node.op)} is not allowed", line=line, col=col,
                                 hint="use + - * / @ ** and op calls")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise ParseError(f"the operator {_opname(node.op)} is not allowed", line=line, col=col)
        elif isinstance(node, ast.Name):
            pass
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise ParseError(f"{node.value!r} is not a number", line=line, col=col,
                                 hint="only numbers and names may appear in expressions")
        elif isinstance(node, ast.Attribute):
            if node.attr != "T":
                raise ParseError(f"attribute access .{node.attr} is not allowed (only .T, the transpose)",
                                 line=line, col=col, hint="write x.T for the transpose; call ops as f(x)")
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise ParseError("only ops may be called, by name, e.g. sigmoid(z)", line=line, col=col)
            fname = node.func.id
            if fname not in PUBLIC_OPS:
                close = difflib.get_close_matches(fname, PUBLIC_OPS, n=1)
                raise UnknownOpError(f"unknown op {fname!r}", line=line, col=col,
                                     hint=(f"did you mean {close[0]}? " if close else "")
                                     + "known ops: " + ", ".join(PUBLIC_OPS))
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise ParseError(f"{fname} takes positional operands only", line=line, col=col)
        else:
            raise ParseError(f"{_what(node)} is not allowed in a model", line=line, col=col,
                             hint="expressions use names, numbers, + - * / @ **, .T and op calls")

    def _build(self, node: ast.AST, done: dict, line: int, target: str) -> Var | float:
        col = self._col(node)
        where = dict(line=line, col=col)
        g = self.g
        if isinstance(node, ast.Constant):
            try:
                v = float(node.value)
            except OverflowError:  # an integer literal beyond float range (10**400 written out)
                raise ParseError("the number is too large", **where, hint="write a finite number") from None
            if v != v or v in (float("inf"), float("-inf")):
                raise ParseError(f"the number {node.value!r} is not finite", **where)
            return v
        if isinstance(node, ast.Name):
            return self._name(node.id, line, col)
        if isinstance(node, ast.UnaryOp):
            x = done[id(node.operand)]
            if isinstance(node.op, ast.UAdd):
                return x
            return -x if isinstance(x, float) else g.apply("neg", x, line=line, col=col)
        if isinstance(node, ast.Attribute):
            x = done[id(node.value)]
            return x if isinstance(x, float) else g.apply("transpose", x, line=line, col=col)
        if isinstance(node, ast.BinOp):
            a, b = done[id(node.left)], done[id(node.right)]
            op = _BINOPS[type(node.op)]
            if isinstance(a, float) and isinstance(b, float) and op != "matmul":
                try:
                    r = _ARITH[type(node.op)](a, b)
                    if isinstance(r, complex):  # (-8) ** 0.5
                        raise ValueError("the result is a complex number")
                    v = float(r)
                except (ZeroDivisionError, OverflowError, ValueError) as e:
                    raise ParseError(f"cannot compute the constant: {e}", **where) from None
                if v != v or v in (float("inf"), float("-inf")):
                    raise ParseError("the constant is not a finite real number", **where)
                return v
            if op == "pow" and not isinstance(b, float):
                raise ParseError("the exponent must be a number", line=line, col=self._col(node.right),
                                 hint="for a variable exponent use exp(b * log(a))")
            return g.apply(op, a, b, line=line, col=col)
        if isinstance(node, ast.Call):
            args = [done[id(a)] for a in node.args]
            return g.apply(node.func.id, *args, line=line, col=col)
        raise ParseError(f"{_what(node)} is not allowed", **where)  # unreachable: _check ran

    def _name(self, name: str, line: int, col: int) -> Var:
        g = self.g
        if name in g and g.op(name) != "size":
            return g[name]
        if name in self.sizes:
            return g.size(name)
        if name in self.later and self.later[name] >= line:
            raise NamingError(f"{name!r} is used before it is defined (on line {self.later[name]})",
                             line=line, col=col, hint="define each name before its first use")
        known = [n for n in g.named_nodes()] + sorted(self.sizes)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        raise NamingError(f"{name!r} is not defined", line=line, col=col,
                         hint=(f"did you mean {close[0]}? " if close else "")
                         + "declare it with input/param/const, or define it with an equation")


def _children(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Attribute):
        return [node.value]
    if isinstance(node, ast.Call):
        return list(node.args)
    return []


def _opname(op: ast.AST) -> str:
    return {"FloorDiv": "//", "Mod": "%", "LShift": "<<", "RShift": ">>", "BitOr": "|",
            "BitXor": "^", "BitAnd": "&", "Invert": "~", "Not": "not"}.get(type(op).__name__,
                                                                           type(op).__name__)


def _what(node: ast.AST) -> str:
    for cls, name in _NAMES.items():
        if isinstance(node, cls):
            return name
    return type(node).__name__.lower()
