"""Peer benchmark: residual-MLP loss + full gradient (forward + backward).

Times every implementation in registry() at each size, measures the peak extra
memory of one call, and prints a table with ratios to ``numpy_hand``.

    python benchmarks/bench_residual_mlp.py                      # all sizes, all impls
    python benchmarks/bench_residual_mlp.py --sizes tiny small --only numpy_hand,jax_jit
    python benchmarks/bench_residual_mlp.py --threads 2 --markdown

How it works (see benchmarks/README.md for more):

* Each (impl, size) is measured in fresh subprocesses of this script
  (``--_worker``), so one peer's imports, thread pools and allocator state can
  not affect another's numbers, and a crash is reported and skipped.
* Threads: the thread count is fixed *before any numeric library is imported*
  (OMP/OPENBLAS/MKL/... env vars, inherited by the workers), each worker pins
  itself to that many CPUs (sched_setaffinity; XLA sizes its pool from the
  affinity mask), calls torch.set_num_threads, and for one thread passes XLA
  the flags for single-threaded Eigen.
* OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from this process's
  environment before anything loads OpenBLAS (and the script re-execs itself
  if a numeric library was somehow already imported), so OpenBLAS picks its
  kernel from the CPU.  threadpoolctl reports the kernel that was used.
* Time: each worker first checks the impl against numpy_hand (rel. err
  <= 1e-10, else the impl is reported as a mismatch and not timed), warms up,
  picks a number of calls per repeat so that a repeat lasts >= --min-time
  (thousands of calls at "tiny", one at "large"), and reports the median (and
  quartiles) over --repeat repeats of time.perf_counter, GC disabled inside a
  repeat as timeit does.
* Memory: see ``_measure_memory``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GG_EXAMPLE = REPO / "examples" / "residual_mlp.gg"

SIZE_NAMES = ("tiny", "small", "medium", "large")
PEER_IMPLS = ("numpy_hand", "torch_eager", "jax_jit", "hips_autograd")
REFERENCE = "numpy_hand"

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
# Env vars that override OpenBLAS's own CPU detection / cache sizing.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
NUMERIC_MODULES = ("numpy", "torch", "jax", "jaxlib", "autograd", "scipy")

# glibc malloc settings for the memory workers only: buffers >= 64 KiB are
# mmapped (fixed threshold, no dynamic raising) and given back on free, and the
# heap top is trimmed eagerly, so RSS follows live memory.
MEM_WORKER_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "65536",
    "MALLOC_TRIM_THRESHOLD_": "0",
    "MALLOC_TOP_PAD_": "0",
}


# --------------------------------------------------------------------------
# Environment (runs before any numeric import)
# --------------------------------------------------------------------------


def configure_environment(threads: int) -> None:
    removed = [v for v in OPENBLAS_OVERRIDES if v in os.environ]
    for v in removed:
        del os.environ[v]
    for v in THREAD_VARS:
        os.environ[v] = str(threads)
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    xla = [
        f
        for f in os.environ.get("XLA_FLAGS", "").split()
        if "multi_thread_eigen" not in f and "intra_op_parallelism_threads" not in f
    ]
    if threads == 1:
        xla += ["--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1"]
    os.environ["XLA_FLAGS"] = " ".join(xla)
    if removed and any(m in sys.modules for m in NUMERIC_MODULES):
        # OpenBLAS already read its environment: start over without them.
        os.execv(sys.executable, [sys.executable, *sys.argv])


def pin_cpus(threads: int) -> list[int]:
    if not hasattr(os, "sched_setaffinity"):
        return []
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cpus[: max(1, threads)])
    return sorted(os.sched_getaffinity(0))


# --------------------------------------------------------------------------
# Implementation registry: name -> builder() -> fn(x, W1, b1, W2, b2, r, s)
# A builder raises refs.NotInstalledError to have its impl reported and skipped.
# --------------------------------------------------------------------------


def registry() -> dict[str, Callable[[], Callable]]:
    import residual_mlp_refs as refs

    impls: dict[str, Callable[[], Callable]] = dict(refs.BUILDERS)
    # ---- graphgrad hook: the library under test is one more entry ----------
    impls["graphgrad_compiled"] = build_graphgrad_compiled
    # -------------------------------------------------------------------------
    return impls


def build_graphgrad_compiled() -> Callable:
    """Adapter for graphgrad, written against the assumed API::

        f = graphgrad.compile(graph, of="L", wrt=["x", "W1", "b1", "W2", "b2"])
        value, grads = f(x=..., W1=..., b1=..., W2=..., b2=..., r=..., s=...)

    ``graph`` comes from examples/residual_mlp.gg (via graphgrad.load(path) or
    graphgrad.parse(text) if present, else the source text itself).  ``grads``
    may be a dict keyed by name or a sequence in ``wrt`` order.

    The .gg model declares a single sample x[N].  The adapter first passes the
    whole (B, N) batch; if graphgrad rejects that, it switches for good to one
    call per sample, summing the parameter gradients (correct but slow), and
    says so in ``graphgrad_compiled.note``, which the table shows.  Any failure
    here is reported and the impl skipped; a wrong answer is caught by the
    worker's check against numpy_hand.
    """
    import numpy as np
    import residual_mlp_refs as refs

    for p in (REPO, REPO / "src"):
        if (p / "graphgrad").is_dir() and str(p) not in sys.path:
            sys.path.append(str(p))
    try:
        import graphgrad

        compile_ = graphgrad.compile
    except (ImportError, AttributeError) as e:
        raise refs.NotInstalledError(f"graphgrad.compile not available ({e})") from e
    if not GG_EXAMPLE.exists():
        raise refs.NotInstalledError(f"{GG_EXAMPLE.relative_to(REPO)} does not exist yet")
    if hasattr(graphgrad, "load"):
        graph = graphgrad.load(str(GG_EXAMPLE))
    elif hasattr(graphgrad, "parse"):
        graph = graphgrad.parse(GG_EXAMPLE.read_text())
    else:
        graph = GG_EXAMPLE.read_text()
    names = list(refs.GRAD_NAMES)
    try:  # graphgrad's value is per sample; reduce="sum" returns the batch-summed L, like numpy_hand
        f = compile_(graph, of="L", wrt=names, reduce="sum")
    except TypeError:
        f = compile_(graph, of="L", wrt=names)

    def call(**kw):
        value, grads = f(**kw)
        if not isinstance(grads, dict):
            grads = dict(zip(names, grads, strict=True))
        return float(value), {k: np.asarray(grads[k]) for k in names}

    def per_sample(x, **kw):
        L, acc = 0.0, None
        gx = np.empty_like(x)
        for i in range(x.shape[0]):
            v, g = call(x=x[i], **kw)
            L += v
            gx[i] = g["x"]
            acc = g if acc is None else {k: acc[k] + g[k] for k in names}
        return L, {**acc, "x": gx}

    def graphgrad_compiled(x, W1, b1, W2, b2, r, s):
        kw = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "r": r, "s": s}
        if graphgrad_compiled.note:
            return per_sample(x, **kw)
        try:
            if graphgrad_compiled.direct:  # (np.float64 L, dict of arrays): nothing to convert
                return f(x=x, W1=W1, b1=b1, W2=W2, b2=b2, r=r, s=s)
            out = call(x=x, **kw)
            value, grads = f(x=x, **kw)
            graphgrad_compiled.direct = isinstance(value, float) and isinstance(grads, dict)
            return out
        except Exception as e:  # noqa: BLE001 - batch rejected: fall back
            graphgrad_compiled.note = f"per-sample loop (batch x rejected: {type(e).__name__}: {str(e)[:80]})"
            return per_sample(x, **kw)

    graphgrad_compiled.note = ""
    graphgrad_compiled.direct = False
    return graphgrad_compiled


# --------------------------------------------------------------------------
# Worker (one impl, one size, one measurement, in a fresh process)
# --------------------------------------------------------------------------


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _measure_memory(fn, inp) -> dict:
    """Peak extra resident memory of one steady-state call, in bytes.

    tracemalloc only sees allocations made through Python's allocator hooks,
    not BLAS workspaces, torch/XLA buffers or OpenMP stacks, so we measure at
    the OS level instead, in a worker process of our own:

    1. build the impl and the inputs, and call it twice (imports done, JIT
       compiled, lazily created thread pools and caches resident), drop the
       results, gc.collect();
    2. baseline = VmRSS (current resident set);
    3. reset the process's peak RSS (write "5" to /proc/self/clear_refs; on
       Linux >= 4.0 this resets VmHWM, which is also what ru_maxrss reports);
    4. one call, keeping its result; peak = VmHWM - baseline.

    So it includes everything the call touches on top of what was already
    resident -- intermediates, autograd tapes, BLAS buffers, the returned
    gradients -- at the high-water mark.  The worker runs with fixed glibc
    malloc thresholds (MEM_WORKER_ENV) so freed buffers go back to the OS
    instead of being recycled silently.  Resolution: whole pages (4 KiB; 2 MiB
    where transparent huge pages back a buffer); below ~100 KiB the number
    is not meaningful.  If clear_refs is not writable we fall back to a cold
    first call (baseline taken before it), flagged "cold".
    """
    import gc

    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        warm = True
    except OSError:
        warm = False
    if warm:
        for _ in range(2):
            fn(**inp)
    gc.collect()
    base = _proc_status_kib("VmRSS")
    if warm:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    else:
        base = max(base, _proc_status_kib("VmHWM"))
    out = fn(**inp)
    peak = _proc_status_kib("VmHWM")
    del out
    return {
        "peak_bytes": max(0, peak - base) * 1024,
        "mem_method": "warm" if warm else "cold",
    }


def _time_calls(fn, inp, number: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) for ``number`` calls, GC off as in timeit."""
    import gc

    gc_was = gc.isenabled()
    gc.disable()
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(number):
            fn(**inp)
        t1, c1 = time.perf_counter(), time.process_time()
        return t1 - t0, c1 - c0
    finally:
        if gc_was:
            gc.enable()


