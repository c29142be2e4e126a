"""The compiler: a graph and its adjoint equations become straight-line NumPy source.

``compile(graph, of, wrt)`` returns a :class:`CompiledFunction`; see :mod:`graphgrad.compiler.function`.
Its parts, each importing only those before it:

- :mod:`~graphgrad.compiler.ir`: the IR (values in topological order, their forms and batch flags);
- :mod:`~graphgrad.compiler.passes`: copy what is needed out of a graph and optimise it (folding,
  σ′ from the forward σ, CSE, dead code, matrix-chain order);
- :mod:`~graphgrad.compiler.syntax`: generated code as Python syntax trees;
- :mod:`~graphgrad.compiler.program`: a program's source and the function exec'd from it;
- :mod:`~graphgrad.compiler.lowering`: the IR as NumPy statements, for an explicit
  :class:`~graphgrad.compiler.lowering.OutputSpec`;
- :mod:`~graphgrad.compiler.function`: :class:`CompiledFunction` and ``compile``.
"""

from .function import CompiledFunction, compile, compile_forward, compile_vjp, source, storage_shape
from .ir import form_of
from .lowering import OutputSpec, Site, lower
from .passes import build_ir
from .program import Program

__all__ = ["CompiledFunction", "OutputSpec", "Program", "Site", "build_ir", "compile", "compile_forward",
           "compile_vjp", "form_of", "lower", "source", "storage_shape"]
