"""How long compiling takes: the residual MLP, and a chain of 200 residual blocks.

    python benchmarks/bench_compile.py                 # both
    python benchmarks/bench_compile.py --blocks 50     # a shorter chain
    python benchmarks/bench_compile.py --skip-compile --versus-hand   # graphgrad vs numpy_hand

For the residual MLP it times, separately: the derivation (the reverse pass,
``graphgrad.backward``), the compilation proper (IR rewrites, lowering, source
text, ``exec``), and the first call (input checks + code generation for the
signature) against one later call; and sets compilation against a 1,000-step
training run (1,000 calls at the benchmark's "small" and "medium" sizes).

For the chain of blocks (each z = W_i h + b_i; h <- h + V_i σ(z)) it times
building the graph, deriving, and compiling, and checks the compiled gradient
against the interpreter (``graphgrad.grad(..., engine="interpret")``) on one input.

Like the peer benchmark, OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed from
the environment before NumPy loads, and the BLAS kernel in use is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_v, None)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import graphgrad as gg  # noqa: E402
from graphgrad.compiler import compile as gg_compile  # noqa: E402

SIZES = {"small": (32, 64, 16), "medium": (256, 512, 64)}
NAMES = ["x", "W1", "b1", "W2", "b2"]


def blas_info() -> str:
    """The BLAS library and kernel NumPy uses (threadpoolctl), if it can tell."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
                     f"threads={i.get('num_threads')}" for i in threadpool_info()) or "no BLAS found"


def inputs(n: int, k: int, b: int, seed: int = 0) -> dict:
    """Seeded float64 values for the residual MLP (x batched)."""
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((b, n)), "W1": rng.standard_normal((k, n)) / np.sqrt(n),
            "b1": 0.1 * rng.standard_normal(k), "W2": rng.standard_normal((n, k)) / np.sqrt(k),
            "b2": 0.1 * rng.standard_normal(n), "r": rng.standard_normal(k), "s": rng.standard_normal(n)}


def timed(fn, repeat: int = 5) -> float:
    """Median seconds of ``repeat`` calls of ``fn()``."""
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def residual_mlp() -> None:
    """Derivation and compilation of the running example, against a 1,000-step training run."""
    path = ROOT / "examples" / "residual_mlp.gg"

    def derive():
        g = gg.load(path)
        gg.backward(g, "L")

    def derive_and_compile():
        g = gg.load(path)
        f = gg_compile(g, "L", NAMES, reduce="sum", batched=["x"])
        f.program(["x"], {}).function()

    t_derive = timed(derive)
    t_both = timed(derive_and_compile)
    print("residual MLP")
    print(f"  load + derive (reverse pass)          {t_derive * 1e3:8.2f} ms")
    print(f"  load + derive + compile (source, exec) {t_both * 1e3:8.2f} ms")
    for size, (n, k, b) in SIZES.items():
        v = inputs(n, k, b)
        g = gg.load(path)
        f = gg_compile(g, "L", NAMES, reduce="sum")
        t0 = time.perf_counter()
        f(**v)
        first = time.perf_counter() - t0
        step = timed(lambda f=f, v=v: f(**v), repeat=21)
        total = t_both + first + 1000 * step
        print(f"  {size:6s} first call {first * 1e3:7.2f} ms, later calls {step * 1e3:7.3f} ms; "
              f"1,000 steps {1000 * step:6.2f} s, of which compiling {100 * (t_both + first) / total:.2f} %")