def _quantile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    i = p * (len(xs) - 1)
    lo = int(i)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def _measure_time(fn, inp, repeat: int, min_time: float) -> dict:
    # warm-up: at least 3 calls and 0.2 s
    t_end, calls = time.perf_counter() + 0.2, 0
    while calls < 3 or time.perf_counter() < t_end:
        fn(**inp)
        calls += 1
    number = 1
    while True:  # calls per repeat so that one repeat lasts >= min_time
        t, _ = _time_calls(fn, inp, number)
        if t >= min_time:
            break
        number = max(number * 2, int(number * min_time / max(t, 1e-9) * 1.2))
    runs = [_time_calls(fn, inp, number) for _ in range(repeat)]
    wall = [w / number for w, _ in runs]
    cpu = [c / number for _, c in runs]
    return {
        "median_s": _quantile(wall, 0.5),
        "q1_s": _quantile(wall, 0.25),
        "q3_s": _quantile(wall, 0.75),
        "min_s": min(wall),
        "cpu_median_s": _quantile(cpu, 0.5),
        "number": number,
        "repeat": repeat,
    }


def _kernel_info(impl: str, fn, inp) -> list[str]:
    """Which BLAS (and kernel) this impl's process used."""
    info = []
    try:
        from threadpoolctl import threadpool_info

        for d in threadpool_info():
            desc = f"{d['internal_api']} {d.get('version') or ''}".strip()
            if d.get("architecture"):
                desc += f" kernel={d['architecture']}"
            if d.get("threading_layer"):
                desc += f" layer={d['threading_layer']}"
            desc += f" threads={d['num_threads']} ({Path(d['filepath']).name})"
            info.append(desc)
    except ImportError:
        info.append("threadpoolctl not installed")
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        blas = [p for p in torch.__config__.show().replace(",", "\n").split("\n") if "BLAS_INFO" in p]
        mkl = _torch_mkl_verbose(torch, fn, inp)
        info.append(
            f"torch {torch.__version__}: {' '.join(s.strip() for s in blas)} "
            f"(linked statically; invisible to threadpoolctl) {mkl}; "
            f"ATen CPU capability {torch.backends.cpu.get_cpu_capability()}, "
            f"torch threads={torch.get_num_threads()}"
        )
    if "jax" in sys.modules:
        import jax
        import jaxlib

        info.append(
            f"jax {jax.__version__} / jaxlib {jaxlib.__version__}: XLA:CPU own "
            f"codegen + Eigen (no external BLAS), devices={jax.devices()}, "
            f"XLA_FLAGS='{os.environ.get('XLA_FLAGS', '')}'"
        )
    return info


