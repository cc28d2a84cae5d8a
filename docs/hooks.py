"""MkDocs hooks: pages quote generated files instead of copies typed by hand.

- ``<!-- results: NAME/FILE.md -->`` on a line of its own is replaced by ``results/NAME/FILE.md``,
  the table an experiment script wrote: its title and table in the page, its configuration,
  versions and machine in a collapsed box, and a link to the CSV beside it. A missing file fails
  the build. ``<!-- results: NAME/FILE.md table -->`` quotes only the file's first table.
- ``<!-- cli-reference -->`` is replaced by the ``--help`` of every ``ebrl`` subcommand, taken
  from ``ebrl.cli.build_parser()``, so the reference cannot drift from the parser.
- ``<!-- readme: SECTION -->`` is replaced by the ``## SECTION`` of README.md, whose Python
  blocks ``tests/test_readme.py`` executes, so the docs show the same tested code.
- Every PNG and CSV under ``results/`` is published at ``results/...`` in the site, so pages
  link to figures and raw rows where the scripts wrote them.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
RESULTS_MARKER = re.compile(r"^<!-- results: (?P<path>\S+)(?P<table> table)? -->$", flags=re.M)
CLI_MARKER = "<!-- cli-reference -->"
README_MARKER = re.compile(r"^<!-- readme: (?P<section>.+?) -->$", flags=re.M)
# Sections of a results file that describe how a run was made rather than what it found.
DETAILS = re.compile(r"^## (Configuration|Environment)\b", flags=re.M)


def first_table(text: str) -> str:
    """The first Markdown table in ``text`` (its consecutive ``|`` lines)."""
    match = re.search(r"(?:^\|.*\n?)+", text, flags=re.M)
    if match is None:
        raise PluginError("no Markdown table found")
    return match.group(0).strip()


def render_results(relpath: str, *, page_dir: str, table_only: bool = False) -> str:
    """Markdown for ``results/<relpath>``: headings two levels down, run details collapsed.

    With ``table_only``, just its first table (for files whose prose is notes, not a summary).
    """
    source = RESULTS / relpath
    if not source.is_file():
        raise PluginError(f"results file not found: results/{relpath} (named in docs/{page_dir or '.'})")
    text = source.read_text(encoding="utf-8").strip()
    if table_only:
        text = first_table(text)
    # The file's title becomes a bold line (several files on one page share a title, and the
    # page's own headings are its contents); its other headings go two levels down.
    text = re.sub(r"\A# (.+)$", r"**\1**", text, flags=re.M)
    text = re.sub(r"^(#+) ", lambda m: "#" * min(len(m.group(1)) + 2, 6) + " ", text, flags=re.M)
    split = re.search(r"^#### (Configuration|Environment)\b", text, flags=re.M)
    head, details = (text[: split.start()], text[split.start() :]) if split else (text, "")
    # Inside the collapsed box the detail headings become bold lines (no entries in the page's contents).
    details = re.sub(r"^#### (.+)$", r"**\1**", details, flags=re.M)
    parts = [head.rstrip(), ""]
    csv = source.with_suffix(".csv")
    rel = lambda p: posixpath.relpath(f"results/{p}", page_dir or ".")  # noqa: E731
    origin = f"Generated from `results/{relpath}`"
    if csv.is_file():
        origin += f" ([per-run rows, CSV]({rel(csv.relative_to(RESULTS).as_posix())}))"
    parts += [f"*{origin}.*", ""]
    if details:
        parts.append('??? info "Configuration, versions and machine of this run"')
        parts += [("    " + line) if line else "" for line in details.strip().splitlines()]
        parts.append("")
    return "\n".join(parts)


def readme_section(title: str) -> str:
    """The body of README.md's ``## <title>`` section (up to the next ``## `` heading)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme, flags=re.M | re.S)
    if match is None:
        raise PluginError(f"README.md has no section '## {title}'")
    return match.group(1).strip() + "\n"


def cli_reference() -> str:
    """The ``--help`` of ``ebrl`` and of each subcommand, as Markdown sections."""
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width; fix it so the page is stable
    from ebrl.cli import build_parser

    parser = build_parser()
    sections = ["## ebrl", "", "```text", parser.format_help().rstrip(), "```", ""]
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subparsers.choices.items():
        sections += [f"## ebrl {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(sections)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    page_dir = posixpath.dirname(page.file.src_uri)
    markdown = RESULTS_MARKER.sub(
        lambda m: render_results(m.group("path"), page_dir=page_dir, table_only=bool(m.group("table"))), markdown
    )
    markdown = README_MARKER.sub(lambda m: readme_section(m.group("section")), markdown)
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    return markdown


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for path in sorted(RESULTS.rglob("*")):
        if path.suffix in {".png", ".csv"} and path.is_file():
            uri = "results/" + path.relative_to(RESULTS).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
