"""What several subcommands share: reading files (bounded), loading the model, feeding values.

Every file the CLI reads goes through :func:`read_file`: it must be a regular file (a FIFO,
``/dev/zero`` or a terminal would block or never end) and no larger than a documented limit, and
it is read with that cap. Numbers given on the command line go through :func:`int_arg`, which
rejects values out of range with argparse's own one-line error.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GraphgradError, InputError, NamingError, shown
from ..files import MiB, check_regular, mib_text, read_file
from ..frontends.text import MAX_MODEL_BYTES, load
from ..graph import Graph
from ..shapes import matrix_form

"""Largest model file (*.gg) the CLI reads: a model of tens of thousands of lines."""
MAX_JSON_BYTES = 16 * MiB
"""Largest .json inputs file."""
MAX_NPZ_BYTES = 64 * MiB
"""Largest .npz inputs file, and the most its arrays may unpack to."""
MAX_SIZE = 1_000_000_000
"""Largest value of one --size binding."""
MAX_BATCH = 1_000_000
"""Largest --batch."""
MAX_SEED = 2**64 - 1
"""Largest seed (--random, --seed)."""
MAX_VALUE_ELEMENTS = 10_000_000
"""With --random: most numbers in one value of the model (80 MB of float64)."""
MAX_TOTAL_ELEMENTS = 50_000_000
"""With --random: most numbers in all values of the model together (400 MB of float64)."""

_INT = re.compile(r"[+-]?[0-9]+")


# ----------------------------------------------------------------------------- command-line numbers


def int_arg(lo: int, hi: int, example: str = "") -> Any:
    """An argparse ``type=`` for an integer from ``lo`` to ``hi`` (ASCII digits only)."""
    span = f"an integer from {lo} to {hi}" + (f", e.g. {example}" if example else "")

    def convert(text: str) -> int:
        s = text.strip()
        if not _INT.fullmatch(s) or len(s) > 40:
            raise argparse.ArgumentTypeError(f"expected {span}; got {text!r}")
        v = int(s)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is out of range: give {span}")
        return v

    convert.__name__ = "int"  # argparse names the type in its messages
    return convert


# ----------------------------------------------------------------------------- files


def load_model(path: str) -> Graph:
    """Read and parse a model file, bounded: a regular file of at most :data:`MAX_MODEL_BYTES`."""
    return load(path)


# ----------------------------------------------------------------------------- feeding values


def add_model(p: argparse.ArgumentParser) -> None:
    """The MODEL positional argument."""
    p.add_argument("model", metavar="MODEL", help=f"model file (*.gg, at most {mib_text(MAX_MODEL_BYTES)})")


def add_inputs(p: argparse.ArgumentParser) -> None:
    """--inputs FILE | --random SEED, with --size NAME=INT ..."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--inputs", metavar="FILE",
                   help=f"values to feed: a .npz (at most {mib_text(MAX_NPZ_BYTES)}) or .json (at most "
                   f"{mib_text(MAX_JSON_BYTES)}) file of name -> array")
    g.add_argument("--random", metavar="SEED", type=int_arg(0, MAX_SEED, "--random 0"),
                   help="feed seeded random values (standard normal) of the sizes given by --size")
    p.add_argument("--size", metavar="NAME=INT", nargs="+", action="extend", default=[],
                   help="size bindings for --random, e.g. --size N=3 K=2 (default 3 for each); the "
                   f"values may hold at most {MAX_VALUE_ELEMENTS:,} numbers each, {MAX_TOTAL_ELEMENTS:,} in all")
    p.add_argument("--batch", metavar="B", type=int_arg(1, MAX_BATCH, "--batch 4"), default=None,
                   help=f"with --random: give inputs a leading batch axis of B samples (1 to {MAX_BATCH:,})")


def parse_sizes(items: list[str], graph: Graph | None = None) -> dict[str, int]:
    """``["N=3", "K=2"]`` -> ``{"N": 3, "K": 2}``: each from 1 to :data:`MAX_SIZE`, each name once
    and, given ``graph``, a size name of the model."""
    out: dict[str, int] = {}
    known = graph.size_names() if graph is not None else None
    for it in items:
        name, sep, val = it.partition("=")
        name, val = name.strip(), val.strip()
        if not sep or not name.isidentifier() or not _INT.fullmatch(val) or val.startswith(("+", "-")):
            raise InputError(f"bad --size {it!r}", hint="write NAME=INT, e.g. --size N=3 K=2")
        v = int(val) if len(val) <= 12 else MAX_SIZE + 1
        if not 1 <= v <= MAX_SIZE:
            raise InputError(f"bad --size {it!r}: a size is from 1 to {MAX_SIZE:,}", hint="e.g. --size N=3 K=2")
        if name in out:
            raise InputError(f"--size binds {name} twice ({name}={out[name]} and {it})",
                             hint=f"give {name} once")
        if known is not None and name not in known:
            raise InputError(f"--size {it}: the model has no size {name!r}",
                             hint="its sizes: " + (", ".join(known) if known else "none"))
        out[name] = v
    return out


