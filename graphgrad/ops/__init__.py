"""The op table: the single source of truth for every op graphgrad knows.

:mod:`.spec` holds :class:`OpSpec` (with the conventions every rule follows) and ``table``, which
checks entries; :mod:`.entries` holds the ops, one section each with all of its rules. Adding an op
means adding one entry (see docs/architecture.md, "Adding an op").
"""

from .entries import OPS, PUBLIC_OPS, code_matmul, code_sqnorm, np_sigmoid
from .spec import (
    LEAF_KINDS,
    REDUCE,
    OpSpec,
    Render,
    broadcast_shape,
    call,
    infix,
    matrix_elementwise,
    numel_value,
    same_shape,
    scalar_shape,
    sympy_derivative,
    table,
    ufunc_code,
)

__all__ = ["LEAF_KINDS", "OPS", "PUBLIC_OPS", "REDUCE", "OpSpec", "Render", "broadcast_shape", "call",
           "code_matmul", "code_sqnorm", "infix", "matrix_elementwise", "np_sigmoid", "numel_value",
           "same_shape", "scalar_shape", "sympy_derivative", "table", "ufunc_code"]
