"""The op table: every op graphgrad knows, one section each (its shape rule, NumPy kernel, SymPy
form, matrix form, compiler code and VJP rule beside its :class:`~graphgrad.ops.spec.OpSpec`), in
five files by kind. The conventions every rule follows are stated once in :mod:`graphgrad.ops.spec`.
"""

from ..spec import table
from . import arithmetic, functions, internal, matrix, reductions
from .functions import np_sigmoid
from .matrix import code_matmul
from .reductions import code_sqnorm

_BY_NAME = {s.name: s for m in (arithmetic, matrix, functions, reductions, internal) for s in m.ENTRIES}
ORDER = ('add', 'sub', 'mul', 'div', 'matmul', 'transpose', 'neg', 'pow', 'sigmoid', 'tanh', 'relu', 'exp', 'log', 'sqrt', 'dsigmoid', 'dtanh', 'drelu', 'norm', 'dot', 'sum', 'mean', 'id', 'unit', 'sum_to', 'expand')
"""The table's order (``graphgrad ops`` lists it): arithmetic, products, functions, reductions."""

OPS = table(*(_BY_NAME[name] for name in ORDER))
"""Every op by name."""

PUBLIC_OPS = tuple(name for name, s in OPS.items() if s.public)

__all__ = ["OPS", "PUBLIC_OPS", "code_matmul", "code_sqnorm", "np_sigmoid"]