def value_shapes(graph: Graph, sizes: dict[str, int], batch: int | None = None) -> dict[str, tuple[int, ...]]:
    """The concrete shape of every node of ``graph`` at ``sizes`` (size names default to 3); with
    ``batch``, the nodes that depend on an input get a leading axis of that length."""
    batched: set[str] = set()
    out = {}
    for n in graph.topo_order():
        shape = tuple(sizes.get(d, 3) if isinstance(d, str) else int(d) for d in graph.shape(n))
        if batch is not None and (graph.op(n) == "input" or any(a in batched for a in graph.args(n))):
            batched.add(n)
            shape = (batch, *shape)
        out[n] = shape
    return out


def check_budget(graph: Graph, sizes: dict[str, int], batch: int | None = None, hint: str | None = None) -> None:
    """Refuse sizes at which the model's values would not fit in memory (before allocating them)."""
    hint = hint or "use smaller --size (or --batch) values"
    where = " ".join(f"{k}={v}" for k, v in sizes.items()) or "the default sizes (3)"
    where += f" and batch {batch}" if batch else ""
    total = 0
    for n, shape in value_shapes(graph, sizes, batch).items():
        count = int(np.prod(shape, dtype=object)) if shape else 1
        if count > MAX_VALUE_ELEMENTS:
            what = graph.describe(n) if graph.is_named(n) else "an intermediate value"
            raise InputError(f"at {where}, {what} would hold {count:,} numbers (limit {MAX_VALUE_ELEMENTS:,})",
                             hint=hint)
        total += count
    if total > MAX_TOTAL_ELEMENTS:
        raise InputError(f"at {where}, the model's values would hold {total:,} numbers in all "
                         f"(limit {MAX_TOTAL_ELEMENTS:,})", hint=hint)


def sizes_of(graph: Graph, inputs: dict[str, Any]) -> tuple[dict[str, int], int | None]:
    """The size bindings (and batch) that fed values imply, as far as they agree; best effort, for
    :func:`check_budget` (evaluation itself reports values that do not fit the model)."""
    sizes: dict[str, int] = {}
    batch = None
    for n in graph.leaves():
        if n not in inputs:
            continue
        try:
            got = np.shape(inputs[n])
        except (ValueError, TypeError):
            continue
        want = graph.shape(n)
        if len(got) == len(want) + 1 and graph.op(n) == "input":
            batch, got = got[0], got[1:]
        if len(got) != len(want):
            continue
        for d, v in zip(want, got):
            if isinstance(d, str):
                sizes.setdefault(d, int(v))
    return sizes, batch


def random_inputs(graph: Graph, seed: int, sizes: dict[str, int], batch: int | None = None) -> dict[str, Any]:
    """Seeded standard-normal values for every declared leaf (size names default to 3)."""
    if not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"the seed must be an integer from 0 to {MAX_SEED}, got {seed}", hint="e.g. --random 0")
    if batch is not None and not 1 <= batch <= MAX_BATCH:
        raise InputError(f"the batch size must be from 1 to {MAX_BATCH:,}, got {batch}", hint="e.g. --batch 4")
    check_budget(graph, sizes, batch)
    rng = np.random.default_rng(seed)
    vals = {}
    for n in graph.leaves():
        shape = tuple(sizes.get(d, 3) if isinstance(d, str) else d for d in graph.shape(n))
        if batch is not None and graph.op(n) == "input":
            shape = (batch, *shape)
        try:
            vals[n] = rng.standard_normal(shape)
        except (ValueError, MemoryError) as e:
            raise InputError(f"cannot make random values of shape {shape} for {n!r}: {e}",
                             node=n, hint="use smaller --size values") from None
    return vals


_INPUTS_HINT = "give a .npz or a .json file of name -> array"


def _read_npz(raw: bytes, name: str) -> dict[str, Any]:
    """The arrays of an .npz file's bytes, refusing pickles and arrays that unpack past the limit."""
    if raw.startswith(b"\x93NUMPY"):  # a .npy file named .npz
        raise InputError(f"{name} holds one array, not name -> array",
                         hint="save with np.savez(path, x=..., W=...)")
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        infos = zf.infolist()
        unpacked = sum(i.file_size for i in infos)
        if unpacked > MAX_NPZ_BYTES:
            raise InputError(f"{name} unpacks to {mib_text(unpacked)}, over the limit of {mib_text(MAX_NPZ_BYTES)}",
                             hint="give smaller arrays")
        out = {}
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            with zf.open(info) as m:
                version = np.lib.format.read_magic(m)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(m)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(m)
            if dtype.hasobject:
                raise InputError(f"{name}: {key!r} holds Python objects, not numbers",
                                 hint="save numeric arrays (np.savez(path, x=np.asarray(x, float)))")
            if int(np.prod(shape, dtype=object)) * dtype.itemsize > info.file_size:
                raise InputError(f"{name}: {key!r} claims shape {shape} but holds fewer numbers",
                                 hint="the file is damaged: save it again")
            with zf.open(info) as m:
                out[key] = np.lib.format.read_array(m, allow_pickle=False)
        return out


