"""The package's import graph: no cycles, and no library imports upward.

Layers, lowest first: the root leaf modules (`errors`, `utils`, `_version`), `nn`, `data`, `engine`,
`models`, then `meta`, `explain`, `report` and `export` side by side, then `jobs`, then `cli`. A module may
import its own layer or a lower one; the side-by-side libraries may not import each other.
The package root re-exports the public API and is imported by nothing inside the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "archlab"
LEVEL = {"errors": 0, "utils": 0, "_version": 0, "validation": 0, "nn": 1, "data": 2, "engine": 3, "models": 4,
         "meta": 5, "explain": 5, "report": 5, "export": 5, "jobs": 6, "cli": 7, "__main__": 8}
SIDE_BY_SIDE = 5


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every archlab module `path` imports, at any depth of the file (lazy imports count)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def graph() -> dict[str, set[str]]:
    files = sorted(SRC.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, modules) for f in files}


def layer(module: str) -> tuple[str, int]:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    return top, LEVEL.get(top, -1)


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def test_every_top_level_module_has_a_layer():
    unknown = sorted({layer(m)[0] for m in graph() if m != "archlab" and layer(m)[1] < 0})
    assert unknown == []


def test_no_import_cycles():
    # A package's __init__ importing its own submodules is how a package is assembled, not a cycle.
    edges = {m: {t for t in ts if not (m == t.rpartition(".")[0] and Path(str(SRC.parent / m.replace(".", "/"))).is_dir())}
             for m, ts in graph().items()}
    assert strongly_connected(edges) == []


def test_no_upward_imports():
    bad = []
    for module, targets in graph().items():
        if module == "archlab":
            continue
        top, level = layer(module)
        for target in targets:
            if target == "archlab":
                bad.append(f"{module} -> the package root")
                continue
            other, other_level = layer(target)
            if other_level > level or (other_level == level == SIDE_BY_SIDE and other != top):
                bad.append(f"{module} -> {target}")
    assert bad == []


@pytest.mark.parametrize("module", sorted(m for m in graph() if layer(m)[0] == "cli"))
def test_cli_imports_only_jobs_and_errors(module):
    allowed = {"cli", "jobs", "errors", "validation", "_version"}
    assert sorted(t for t in graph()[module] if layer(t)[0] not in allowed and t != "archlab") == []


def test_archlab_list_imports_the_registries_alone():
    """`archlab list` pays for torch and the registries, not for the compiler, the explanation, meta-learning,
    export and report code, or scikit-learn and matplotlib (each of which once slipped into its start-up)."""
    import subprocess
    import sys

    heavy = ("torch._dynamo", "archlab.explain", "archlab.meta", "archlab.export", "archlab.report", "sklearn",
             "matplotlib")
    code = ("import sys; from archlab.cli import main; main(['list']); "
            f"print('LOADED', sorted(m for m in sys.modules if m.startswith({heavy!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.rstrip().endswith("LOADED []"), out.splitlines()[-1]
