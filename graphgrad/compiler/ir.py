"""The compiler's IR: values in topological order, each with its form and batched flag.

Every IR value has a *form* -- ``S`` (scalar), ``V`` (column), ``R`` (row), ``M`` (matrix) -- and a
batched flag (whether it depends on an input fed with a batch axis).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..shapes import matrix_form, normalize

CORE = {"S": (), "V": ("r",), "R": ("c",), "M": ("r", "c")}  # a form's maths axes (rows, columns)


def form_of(shape: tuple) -> str:
    """``S``, ``V``, ``R`` or ``M`` for a graphgrad shape.

    >>> [form_of(s) for s in [(), ("N",), (1, "N"), ("K", "N")]]
    ['S', 'V', 'R', 'M']
    """
    r, c = matrix_form(normalize(shape))
    if c == 1:
        return "S" if r == 1 else "V"
    return "R" if r == 1 else "M"


@dataclass


class IRNode:
    """One IR node: an op application (or leaf) with its shape and batched flag."""

    op: str
    args: tuple[str, ...]
    shape: tuple
    value: float | None = None
    batched: bool = False
    named: bool = False

    @property
    def form(self) -> str:
        """The node's form (S, V, R, M)."""
        return form_of(self.shape)


@dataclass


class IR:
    """Nodes in topological order, the outputs, and what the signature binds."""

    nodes: dict[str, IRNode]
    targets: list[str]
    alias: dict[str, str]  # original target name -> IR node computing it
    batched: frozenset
    sizes: dict[str, int]
    leaves: list[str] = field(default_factory=list)

    def consumers(self) -> dict[str, int]:
        """Use count of each node (outputs count once)."""
        uses = dict.fromkeys(self.nodes, 0)
        for n in self.nodes.values():
            for a in n.args:
                uses[a] += 1
        for t in self.targets:
            uses[self.alias.get(t, t)] += 1
        return uses
