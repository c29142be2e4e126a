"""Shape algebra: column vectors, scalars, broadcasting, matmul.

A shape is a tuple of at most two dims; a dim is an ``int`` or a size name such as ``"N"``.

* ``()`` is a scalar, ``(N,)`` a column vector (N x 1 in the maths), ``(R, C)`` a matrix.
* Every shape has a 2-D *matrix form*: ``()`` -> ``(1, 1)``, ``(N,)`` -> ``(N, 1)``.
  Shape rules work on matrix forms and give results back in canonical form
  (``(1, 1)`` -> ``()``, ``(N, 1)`` -> ``(N,)``), so ``x.T @ y`` is a scalar and ``x @ y.T`` a matrix.
* Broadcasting (element-wise ops) is NumPy's, applied to the matrix forms: each of the two axes
  must agree or be 1 on one side. So a scalar broadcasts everywhere, a ``[K]`` bias adds to a
  ``[K, B]`` matrix column by column, and a row ``[1, B]`` adds row by row.
* A size name and an integer are taken to agree when shapes are checked; the binding of the name
  is checked when values are fed.

>>> matrix_form(("N",))
('N', 1)
>>> broadcast(("K",), ("K", "B"))
('K', 'B')
>>> matmul_shape(("K", "N"), ("N",))
('K',)
>>> matmul_shape(("N", "K"), ()) is None  # K against 1
True
"""

from __future__ import annotations

from typing import Union

Dim = Union[int, str]
Shape = tuple[Dim, ...]


def matrix_form(shape: Shape) -> tuple[Dim, Dim]:
    """The 2-D form of a shape: scalars are 1 x 1, vectors are columns."""
    if len(shape) == 0:
        return (1, 1)
    if len(shape) == 1:
        return (shape[0], 1)
    if len(shape) == 2:
        return (shape[0], shape[1])
    raise ValueError(f"graphgrad shapes have at most 2 dims, got {shape!r}")


def canonical(rows: Dim, cols: Dim) -> Shape:
    """Canonical shape of an R x C result: ``()`` for 1 x 1, ``(R,)`` for R x 1.

    >>> canonical(1, 1), canonical("N", 1), canonical(1, "N")
    ((), ('N',), (1, 'N'))
    """
    if cols == 1:
        return () if rows == 1 else (rows,)
    return (rows, cols)


def normalize(shape: Shape) -> Shape:
    """Canonical form of any shape (``(N, 1)`` -> ``(N,)``)."""
    return canonical(*matrix_form(tuple(shape)))


def fmt(shape: Shape) -> str:
    """Shape as users write it: ``[K, N]``, ``[N]``, ``[]``.

    >>> fmt(("K", "N")), fmt(()), fmt((3,))
    ('[K, N]', '[]', '[3]')
    """
    return "[" + ", ".join(str(d) for d in shape) + "]"


def dims_agree(a: Dim, b: Dim) -> bool:
    """Whether two dims may be equal (equal values, or a name against an int)."""
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return True


def _pick(a: Dim, b: Dim) -> Dim:
    """The more informative of two agreeing dims (prefer the name, which users wrote)."""
    return a if isinstance(a, str) else b


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """Shape of an element-wise op on ``a`` and ``b``, or None when they do not broadcast."""
    out = []
    for da, db in zip(matrix_form(a), matrix_form(b)):
        if da == 1:
            out.append(db)
        elif db == 1:
            out.append(da)
        elif dims_agree(da, db):
            out.append(_pick(da, db))
        else:
            return None
    return canonical(*out)


def matmul_shape(a: Shape, b: Shape) -> Shape | None:
    """Shape of ``a @ b`` on matrix forms, or None when inner dims differ."""
    (ra, ca), (rb, cb) = matrix_form(a), matrix_form(b)
    if not dims_agree(ca, rb) or (1 in (ca, rb) and ca != rb):
        # a size name against 1 (``[N, K] @ s`` for a scalar s) holds only when the size is 1,
        # and the reverse pass of such a product cannot be shaped statically ([K] vs [])
        return None
    return canonical(ra, cb)


def transpose_shape(a: Shape) -> Shape:
    """Shape of ``a.T``: ``[N]`` -> ``[1, N]``.

    >>> transpose_shape(("N",))
    (1, 'N')
    """
    r, c = matrix_form(a)
    return canonical(c, r)


def same(a: Shape, b: Shape) -> bool:
    """Whether two shapes are statically identical."""
    return normalize(a) == normalize(b)


def is_scalar(a: Shape) -> bool:
    """Whether a shape is a scalar (``[]`` or 1 x 1)."""
    return normalize(a) == ()


def is_vector(a: Shape) -> bool:
    """Whether a shape is a column vector ``[N]``."""
    return len(normalize(a)) == 1


def size_names(shape: Shape) -> list[str]:
    """The size names used in a shape."""
    return [d for d in shape if isinstance(d, str)]
