"""The documentation site builds with warnings as errors, and its results tables come from results/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("mkdocs", reason="the docs build needs the docs extra: pip install -e '.[docs]'")
pytest.importorskip("mkdocstrings_handlers.python", reason="the docs build needs mkdocstrings[python]")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    assert "WARNING" not in log, f"mkdocs build logged warnings:\n{log}"
    return out


def test_docs_build_strict_has_every_page(site: Path):
    for page in ["index.html", "concepts/energies/index.html", "guide/samplers/index.html",
                 "algorithms/softdqn/index.html", "api/samplers/index.html", "cli/index.html"]:
        assert (site / page).is_file(), f"{page} was not built"


def test_docs_results_tables_are_generated_from_results_files(site: Path):
    # A row of the committed table must appear in the algorithm page, verbatim from results/.
    table = (ROOT / "results/classic_discrete_history/classic_discrete.md").read_text(encoding="utf-8")
    row = next(line for line in table.splitlines() if line.startswith("| CartPole-v1 | SoftDQN |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    html = (site / "algorithms/softdqn/index.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", html)
    assert all(cell in text for cell in cells[:6]), f"row {cells} not found in the SoftDQN page"
    assert (site / "results/classic_discrete_history/classic_discrete.csv").is_file()


def test_docs_api_reference_renders_docstrings(site: Path):
    html = (site / "api/samplers/index.html").read_text(encoding="utf-8")
    for name in ["ebrl.samplers.Langevin", "ebrl.samplers.MALA", "ebrl.samplers.HMC"]:
        assert f'id="{name}"' in html, f"{name} missing from the API reference"
    assert "Unadjusted Langevin dynamics" in html  # Langevin's docstring, rendered


def test_docs_cli_reference_is_generated_from_the_parser(site: Path):
    from ebrl.cli import build_parser

    html = (site / "cli/index.html").read_text(encoding="utf-8")
    subparsers = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in subparsers.choices:
        assert f"ebrl {name}" in html, f"subcommand {name} missing from the CLI reference"


def test_grouped_parameters_are_split_into_one_entry_each():
    pytest.importorskip("griffe")
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from griffe_grouped_params import split_grouped_parameters
    finally:
        sys.path.remove(str(ROOT / "docs"))
    doc = (
        "Summary, with a comma.\n\nArgs:\n    low, high: bounds of the\n        noise.\n"
        "    a, b,\n        c: three.\n    d: one.\n\nx, y: not a section."
    )
    out = split_grouped_parameters(doc)
    assert "    low: bounds of the noise.\n    high: bounds of the noise." in out
    assert "    a: three.\n    b: three.\n    c: three.\n    d: one." in out
    assert out.startswith("Summary, with a comma.") and out.endswith("x, y: not a section.")


def test_literal_blocks_are_fenced():
    pytest.importorskip("griffe")
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from griffe_grouped_params import fence_literal_blocks
    finally:
        sys.path.remove(str(ROOT / "docs"))
    doc = "Update rule::\n\n    x <- x - eps * g\n\nExample::\n\n    x = f(1)\n    print(x)\n\nArgs:\n    a: b."
    out = fence_literal_blocks(doc)
    assert out.startswith("Update rule:\n\n```text\nx <- x - eps * g\n```\n")
    assert "**Example**\n\n```python\nx = f(1)\nprint(x)\n```\n\nArgs:\n    a: b." in out


PAGES = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
RUNNABLE = [p for p in PAGES if re.search(r"^```python$", (ROOT / "docs" / p).read_text(encoding="utf-8"), re.M)]


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE)
def test_docs_python_blocks_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Every ```python block of a page runs, in order, in one namespace; ```py blocks are fragments.
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    for i, block in enumerate(re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)):
        try:
            exec(compile(block, f"docs/{page}[python block {i}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"docs/{page}: python block {i} failed:\n{block}") from exc
