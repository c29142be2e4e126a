"""Printers: Unicode text (:mod:`.text`), LaTeX (:mod:`.latex`) and Graphviz pictures (``dot``).

Nothing in the core imports this package; :mod:`graphgrad.symbolic` uses the text and LaTeX
printers to show adjoint equations the way a lecturer writes them.
"""
