"""What several subcommands share: loading the model, and feeding values."""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..frontends.text import load
from ..graph import Graph
from ..shapes import matrix_form


def add_model(p: argparse.ArgumentParser) -> None:
    """The MODEL positional argument."""
    p.add_argument("model", metavar="MODEL", help="model file (*.gg)")


def add_inputs(p: argparse.ArgumentParser) -> None:
    """--inputs FILE | --random SEED, with --size NAME=INT ..."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--inputs", metavar="FILE", help="values to feed: a .npz or .json file (name -> array)")
    g.add_argument("--random", metavar="SEED", type=int,
                   help="feed seeded random values (standard normal) of the sizes given by --size")
    p.add_argument("--size", metavar="NAME=INT", nargs="+", default=[],
                   help="size bindings for --random, e.g. --size N=3 K=2 (default 3 for each)")
    p.add_argument("--batch", metavar="B", type=int, default=None,
                   help="with --random: give inputs a leading batch axis of B samples")


def parse_sizes(items: list[str]) -> dict[str, int]:
    """``["N=3", "K=2"]`` -> ``{"N": 3, "K": 2}``."""
    out = {}
    for it in items:
        name, sep, val = it.partition("=")
        if not sep or not name.isidentifier() or not val.strip().isdigit():
            raise InputError(f"bad --size {it!r}", hint="write NAME=INT, e.g. --size N=3 K=2")
        out[name] = int(val)
    return out


def random_inputs(graph: Graph, seed: int, sizes: dict[str, int], batch: int | None = None) -> dict[str, Any]:
    """Seeded standard-normal values for every declared leaf (size names default to 3)."""
    if seed < 0:
        raise InputError(f"the seed must be >= 0, got {seed}", hint="e.g. --random 0")
    if batch is not None and batch < 1:
        raise InputError(f"the batch size must be >= 1, got {batch}", hint="e.g. --batch 4")
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


def read_inputs(path: str) -> dict[str, Any]:
    """Values from a .npz or .json file."""
    p = Path(path)
    try:
        if p.suffix == ".npz":
            f = np.load(p, allow_pickle=False)
            if not isinstance(f, np.lib.npyio.NpzFile):  # a .npy file named .npz
                raise InputError(f"{p.name} holds one array, not name -> array",
                                 hint="save with np.savez(path, x=..., W=...)")
            with f:
                return {k: f[k] for k in f.files}
        if p.suffix == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise InputError(f"{p.name} must hold a JSON object name -> array")
            return data
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f"cannot read inputs from {str(p)!r}: {e}",
                         hint="give a .npz or a .json file of name -> array") from None
    raise InputError(f"unknown inputs file type {p.suffix!r}", hint="use .npz or .json")


def model_and_inputs(args: argparse.Namespace, need_inputs: bool = True) -> tuple[Graph, dict[str, Any] | None]:
    """Load MODEL and the values that --inputs/--random describe."""
    graph = load(args.model)
    if getattr(args, "inputs", None):
        return graph, read_inputs(args.inputs)
    if getattr(args, "random", None) is not None:
        return graph, random_inputs(graph, args.random, parse_sizes(args.size), args.batch)
    if need_inputs:
        raise InputError("no values to evaluate with", hint="pass --inputs FILE or --random SEED")
    return graph, None


def fmt_array(v: np.ndarray, precision: int = 4) -> str:
    """An array on as few lines as reads well."""
    a = np.asarray(v)
    if a.ndim == 0:
        return f"{float(a):.{precision}g}"
    return np.array2string(a, precision=precision, suppress_small=True, max_line_width=100)


def shape_text(v: np.ndarray) -> str:
    """``(3,)`` as ``[3]``."""
    return "[" + ", ".join(map(str, np.shape(v))) + "]"


__all__ = ["add_model", "add_inputs", "parse_sizes", "random_inputs", "read_inputs",
           "model_and_inputs", "fmt_array", "shape_text", "matrix_form"]