def _torch_mkl_verbose(torch, fn, inp) -> str:
    """Run one call with MKL_VERBOSE on (fd 1 redirected) and summarise it."""
    import tempfile

    try:
        sys.stdout.flush()
        saved = os.dup(1)
        with tempfile.TemporaryFile(mode="w+") as tmp:
            os.dup2(tmp.fileno(), 1)
            try:
                with torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
                    fn(**inp)
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            tmp.seek(0)
            lines = [ln for ln in tmp.read().splitlines() if ln.startswith("MKL_VERBOSE")]
    except Exception as e:  # noqa: BLE001 - diagnostics only
        return f"(MKL_VERBOSE failed: {e})"
    head = next((ln[12:].split(" Product")[0] for ln in lines if "NThr:" not in ln), "MKL")
    calls = [ln[12:].split("(")[0] for ln in lines if "NThr:" in ln]
    nthr = sorted({ln.split("NThr:")[1].split()[0] for ln in lines if "NThr:" in ln})
    kinds = sorted(set(calls))
    return f"[{head}; one call: {len(calls)} MKL calls {kinds}, NThr={','.join(nthr)}]"


def worker(mode: str, impl: str, size: str, repeat: int, min_time: float, threads: int) -> dict:
    cpus = pin_cpus(threads)
    sys.path.insert(0, str(HERE))
    import residual_mlp_refs as refs

    res: dict = {"impl": impl, "size": size, "mode": mode, "cpus": cpus}
    try:
        fn = registry()[impl]()
    except refs.NotInstalledError as e:
        return {**res, "status": f"not installed: {e}"}
    except Exception as e:  # noqa: BLE001 - any failure of a peer is reported
        return {**res, "status": f"error building: {type(e).__name__}: {e}"}
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    inp = refs.make_inputs(size)
    try:
        if mode == "mem":
            return {**res, "status": "ok", **_measure_memory(fn, inp)}
        errs = refs.compare(fn(**inp), refs.numpy_hand(**inp))
        worst = max(errs, key=errs.get)
        res["max_rel_err"] = errs[worst]
        if errs[worst] > refs.RTOL:
            return {**res, "status": f"mismatch: d{worst} rel err {errs[worst]:.2e}"}
        res["note"] = getattr(fn, "note", "")
        res.update(_measure_time(fn, inp, repeat, min_time))
        res["kernels"] = _kernel_info(impl, fn, inp)
        return {**res, "status": "ok"}
    except Exception as e:  # noqa: BLE001
        return {**res, "status": f"error: {type(e).__name__}: {e}"}


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def run_worker(args, mode: str, impl: str, size: str) -> dict:
    env = dict(os.environ)
    if mode == "mem":
        env.update(MEM_WORKER_ENV)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--_worker",
        mode,
        impl,
        size,
        "--repeat",
        str(args.repeat),
        "--min-time",
        str(args.min_time),
        "--threads",
        str(args.threads),
    ]
    base = {"impl": impl, "size": size, "mode": mode}
    try:
        p = subprocess.run(
            cmd,
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=args.timeout,
        )
    except subprocess.TimeoutExpired:
        return {**base, "status": f"error: worker timed out after {args.timeout} s"}
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
    return {**base, "status": f"error: worker exit {p.returncode}: {tail}"}


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    for unit, f in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= f:
            return f"{s / f:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _fmt_mem(b: int | None) -> str:
    if b is None:
        return "-"
    if b < 1 << 20:
        return f"{b / 1024:.0f} KiB"
    return f"{b / (1 << 20):.1f} MiB"


