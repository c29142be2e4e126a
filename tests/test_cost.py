"""graphgrad.costs: FLOP and memory polynomials, numbers, and the Jacobian's mode."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import graphgrad as gg
from graphgrad.costs import measured_growth, op_flops, peak, size_symbol, walk

n = size_symbol("n")

OUTER = """
input x[n]
const v[n]
f = v @ (v.T @ x)
"""


def degree(e: sp.Expr, s: sp.Symbol = n) -> int:
    return sp.Poly(e, s).degree()


def test_outer_product_growth():
    c = gg.cost(gg.parse(OUTER), "f", "x")
    assert c.m == n and c.n == n and c.mode == "rev"
    assert degree(c.forward.flops) == 1 and degree(c.vjp.flops) == 1 and degree(c.jvp.flops) == 1
    assert degree(c.vjp.memory) == 1
    assert degree(c.jacobian.flops) == 2 and degree(c.jacobian.memory) == 2
    # J is n x n: its storage alone is n², and n VJPs cost n times one VJP's per-row part
    assert sp.Poly(c.jacobian.memory, n).coeff_monomial(n**2) == 1
    assert sp.expand(c.jacobian.flops - n * c.vjp.flops) == 0  # the VJP needs no forward values here


def test_numbers_match_the_polynomials():
    c = gg.cost(gg.parse(OUTER), "f", "x")
    nums = c.at(n=1000)
    for k in ("forward", "vjp", "jvp", "jacobian"):
        cost_k = getattr(c, k)
        assert nums[k]["flops"] == int(cost_k.flops.subs(n, 1000))
        assert nums[k]["memory"] == int(cost_k.dominant().subs(n, 1000))
    text = c.table(n=1000)
    assert "Jacobian" in text and "4,000,000" in text
    with pytest.raises(gg.GraphgradError, match="not given"):
        c.at()


def test_matmul_flops_count_multiply_adds():
    g = gg.Graph()
    A, B = g.param("A", ("R", "K")), g.param("B", ("K", "C"))
    p = A @ B
    R, K, C = (size_symbol(s) for s in "RKC")
    assert op_flops(g, p.name) == 2 * R * K * C
    assert op_flops(g, A.T.name) == 0  # a view


def test_liveness_frees_dead_values():
    # x -> a -> b -> c -> y: a chain keeps at most two intermediates alive at once
    g = gg.Graph()
    h = g.input("x", "n")
    for _ in range(4):
        h = g.apply("exp", h)
    g.name_node(h, "y")
    c = walk(g, g.topo_order(), ["y"])
    assert c.memory == 3 * n  # x, plus producer and consumer
    assert c.flops == 4 * n


def test_scalar_loss_jacobian_is_one_vjp(mlp):
    c = gg.cost(mlp, "L")
    K, N = size_symbol("K"), size_symbol("N")
    assert c.m == 1 and c.mode == "rev"
    assert sp.expand(c.jacobian.flops - c.vjp.flops) == 0
    assert sp.expand(c.n - (2 * K * N + 2 * K + 3 * N)) == 0  # every leaf L depends on
    # the peak is never below the largest single value nor above everything at once
    nums = c.at(N=7, K=5)
    assert 7 * 5 <= nums["vjp"]["memory"] <= 20 * 7 * 5 + 100


def test_forward_mode_for_tall_jacobians():
    g = gg.parse("input x[2]\nconst W[10, 2]\nf = tanh(W @ x)")
    c = gg.cost(g, "f", "x")
    assert c.mode == "fwd" and c.m == 10 and c.n == 2
    assert c.jacobian == c.jacobian_fwd
    assert c.at()["jacobian"]["flops"] < c.jacobian_rev.at({})["flops"]


def test_peak_drops_dominated_candidates():
    assert peak([n, 3 * n, 2 * n + 1]) == sp.Max(3 * n, 2 * n + 1)
    assert peak([n**2 + n, n]) == n**2 + n


def test_measured_growth():
    ns = [10.0, 100.0, 1000.0]
    assert np.allclose(measured_growth(ns, [x**2 for x in ns]), [2, 2])
    assert np.allclose(measured_growth(ns, [3 * x for x in ns]), [1, 1])
