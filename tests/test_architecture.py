"""The layers that docs/architecture.md describes hold in the code: imports go only downwards.

The page's layer table is the source: each row names a layer number and its packages. Every module of
``ebrl``, ``agents`` and ``envs`` must belong to a listed package (the longest listed prefix of its name), and
every module-level import must go to a lower layer, or stay inside its own package. Only layer 0 (the core's
leaves: energies, samplers, losses, checkpoints, checks) lets its packages import one another; the module
graph's lack of cycles is ``tests/test_imports.py``'s to check.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from test_imports import MODULES, _module_level_imports, _target

PAGE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def layers() -> dict[str, int]:
    """``{package: layer}`` from the page's table (the rows after the ``<!-- layers`` marker)."""
    text = PAGE.read_text(encoding="utf-8")
    table = text[text.index("<!-- layers") :]
    out: dict[str, int] = {}
    for line in table.splitlines()[1:]:
        if not line.startswith("|"):
            if out:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not cells[0].isdigit():
            continue  # header and rule
        for package in re.findall(r"`([\w.]+)`", cells[1]):
            assert package not in out, f"{package} is listed twice in {PAGE.name}"
            out[package] = int(cells[0])
    return out


LAYERS = layers()


def package_of(module: str) -> str | None:
    """The longest listed package that ``module`` is, or is inside."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return ".".join(parts[:n])
    return None


def test_the_page_lists_layers_for_every_module() -> None:
    assert len(LAYERS) >= 10 and set(LAYERS.values()) >= {0, 1, 2, 3}, LAYERS
    unlisted = sorted(m for m in MODULES if package_of(m) is None)
    assert not unlisted, f"modules in no layer of {PAGE.name}: {unlisted}"


def test_every_import_goes_down_a_layer_or_stays_in_its_package() -> None:
    wrong = []
    for name, path in MODULES.items():
        here = package_of(name)
        assert here is not None
        for node in _module_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _target(name, path, node):
                there = package_of(target)
                assert there is not None
                if there == here:
                    continue
                up = LAYERS[there] > LAYERS[here]
                sideways = LAYERS[there] == LAYERS[here] and LAYERS[here] > 0
                if up or sideways:
                    wrong.append(f"{name} (layer {LAYERS[here]}) imports {target} (layer {LAYERS[there]})")
    assert not wrong, "\n".join(wrong)


def test_the_check_would_catch_an_upward_import() -> None:
    """The rule is not vacuous: the core importing an environment (as ebrl.demos once did) is a violation."""
    assert LAYERS[package_of("ebrl.demos")] < LAYERS[package_of("envs.particle")]
    assert LAYERS[package_of("ebrl.training.trainer")] < LAYERS[package_of("ebrl.boltzmann.rbm")]
    assert LAYERS[package_of("agents.softq.softq")] == LAYERS[package_of("agents.softdqn.softdqn")]
