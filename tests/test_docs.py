"""Every ``python`` block in README.md and docs/*.md runs; every ``gg`` block parses."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import graphgrad as gg

from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(python|gg)\n(.*?)^```", re.S | re.M)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


PYTHON_PAGES = [p for p in PAGES if "```python" in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: p.name)
def test_doc_blocks(page, tmp_path):
    """A page's ``python`` blocks run as a reader pastes them: in order, in one fresh interpreter,
    from the repository root, with nothing defined beforehand. Its ``gg`` blocks parse."""
    text = page.read_text(encoding="utf-8")
    blocks = [(lang, code) for lang, code in BLOCK.findall(text)]
    for lang, code in blocks:
        if lang == "gg":
            gg.parse(code)
    script = "\n".join(f"# --- block {i}\n{code}" for i, (lang, code) in enumerate(blocks) if lang == "python")
    (tmp_path / "page.py").write_text(script, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([sys.executable, str(tmp_path / "page.py")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{page.name}: a block fails in a fresh interpreter:\n{done.stderr[-3000:]}"


def commands(page: Path) -> list[str]:
    """The ``graphgrad ...`` lines of a page's shell blocks (fences that are not python, gg or text)."""
    return [line for lang, code in FENCE.findall(page.read_text(encoding="utf-8"))
            if lang not in ("python", "gg", "text") for line in code.splitlines() if line.startswith("graphgrad")]


COMMAND_PAGES = [p for p in PAGES if commands(p)]


@pytest.mark.parametrize("page", COMMAND_PAGES, ids=lambda p: p.name)
def test_doc_commands(page, tmp_path, monkeypatch, capsys):
    """Every ``graphgrad ...`` line of a page's shell blocks runs as written and exits 0 (in a
    scratch folder that sees the repository's examples/, so the files it writes land there)."""
    from graphgrad.cli import main

    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    for line in commands(page):
        try:
            rc = main(shlex.split(line, comments=True)[1:])
        except SystemExit as e:  # --help
            rc = e.code
        assert rc == 0, f"{page.name}: `{line.strip()}` failed: {capsys.readouterr().err[-500:]}"


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
