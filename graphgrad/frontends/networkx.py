"""The raw networkx front end: a hand-built ``networkx.DiGraph`` with op/args/shape attributes.

See :mod:`graphgrad.graph` for the attributes; :func:`from_networkx` validates everything.
"""

from ..graph import from_networkx

__all__ = ["from_networkx"]
