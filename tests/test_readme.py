"""The README's quickstart runs: every ```python block in README.md is executed, in order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_is_short():
    assert len(README.read_text(encoding="utf-8")) <= 10_000, "README.md must stay at most 10,000 characters"


def test_readme_links_point_to_files_in_the_repository():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert local, "README.md links to its documentation pages"
    missing = [link for link in local if not (README.parent / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_readme_has_a_python_quickstart():
    assert BLOCKS, "README.md must contain at least one ```python quickstart block"


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for i, block in enumerate(BLOCKS):
        try:
            exec(compile(block, f"README.md[python block {i}]", "exec"), namespace)
        except Exception as exc:  # re-raise with the block, so a failure says which snippet broke
            raise AssertionError(f"README python block {i} failed:\n{block}") from exc
