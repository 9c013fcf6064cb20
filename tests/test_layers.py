"""Imports follow the data flow (README "Layout"): a layer imports only itself and the layers below it, no
library module imports the CLI, and the package's modules import each other without cycles. Read from the
source with ``ast`` (imports inside functions count too), so the test is fast and needs no import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "img2sdf"
# lower rank = closer to the data; errors/config/io/devices are utilities every layer may use
RANK = {"errors": 0, "config": 0, "io": 0, "devices": 0, "data": 1, "encoders": 2, "models": 3, "runs": 4,
        "train": 5, "generate": 6, "eval": 7, "app": 8, "cli": 9}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> set[str]:
    """img2sdf modules that ``path`` imports (absolute and relative, at any depth of the file)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "img2sdf"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "img2sdf":
                target = node.module
            else:
                continue
            subs = [f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}")]
            found |= set(subs) if subs and len(subs) == len(node.names) else {target, *subs}
    return {m for m in found if m != name}


def rank(name: str) -> int:
    parts = name.split(".")
    return RANK[parts[1]] if len(parts) > 1 else 0


GRAPH = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_layer_has_a_rank():
    assert {m.split(".")[1] for m in GRAPH if "." in m} <= set(RANK)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_imports_a_higher_layer(module):
    upward = sorted(m for m in GRAPH[module] if rank(m) > rank(module))
    assert not upward, f"{module} (layer {rank(module)}) imports higher layers: {upward}"


def test_library_code_never_imports_the_cli():
    offenders = sorted(m for m, deps in GRAPH.items() if rank(m) < RANK["cli"]
                       and any(d.startswith("img2sdf.cli") for d in deps))
    assert not offenders


def test_no_import_cycles():
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(GRAPH.get(m, ())):
            if d not in GRAPH:
                continue
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d] if d in stack else [m, d]
                pytest.fail("import cycle: " + " → ".join(cycle))
            if d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])


def test_the_checker_resolves_relative_imports():
    """(So that the tests above are not vacuous.)"""
    assert "img2sdf.runs.load" in GRAPH["img2sdf.generate.pipeline"]
    assert "img2sdf.models.decoder" in GRAPH["img2sdf.runs.load"]
    assert rank("img2sdf.train.fit") > rank("img2sdf.models.decoder")
