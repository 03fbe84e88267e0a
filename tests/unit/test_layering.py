"""Import direction and cycles: the pure layers never import Lightning, the library never imports the tools, data/
never imports the model side, and no module imports itself back through others (every import counted, lazy ones
included)."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "splade_lightning"
LIGHTNING = ("lightning", "pytorch_lightning")
TOOLS = ("splade_lightning.tools",)
LIGHTNING_SIDE = ("splade_lightning.systems", "splade_lightning.callbacks")
MODEL_SIDE = ("splade_lightning.models", "splade_lightning.losses", "splade_lightning.serialization")
#: package (or top-level module) -> imports it must not make
RULES = {
    "formats": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE, *MODEL_SIDE, "splade_lightning.data", "splade_lightning.api",
                "splade_lightning.retrieval", "splade_lightning.metrics", "splade_lightning.mining",
                "splade_lightning.scoring", "splade_lightning.analysis", "splade_lightning.idf"),
    "models": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE, "splade_lightning.data", "splade_lightning.serialization",
               "splade_lightning.api", "splade_lightning.retrieval", "splade_lightning.mining",
               "splade_lightning.scoring", "splade_lightning.analysis"),
    "losses": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE, "splade_lightning.data", "splade_lightning.models",
               "splade_lightning.serialization", "splade_lightning.api"),
    "metrics": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE, *MODEL_SIDE, "splade_lightning.data", "splade_lightning.api",
                "splade_lightning.retrieval"),
    "retrieval": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE, *MODEL_SIDE, "splade_lightning.data", "splade_lightning.api"),
    "idf": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE, *MODEL_SIDE, "splade_lightning.data", "splade_lightning.api"),
    "serialization": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE, "splade_lightning.data", "splade_lightning.api"),
    "data": (*TOOLS, *LIGHTNING_SIDE, *MODEL_SIDE, "splade_lightning.api", "splade_lightning.retrieval"),
    "mining": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE),
    "scoring": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE),
    "analysis": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE),
    "systems": TOOLS,
    "callbacks": TOOLS,
    "api.py": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE),
    "errors.py": (*LIGHTNING, *TOOLS, "splade_lightning.formats", "splade_lightning.data"),
    "problems.py": (*LIGHTNING, *TOOLS, "splade_lightning.formats", "splade_lightning.data"),
    "types.py": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE, *MODEL_SIDE, "splade_lightning.data"),
    "prompts.py": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE, *MODEL_SIDE, "splade_lightning.data",
                   "splade_lightning.formats"),
    "hub.py": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE, *MODEL_SIDE, "splade_lightning.data"),
    "devices.py": (*LIGHTNING, *TOOLS, *LIGHTNING_SIDE, *MODEL_SIDE, "splade_lightning.data"),
}
#: the only data/ modules that may import Lightning
DATA_LIGHTNING = ("datamodule.py",)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (``from a import b`` counts as ``a`` and ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert not node.level, f"{path}: relative import; write absolute imports"
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _matches(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _files(unit: str) -> list[Path]:
    return [PKG / unit] if unit.endswith(".py") else sorted((PKG / unit).rglob("*.py"))


@pytest.mark.parametrize("unit", sorted(RULES))
def test_import_direction(unit):
    bad = []
    for path in _files(unit):
        for name in imported_modules(path):
            if unit == "data" and path.name in DATA_LIGHTNING and _matches(name, LIGHTNING):
                continue
            if _matches(name, RULES[unit]):
                bad.append(f"{path.relative_to(PKG)} imports {name}")
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_every_package_has_rules():
    units = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} - {"tools"}
    assert units <= set(RULES), f"packages without import rules: {sorted(units - set(RULES))}"


def test_library_never_imports_the_tools():
    bad = [f"{path.relative_to(PKG)} imports {name}" for path in PKG.rglob("*.py")
           if path.relative_to(PKG).parts[0] not in ("tools", "__main__.py")  # the program's entry runs the tools
           for name in imported_modules(path) if _matches(name, TOOLS)]
    assert not bad, "\n".join(bad)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components with more than one module (the import cycles)."""
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_no_import_cycles():
    modules = {module_name(p): p for p in PKG.rglob("*.py")}
    graph = {name: {m for m in imported_modules(path) if m in modules and m != name} for name, path in modules.items()}
    cycles = _strongly_connected(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