def chain(blocks: int) -> None:
    """Derivation and compilation of a chain of residual blocks."""
    t0 = time.perf_counter()
    g = gg.Graph()
    h = g.input("x", "N")
    s = g.const("s", "N")
    params = []
    for i in range(blocks):
        W, b, V = g.param(f"W{i}", ("K", "N")), g.param(f"b{i}", "K"), g.param(f"V{i}", ("N", "K"))
        params += [W.name, b.name, V.name]
        h = h + V @ gg.sigmoid(W @ h + b)
    gg.apply("mul", 0.5, gg.norm(h - s) ** 2, name="L")
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    gg.backward(g, "L")
    t_derive = time.perf_counter() - t0
    t0 = time.perf_counter()
    f = gg_compile(g, "L", ["x", *params], batched=["x"])
    prog = f.program(["x"], {})
    prog.function()
    t_compile = time.perf_counter() - t0
    print(f"chain of {blocks} residual blocks ({len(g)} nodes, {len(prog.source.splitlines())} lines "
          f"of generated source)")
    print(f"  build {t_build:6.2f} s, derive {t_derive:6.2f} s, compile {t_compile:6.2f} s")
    rng = np.random.default_rng(0)
    n, k, bsz = 8, 6, 4
    v = {"x": rng.standard_normal((bsz, n)), "s": rng.standard_normal(n)}
    for p in params:
        shape = tuple({"N": n, "K": k}[d] for d in g.shape(p))
        v[p] = rng.standard_normal(shape) / (4 * np.sqrt(shape[-1]))
    _, grads = f(**v)
    ref = gg.grad(g, "L", ["x", params[0], params[-1]], v, engine="interpret")
    err = max(float(np.max(np.abs(grads[w] - ref[w])) / np.max(np.abs(ref[w]))) for w in ref)
    print(f"  compiled vs the interpreter (graphgrad.grad, engine='interpret'): max relative difference {err:.1e}")


def versus_hand(sizes: list[str], rounds: int) -> None:
    """Compiled graphgrad against numpy_hand, interleaved call by call (robust to a loaded machine).

    Each round times a batch of hand-written calls, then a batch of compiled calls, in the same
    process on the same inputs; the ratio of each round is taken and the median reported, with
    the peak of traced (NumPy) memory of one call of each.
    """
    import tracemalloc

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import residual_mlp_refs as refs

    g = gg.load(ROOT / "examples" / "residual_mlp.gg")
    f = gg_compile(g, "L", NAMES, reduce="sum")
    print("compiled graphgrad vs numpy_hand, interleaved (median over rounds)")
    print(f"  {'size':7s} {'hand':>10s} {'graphgrad':>10s} {'ratio':>6s} {'IQR':>12s} "
          f"{'peak hand':>10s} {'peak gg':>10s} {'mem ratio':>9s}")
    for size in sizes:
        v = refs.make_inputs(size)
        L0, g0 = refs.numpy_hand(**v)
        L1, g1 = f(**v)
        err = max(refs.compare((float(L1), g1), (L0, g0)).values())
        assert err < 1e-10, f"{size}: graphgrad disagrees with numpy_hand ({err:.1e})"
        def batch(fn, calls, v=v):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn(**v)
            return (time.perf_counter() - t0) / calls

        calls = 1
        while batch(refs.numpy_hand, calls) * calls < 0.02:
            calls *= 2
        hs, gs, rs = [], [], []
        for _ in range(rounds):
            th = batch(refs.numpy_hand, calls)
            tg = batch(f, calls)
            hs.append(th)
            gs.append(tg)
            rs.append(tg / th)
        peaks = []
        for fn in (refs.numpy_hand, f):
            fn(**v)
            tracemalloc.start()
            out = fn(**v)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            del out
        q1, q3 = np.percentile(rs, [25, 75])
        print(f"  {size:7s} {np.median(hs) * 1e3:8.3f}ms {np.median(gs) * 1e3:8.3f}ms {np.median(rs):6.3f} "
              f"{q1:5.3f}-{q3:5.3f} {peaks[0] / 2**20:8.2f}MiB {peaks[1] / 2**20:8.2f}MiB "
              f"{peaks[1] / peaks[0]:9.2f}")


def main(argv=None) -> int:
    """Run the compile-time benchmarks (and, with --versus-hand, the interleaved comparison)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=200, help="residual blocks in the chain (default 200)")
    p.add_argument("--versus-hand", nargs="*", metavar="SIZE", default=None,
                   help="also time compiled graphgrad against numpy_hand, interleaved, at these "
                   "sizes (none given: tiny small medium large)")
    p.add_argument("--rounds", type=int, default=25, help="rounds of --versus-hand (default 25)")
    p.add_argument("--skip-compile", action="store_true", help="only --versus-hand")
    args = p.parse_args(argv)
    print(f"numpy {np.__version__}; BLAS: {blas_info()}; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    if not args.skip_compile:
        residual_mlp()
        chain(args.blocks)
    if args.versus_hand is not None:
        versus_hand(args.versus_hand or ["tiny", "small", "medium", "large"], args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
