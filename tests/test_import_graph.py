"""The package's shape: no import cycle anywhere inside ``airflow_kpo_deferrable``, and no module over 500 lines.

Why a test: cycles come back one convenient import at a time (a lazy import inside a function dodges the error at
import time but keeps the modules tangled), so every import counts, at module level or inside a function, and
``if TYPE_CHECKING:`` ones too. An import of ``a.b`` (``import a.b``, ``from a.b import x``) is an edge to ``a.b``;
``from a import b`` is an edge to the module ``a.b`` when it exists, else to ``a``; ``importlib.import_module("a.b")``
or any string that is exactly a module's dotted name (a name kept for a lazy import) is an edge to ``a.b``. Parent packages imported on the way are not edges: Python runs them
first, whatever imports what.
"""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_kpo_deferrable

PACKAGE = "airflow_kpo_deferrable"
ROOT = Path(airflow_kpo_deferrable.__file__).parent
MAX_LINES = 500


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def _resolve(importer: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every intra-package module ``name`` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            targets = [node.value]  # importlib.import_module("a.b"), or a table of names to import later
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(name, path.name == "__init__.py", node.level, node.module)
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                       for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in known and target != name}
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    found = modules(root)
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "import importlib\nLAZY = {'x': 'pkg.late'}\ndef __getattr__(name):\n    return importlib.import_module(LAZY[name])\n",
        "late.py": "",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
        "b.py": "def f():\n    from .sub import c\n",
        "sub/__init__.py": "",
        "sub/c.py": "from .. import a\nimport pkg.late\nfrom ..sub import missing_name\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    graph = import_graph(package)
    assert graph == {
        "pkg": {"pkg.late"},
        "pkg.late": set(),
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.sub.c"},
        "pkg.sub": set(),
        "pkg.sub.c": {"pkg.a", "pkg.late", "pkg.sub"},
    }
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]


def test_the_package_graph_is_the_real_one() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.emulator.store" in graph[f"{PACKAGE}.emulator.kubelet.node"]
    assert f"{PACKAGE}.operators.pod" in graph[PACKAGE]  # the lazy import in __getattr__


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_over_500_lines() -> None:
    too_long = {}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT.parent).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            too_long[relative] = lines
    assert not too_long, f"modules over {MAX_LINES} lines (split them by concern): {too_long}"


EMULATOR = f"{PACKAGE}.emulator"
# The emulator's layers, lowest first: a module may import its own layer and the ones below, never one above.
EMULATOR_LAYERS = [
    ("errors", {"errors"}),
    ("rules and formats", {"kinds", "quantities", "rules", "nodeinfo", "clock", "scenario", "logfile", "selectors",
                           "validation", "decoding", "patching", "tables", "protobuf", "credentials"}),
    ("store", {"store", "faults"}),
    ("kubelet", {"kubelet"}),
    ("api", {"api"}),
    ("server", {"server", "__main__", "pytest_plugin", ""}),
]


def emulator_layer(module: str) -> int:
    first = module.removeprefix(EMULATOR).lstrip(".").split(".")[0]
    for rank, (_, names) in enumerate(EMULATOR_LAYERS):
        if first in names:
            return rank
    raise AssertionError(f"{module} is in no layer of the emulator: add it to EMULATOR_LAYERS")


def test_emulator_imports_go_one_way_down_its_layers() -> None:
    graph = import_graph()
    upward = [
        f"{source} ({EMULATOR_LAYERS[emulator_layer(source)][0]}) imports {target} "
        f"({EMULATOR_LAYERS[emulator_layer(target)][0]})"
        for source, targets in graph.items() if source.startswith(EMULATOR)
        for target in targets if target.startswith(EMULATOR) and emulator_layer(target) > emulator_layer(source)
    ]
    assert not upward, upward