def _ratio(a, b, min_b=0.0) -> str:
    if a is None or b is None or b <= min_b:
        return "-"
    return f"{a / b:.2f}x"


def build_rows(results: dict, impls: list[str], sizes: list[str]) -> list[list[str]]:
    rows = []
    for size in sizes:
        ref_t = results.get((REFERENCE, size, "time"), {}).get("median_s")
        ref_m = results.get((REFERENCE, size, "mem"), {}).get("peak_bytes")
        ref_c = results.get((REFERENCE, size, "time"), {}).get("cpu_median_s")
        for impl in impls:
            t = results.get((impl, size, "time"), {})
            m = results.get((impl, size, "mem"), {})
            note = t.get("status", "?") if t.get("status") != "ok" else t.get("note", "")
            if not note and m and m.get("status") != "ok":
                note = f"memory: {m.get('status', '?')}"
            med = t.get("median_s")
            spread = f"{(t['q3_s'] - t['q1_s']) / med * 100:.1f}%" if med else "-"
            peak = m.get("peak_bytes") if m.get("status") == "ok" else None
            cpu = t.get("cpu_median_s")
            rows.append(
                [
                    impl,
                    size,
                    _fmt_time(med),
                    spread,
                    _ratio(med, ref_t),
                    _fmt_time(cpu),
                    _ratio(cpu, ref_c),
                    _fmt_mem(peak),
                    _ratio(peak, ref_m, min_b=256 * 1024),
                    note,
                ]
            )
    return rows


