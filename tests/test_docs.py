"""Every ``python`` block in README.md and docs/*.md runs; every ``gg`` block parses."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest

import graphgrad as gg

from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(python|gg)\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_doc_blocks(page, monkeypatch, tmp_path):
    """The blocks of one page run in order in one namespace, like a notebook."""
    monkeypatch.chdir(ROOT)
    namespace = {"__name__": "__doc_sample__", "OUT": tmp_path}
    for i, m in enumerate(BLOCK.finditer(page.read_text(encoding="utf-8"))):
        lang, code = m.groups()
        if lang == "gg":
            gg.parse(code)
        else:
            exec(compile(code, f"<{page.name} block {i}>", "exec"), namespace)


def test_docs_index_links_exist():
    index = (ROOT / "docs" / "index.md").read_text()
    for link in re.findall(r"\]\(([\w-]+\.md)\)", index):
        assert (ROOT / "docs" / link).exists(), f"docs/index.md links to missing {link}"


def test_generated_pages_are_current():
    """docs/ops.md (from the op table) and docs/cli-reference.md (from --help) are generated;
    regenerate with python docs/build.py."""
    spec = importlib.util.spec_from_file_location("docs_build", ROOT / "docs" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for name, make in build.GENERATED.items():
        if name == "cli-reference.md" and sys.version_info[:2] != (3, 11):
            continue  # argparse's layout changes between Python versions; generated on 3.11
        assert (ROOT / "docs" / name).read_text(encoding="utf-8") == make(), \
            f"docs/{name} is out of date: run python docs/build.py"
