"""One-way imports: every module imports alone, the import graph has no cycle, imports sit at the top.

Three checks over the three import packages of the distribution (``ebrl``, ``agents``, ``envs``):

- each module imports first, alone, in a fresh interpreter (a child forked from one that has
  imported only third-party packages), so no module relies on another having been imported before;
- the graph of module-level imports (``if TYPE_CHECKING:`` blocks included) between these modules
  has no cycle;
- no function imports one of these modules: a lazy import must not hide a cycle or a slow import.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ebrl", "agents", "envs")

LAZY_ALLOWED = {
    # Optional extra, not a cycle: EnergyOutlierDetector needs scikit-learn, and ebrl.tasks must work without it.
    ("ebrl/tasks/__init__.py", "ebrl.tasks.anomaly"),
}
"""``(file, imported module)`` pairs allowed inside a function, each with its reason."""

def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _is_own(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def _target(importer: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The modules of the packages that ``node`` imports (a ``from m import n`` may import module ``m.n``)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            module = ".".join([*base, *([node.module] if node.module else [])])
        else:
            module = node.module or ""
        names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
    return [n for n in names if n in MODULES]


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports outside any function or class body (including those under ``if``/``try`` at module level)."""
    out: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, (ast.If, ast.Try)):
            stack.extend(node.body)
            stack.extend(node.orelse)
            if isinstance(node, ast.Try):
                stack.extend(node.finalbody)
                for handler in node.handlers:
                    stack.extend(handler.body)
    return out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks one child per module")
def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    third_party = ["torch", "numpy", "gymnasium", "stable_baselines3", "sklearn", "matplotlib", "tqdm"]
    script = f"""
import importlib, importlib.util, os, sys, traceback
for name in {third_party!r}:
    if importlib.util.find_spec(name) is not None:
        importlib.import_module(name)
assert not any(m.split(".")[0] in {PACKAGES!r} for m in sys.modules), "a package was imported too early"
failed = []
for name in {sorted(m for m in MODULES if not m.endswith(".__main__"))!r}:  # __main__ runs when imported
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            print(f"--- import {{name}} failed:\\n{{traceback.format_exc()}}", flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failed.append(name)
print("FAILED", failed)
sys.exit(1 if failed else 0)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_module_level_import_graph_has_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = {t for node in _module_level_imports(tree) for t in _target(name, path, node) if t != name}
    # Depth-first search; report the first cycle found as a path.
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_function_imports_a_module_of_the_packages() -> None:
    found = []
    for path in MODULES.values():
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(), str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                    relative = isinstance(node, ast.ImportFrom) and node.level > 0
                    for module in modules:
                        if (relative or _is_own(module)) and (rel, module) not in LAZY_ALLOWED:
                            found.append(f"{rel}:{node.lineno} imports {module} inside {fn.name}()")
    assert not found, "function-level imports of the packages:\n" + "\n".join(found)


def _imported(name: str) -> set[str]:
    """Every module of the packages that module ``name`` imports, at any level (function bodies included)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return {t for node in nodes for t in _target(name, path, node)}


def test_no_algorithm_folder_imports_another_algorithm_or_the_agents_package() -> None:
    """An algorithm folder (``agents/<algo>/``) imports its own modules, ``agents.common``, shared ``agents``
    modules that are not algorithms, and ``ebrl``; never another algorithm, nor ``agents`` itself (which
    imports them all). ``agents.common`` imports no algorithm either."""
    packages = {m.split(".")[1] for m in MODULES if m.startswith("agents.")}
    folders = sorted(p for p in packages if (ROOT / "agents" / p).is_dir() and p != "common")
    assert {"softq", "softdqn", "ibc"} <= set(folders)
    found = []
    for name in sorted(MODULES):
        parts = name.split(".")
        if parts[0] != "agents" or len(parts) < 2 or parts[1] not in (*folders, "common"):
            continue
        for target in sorted(_imported(name)):
            t = target.split(".")
            other_algorithm = len(t) > 1 and t[0] == "agents" and t[1] in folders and t[1] != parts[1]
            if target == "agents" or other_algorithm:
                found.append(f"{name} imports {target}")
    assert not found, "an algorithm folder leans on another:\n" + "\n".join(found)