HEADER = [
    "impl",
    "size",
    "median",
    "IQR/med",
    "time vs numpy",
    "CPU time",
    "CPU vs numpy",
    "peak mem",
    "mem vs numpy",
    "note",
]
LEFT = {0, 1, len(HEADER) - 1}  # left-aligned columns


def print_table(rows, markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "|".join("---" if i in LEFT else "---:" for i in range(len(HEADER))) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(str(r[i])) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    for r in [HEADER, *rows]:
        print(
            "  ".join(
                str(c).ljust(w) if i in LEFT else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=list(SIZE_NAMES), choices=SIZE_NAMES)
    p.add_argument("--only", default="", help="comma-separated impl names (default: all)")
    p.add_argument("--repeat", type=int, default=25, help="timed repeats per impl and size")
    p.add_argument(
        "--min-time",
        type=float,
        default=0.05,
        help="seconds one repeat must last at least (sets calls per repeat)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for every library (BLAS, OpenMP, torch, XLA)",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory workers")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--json", metavar="PATH", help="also write all raw results to PATH")
    p.add_argument("--timeout", type=float, default=600, help="seconds per worker process")
    p.add_argument("--_worker", nargs=3, metavar=("MODE", "IMPL", "SIZE"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    configure_environment(args.threads)  # before anything imports numpy
    if args._worker:
        mode, impl, size = args._worker
        print(json.dumps(worker(mode, impl, size, args.repeat, args.min_time, args.threads)))
        return 0

    sys.path.insert(0, str(HERE))
    import residual_mlp_refs as refs

    reg = registry()
    impls = [s for s in args.only.split(",") if s] or list(reg)
    unknown = [s for s in impls if s not in reg]
    if unknown:
        print(
            f"unknown impl(s): {', '.join(unknown)}; known: {', '.join(reg)}",
            file=sys.stderr,
        )
        return 2
    if REFERENCE not in impls:  # ratios need the reference
        impls.insert(0, REFERENCE)
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if args.threads > ncpu:
        print(
            f"warning: --threads {args.threads} > {ncpu} available CPUs",
            file=sys.stderr,
        )

    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    results: dict = {}
    t0 = time.perf_counter()
    for size in args.sizes:
        for impl in impls:
            modes = ["time"] if args.no_memory else ["time", "mem"]
            for mode in modes:
                r = run_worker(args, mode, impl, size)
                results[(impl, size, mode)] = r
                if r.get("status", "").startswith("not installed") and mode == "time":
                    break
            msg = results[(impl, size, "time")].get("status")
            print(
                f"[{time.perf_counter() - t0:6.1f} s] {impl:18s} {size:6s} {msg}",
                file=sys.stderr,
            )

    print(
        "# residual MLP, loss + gradient wrt x, W1, b1, W2, b2 (float64); "
        f"threads={args.threads}, "
        f"repeat={args.repeat}; python {sys.version.split()[0]}"
    )
    print(
        "# sizes: "
        + ", ".join(f"{s}=(N={n},K={k},B={b})" for s, (n, k, b) in refs.SIZES.items() if s in args.sizes)
    )
    if load0 is not None:
        load1 = os.getloadavg()
        print(
            f"# load average (1 min) at start {load0[0]:.2f}, at end {load1[0]:.2f} on {ncpu} CPUs "
            "(the workers add ~1 themselves; much more means other processes competed)"
        )
    print("# BLAS / kernels (from the time workers at the first size each impl ran):")
    for impl in impls:
        r = next(
            (
                results[(impl, s, "time")]
                for s in args.sizes
                if results.get((impl, s, "time"), {}).get("kernels")
            ),
            None,
        )
        if r:
            for k in r["kernels"]:
                print(f"#   {impl}: {k}")
    print()
    print_table(build_rows(results, impls, args.sizes), args.markdown)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([{**v, "key": list(k)} for k, v in results.items()], fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