def read_inputs(path: str) -> dict[str, Any]:
    """Values from a .npz or .json file (a regular file within :data:`MAX_NPZ_BYTES` /
    :data:`MAX_JSON_BYTES`)."""
    p = Path(path)
    if p.suffix not in (".npz", ".json"):
        if os.path.exists(path):  # a directory or /dev/zero: say so, rather than that its suffix is odd
            check_regular(path, "inputs file", _INPUTS_HINT)
        raise InputError(f"unknown inputs file type {p.suffix or '(no suffix)'!r}", hint="use .npz or .json")
    limit = MAX_NPZ_BYTES if p.suffix == ".npz" else MAX_JSON_BYTES
    raw = read_file(path, "inputs file", limit, _INPUTS_HINT)
    try:
        if p.suffix == ".npz":
            return _read_npz(raw, p.name)
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(f"{p.name} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})",
                         hint="save the JSON file as UTF-8") from None
    except RecursionError:
        raise InputError(f"{p.name} is nested too deeply", hint="arrays have at most 2 axes (3 with a batch)") \
            from None
    except MemoryError:
        raise InputError(f"{p.name} is too large to unpack", hint="give smaller arrays") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as e:
        # RuntimeError: zipfile's word for an encrypted member
        raise InputError(f"cannot read inputs from {str(p)!r}: {e}", hint=_INPUTS_HINT) from None
    if not isinstance(data, dict):
        raise InputError(f"{p.name} must hold a JSON object name -> array")
    return data


def model_and_inputs(args: argparse.Namespace, need_inputs: bool = True) -> tuple[Graph, dict[str, Any] | None]:
    """Load MODEL and the values that --inputs/--random describe."""
    random = getattr(args, "random", None)
    if random is None and (getattr(args, "size", None) or getattr(args, "batch", None) is not None):
        flag = "--size" if args.size else "--batch"
        raise InputError(f"{flag} applies only with --random",
                         hint="add --random SEED, or drop " + flag + (" (an --inputs file has its own sizes)"
                                                                     if getattr(args, "inputs", None) else ""))
    graph = load_model(args.model)
    if getattr(args, "inputs", None):
        inputs = read_inputs(args.inputs)
        sizes, batch = sizes_of(graph, inputs)
        check_budget(graph, sizes, batch, hint="feed smaller arrays")
        return graph, inputs
    if random is not None:
        return graph, random_inputs(graph, random, parse_sizes(args.size, graph), args.batch)
    if need_inputs:
        raise InputError("no values to evaluate with", hint="pass --inputs FILE or --random SEED")
    return graph, None


def fmt_array(v: np.ndarray, precision: int = 4, prefix: str = "") -> str:
    """An array on as few lines as reads well, to be printed after ``prefix``: the later lines are
    indented by its length, so that a matrix's rows stand under its first row as NumPy aligns them
    (columns aligned), and the lines wrap at 100 characters counting it."""
    a = np.asarray(v)
    if a.ndim == 0:
        return f"{float(a):.{precision}g}"
    return np.array2string(a, precision=precision, suppress_small=True, max_line_width=100, prefix=prefix)


def shape_text(v: np.ndarray) -> str:
    """``(3,)`` as ``[3]``."""
    return "[" + ", ".join(map(str, np.shape(v))) + "]"


__all__ = ["check_names", "check_output_path", "add_model", "add_inputs", "parse_sizes", "random_inputs", "read_inputs", "read_file",
           "load_model", "check_regular", "model_and_inputs", "check_budget", "value_shapes", "sizes_of", "int_arg",
           "fmt_array", "shape_text", "matrix_form", "MAX_MODEL_BYTES", "MAX_JSON_BYTES", "MAX_NPZ_BYTES",
           "MAX_SIZE", "MAX_BATCH", "MAX_SEED", "MAX_VALUE_ELEMENTS", "MAX_TOTAL_ELEMENTS"]


def check_output_path(output: str | None, model: str, error: type[GraphgradError], example: str) -> None:
    """``-o/--output`` must be a file path that is not the model itself (writing would overwrite it)."""
    if output is None:
        return
    if not output or os.path.isdir(output):
        raise error(f"--output {output!r} is " + ("a directory" if output else "empty"),
                    hint=f"give a file path, e.g. -o {example}")
    try:
        same = os.path.exists(output) and os.path.samefile(output, model)
    except OSError:
        same = False
    if same:
        raise error(f"--output {output!r} is the model file: writing would overwrite it", hint=f"e.g. -o {example}")


def check_names(graph: Graph, names: list[str], flag: str) -> None:
    """Every one of ``names`` (the values of ``flag``) must be a node of ``graph``; the error for
    one that is not lists every name of the model (inputs, params and consts included) and the
    nearest one."""
    usable = graph.named_nodes()
    for n in names:
        if n in graph:
            continue
        close = [u for u in usable if u.lower() == n.lower()] or difflib.get_close_matches(n, usable, n=1)
        raise NamingError(f"{flag} {shown(n)} is not defined",
                          hint=(f"did you mean {close[0]}? " if close else "")
                          + f"{flag} must name a node of the model: {graph.names_text()}")
