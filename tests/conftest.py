"""Shared fixtures: the residual MLP and seeded values for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graphgrad as gg

ROOT = Path(__file__).resolve().parent.parent
RESIDUAL = ROOT / "examples" / "residual_mlp.gg"


def residual_values(N: int = 3, K: int = 2, B: int | None = None, seed: int = 0, dtype=np.float64) -> dict:
    """Seeded values for the residual MLP (x batched when B is given)."""
    rng = np.random.default_rng(seed)
    x_shape = (B, N) if B else (N,)
    vals = dict(x=rng.standard_normal(x_shape), W1=rng.standard_normal((K, N)), b1=rng.standard_normal(K),
                W2=rng.standard_normal((N, K)), b2=rng.standard_normal(N), r=rng.standard_normal(K),
                s=rng.standard_normal(N))
    return {k: v.astype(dtype) for k, v in vals.items()}


@pytest.fixture
def mlp() -> gg.Graph:
    return gg.load(RESIDUAL)


@pytest.fixture
def mlp_values() -> dict:
    return residual_values()


@pytest.fixture
def install_ops(monkeypatch):
    """``install(*specs)``: add OpSpec entries to the op table for one test (every graphgrad
    module's ``OPS`` and the parser's ``PUBLIC_OPS`` are swapped; undone after the test)."""
    import sys

    from graphgrad import ops

    def install(*specs):
        old, old_public = ops.OPS, ops.PUBLIC_OPS
        table = ops.table(*old.values(), *specs)
        public = tuple(n for n, s in table.items() if s.public)
        for mod in list(sys.modules.values()):
            if mod.__name__.startswith("graphgrad"):
                if getattr(mod, "OPS", None) is old:
                    monkeypatch.setattr(mod, "OPS", table)
                if getattr(mod, "PUBLIC_OPS", None) is old_public:
                    monkeypatch.setattr(mod, "PUBLIC_OPS", public)
        return table

    return install
