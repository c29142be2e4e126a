"""The SymPy printers: Unicode text (:mod:`.text`) and LaTeX (:mod:`.latex`) of graphgrad's expressions.

Presenters: the symbolic back end imports neither; the facade (``graphgrad/__init__.py``) hands
them to it (:data:`graphgrad.symbolic.equations.PRINTERS`), and the renderer
(:mod:`graphgrad.drawing`) writes its labels with them.
"""
