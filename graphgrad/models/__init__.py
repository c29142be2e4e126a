"""Models that ship with graphgrad (the demo's residual MLP, linear regression)."""

from __future__ import annotations

from importlib import resources

from ..frontends.text import parse
from ..graph import Graph


def text(name: str) -> str:
    """The text of a bundled model, e.g. ``text("residual_mlp")``."""
    return resources.files(__name__).joinpath(f"{name}.gg").read_text(encoding="utf-8")


def model(name: str) -> Graph:
    """A bundled model, parsed."""
    return parse(text(name), source=f"{name}.gg")
