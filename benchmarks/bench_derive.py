"""How symbolic derivation scales: a chain of residual blocks, 25 to 200 of them.

Each block is ``h_i = σ(W_i x_{i−1} + b_i)``, ``x_i = x_{i−1} + V_i h_i``; the loss is
``L = ½‖x_n − s‖²``. For each chain length it measures

* ``backprop``: time to derive and print every adjoint equation, and the printed size;
* ``∂L/∂x``: time to derive and print the derivative with respect to the input, and its size
  (adjoints used twice stay shared in ``where`` clauses, so no expression swell);
* ``expand``: the same with forward intermediates substituted (shared sub-expressions).

Times are CPU seconds of this process (``time.process_time``), which a busy machine disturbs
less than wall-clock time. Linear growth shows as a constant time and size per block.

    python benchmarks/bench_derive.py                 # 25 50 100 200 blocks
    python benchmarks/bench_derive.py --blocks 10 20  # quicker
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphgrad.models import residual_chain  # noqa: E402
from graphgrad.symbolic import backprop, derivative  # noqa: E402

chain = residual_chain  # blocks x_i = x_{i-1} + V_i σ(W_i x_{i-1} + b_i), then 0.5‖x − s‖²


def measure(blocks: int) -> dict[str, float]:
    """Times (s) and printed sizes (characters) for one chain length."""
    out: dict[str, float] = {"blocks": blocks}
    g = chain(blocks)
    t0 = time.process_time()
    text = str(backprop(g, "L"))
    out["backprop_s"], out["backprop_chars"] = time.process_time() - t0, len(text)
    out["equations"] = text.count("\n") + 1
    g = chain(blocks)
    t0 = time.process_time()
    text = str(derivative(g, "L", "x"))
    out["dLdx_s"], out["dLdx_chars"] = time.process_time() - t0, len(text)
    t0 = time.process_time()
    text = str(derivative(g, "L", "x", expand=True))
    out["expand_s"], out["expand_chars"] = time.process_time() - t0, len(text)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, nargs="+", default=[25, 50, 100, 200])
    args = p.parse_args(argv)
    cols = ["blocks", "equations", "backprop_s", "backprop_chars", "dLdx_s", "dLdx_chars",
            "expand_s", "expand_chars"]
    print("| " + " | ".join(cols) + " | chars/block (backprop, ∂L/∂x, expand) |")
    print("|" + "---|" * (len(cols) + 1))
    for n in args.blocks:
        m = measure(n)
        cells = [f"{m[c]:.2f}" if c.endswith("_s") else f"{int(m[c])}" for c in cols]
        per = ", ".join(f"{m[c] / n:.0f}" for c in ("backprop_chars", "dLdx_chars", "expand_chars"))
        print("| " + " | ".join(cells) + f" | {per} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
