"""Backprop equations and derivatives as SymPy matrix expressions, printed the way a lecturer writes them.

:func:`backprop` gives one :class:`AdjointEquation` per user-named node that ``of`` depends on,
in reverse topological order; :func:`derivative` gives ∂of/∂wrt as one matrix expression
(:class:`Derivative`), whose :meth:`~Derivative.evaluate` computes it from the SymPy expression
itself (``lambdify``), independently of :mod:`graphgrad.interpret`.

Where the maths comes from: the one reverse pass, :func:`graphgrad.autodiff.backward`, in its
``symbolic=True`` form — the op table's own ``vjp`` rules (the evaluator's rules, not a second
set), except that each user-named node's adjoint enters its operands' rules as a *symbol* (``h̄``). Anonymous
sub-expression nodes are folded into their named consumer's equation. Each IR node then becomes a
SymPy matrix expression, by its op's ``matrix`` form in the op table (:class:`Converter` supplies the
helpers it builds with): ``MatrixSymbol`` for vectors (N x 1) and matrices, ``Symbol`` for scalars
and size names, ``MatMul``/``Transpose``/``HadamardProduct``/``MatAdd``, and the small classes of
this package for element-wise functions (:class:`Apply`, printed ``σ(z)``), norms (:class:`Norm`)
and reductions. SymPy's own canonicalisation folds the trivial factors (½ · 2 = 1,
‖u‖ · u/‖u‖ = u).

The modules, each importing only those above it:

- ``expressions.py``: the SymPy classes (:class:`Apply`, :class:`Norm`, ...), :func:`var_symbol`,
  :func:`size_symbol`, and the :class:`Converter` (IR -> SymPy);
- ``factoring.py``: :func:`factor_scalars` (2 X w − 2 t -> 2 (X w − t));
- ``numeric.py``: numbers from SymPy expressions (:func:`evaluate_expr`, ``lambdify``);
- ``equations.py``: the symbolic reverse sweep (:func:`sweep`), :func:`backprop` and its
  :class:`AdjointEquation` / :class:`Equations`;
- ``derivative.py``: :func:`derivative` and :class:`Derivative` (one matrix expression, Jacobians).

>>> import graphgrad as gg
>>> g = gg.parse("input x[N]\\nparam W[K, N]\\nconst r[K]\\nL = dot(r, sigmoid(W @ x))")
>>> print(derivative(g, "L", "W"))
∂L/∂W = (r ⊙ σ′(W x)) xᵀ
"""

from __future__ import annotations

from .derivative import Derivative, derivative
from .equations import AdjointEquation, Equations, Sweep, adjoint_symbol, backprop, model_rank, sweep
from .expressions import (
    AdjointMatrix,
    AdjointSymbol,
    Apply,
    Converter,
    Diag,
    Inner,
    Norm,
    ScalarApply,
    Total,
    dims,
    hadamard,
    is_matrix,
    size_symbol,
    var_symbol,
)
from .factoring import factor_scalars
from .numeric import evaluate_expr

__all__ = ["backprop", "derivative", "AdjointEquation", "Equations", "Derivative", "Apply",
           "ScalarApply", "Norm", "Inner", "Total", "Diag", "AdjointSymbol", "AdjointMatrix",
           "Converter", "Sweep", "sweep", "var_symbol", "size_symbol", "factor_scalars",
           "model_rank", "adjoint_symbol", "evaluate_expr", "dims", "hadamard", "is_matrix"]
