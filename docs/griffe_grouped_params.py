"""A griffe extension for ebrl's docstring conventions: grouped parameters and ``::`` literal blocks.

ebrl's docstrings document related parameters together (``low, high: bounds of the noise``), as
NumPy style allows; griffe's Google parser reads such a line as one parameter named ``"low, high"``
and warns that it is not in the signature. This extension rewrites, in ``Args:``/``Attributes:``
sections only, each grouped entry (whose names may wrap onto the next line after a comma) into one
entry per name with the same description, before the docstring is parsed, so the API reference
lists every parameter and the strict build keeps its checks on every other docstring problem.

The docstrings also introduce code and formulas reStructuredText's way, a paragraph ending in
``::`` followed by an indented block; Markdown would print the ``::`` and, inside a Google section,
lose the block. ``fence_literal_blocks`` ends such a paragraph with ``:`` (a one-word lead such as ``Example::``
becomes a bold line) and fences its block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

SECTION = re.compile(r"^(?P<indent>\s*)(Args|Arguments|Parameters|Attributes|Other Parameters):\s*$")
NAMES = r"[A-Za-z_*]\w*(?:\s*,\s*[A-Za-z_*]\w*)*"
GROUPED = re.compile(rf"^(?P<indent>\s+)(?P<names>{NAMES}\s*,\s*[A-Za-z_*]\w*):(?P<rest>\s.*|)$")
OPEN_GROUP = re.compile(rf"^(?P<indent>\s+)(?P<names>{NAMES}\s*,)\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def split_grouped_parameters(text: str) -> str:
    """``text`` with every grouped entry of its parameter sections written as one entry per name."""
    lines = text.splitlines()
    out: list[str] = []
    section_indent: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        header = SECTION.match(line)
        if header:
            section_indent = len(header.group("indent"))
            out.append(line)
            i += 1
            continue
        if section_indent is not None and line.strip() and _indent(line) <= section_indent:
            section_indent = None  # the section ended
        joined, consumed = line, 1
        # Names that wrap: "a, b," then "c, d: description".
        while section_indent is not None and OPEN_GROUP.match(joined) and i + consumed < len(lines):
            joined = joined.rstrip() + " " + lines[i + consumed].strip()
            consumed += 1
        grouped = GROUPED.match(joined) if section_indent is not None else None
        if not grouped:
            out.append(line)
            i += 1
            continue
        indent = grouped.group("indent")
        body = [grouped.group("rest").strip()]
        j = i + consumed
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > len(indent)):
            if not lines[j].strip() and (j + 1 >= len(lines) or _indent(lines[j + 1]) <= len(indent)):
                break
            body.append(lines[j].strip())
            j += 1
        description = " ".join(part for part in body if part)
        for name in re.split(r"\s*,\s*", grouped.group("names").strip()):
            out.append(f"{indent}{name}: {description}")
        i = j
    return "\n".join(out)


CODE = re.compile(r"^\s*(from \S+ import |import |print\(|[\w.]+(\[.*\])?(, *[\w.]+)* = |[\w.]+\(.*\)\s*(#.*)?$)")


def fence_literal_blocks(text: str) -> str:
    """``text`` with every ``paragraph::`` + indented block written as ``paragraph:`` + a fenced block."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if not (line.rstrip().endswith("::") and line.strip() != "::" and j < len(lines) and j > i + 1):
            out.append(line)
            i += 1
            continue
        base = _indent(line)
        if _indent(lines[j]) <= base:
            out.append(line)
            i += 1
            continue
        k = j
        block: list[str] = []
        while k < len(lines) and (not lines[k].strip() or _indent(lines[k]) > base):
            block.append(lines[k])
            k += 1
        while block and not block[-1].strip():
            block.pop()
            k -= 1
        depth = min(_indent(b) for b in block if b.strip())
        fence = " " * base
        language = "python" if any(CODE.match(b) for b in block if b.strip()) else "text"
        # A one-word lead ("Example::") would read as a Google section heading with a colon: bold it.
        word = re.fullmatch(r"\s*(\w+)::\s*", line)
        lead = f"{fence}**{word.group(1)}**" if word else line.rstrip()[:-1]
        out += [lead, "", f"{fence}```{language}"]
        out += [(fence + b[depth:]) if b.strip() else "" for b in block]
        out += [f"{fence}```"]
        i = k
    return "\n".join(out)


class GroupedParameters(griffe.Extension):
    """Split grouped parameter entries and fence ``::`` blocks before griffe parses a docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        value = obj.docstring.value
        if "::" in value:
            value = fence_literal_blocks(value)
        if "," in value:
            value = split_grouped_parameters(value)
        obj.docstring.value = value
