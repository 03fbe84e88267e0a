"""Import direction: the pure-torch layers never import lightning, and data/ never imports the model side."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "splade_lightning"
PURE = ["models", "losses", "index", "eval", "idf", "analysis"]
RULES = {sub: ("lightning", "pytorch_lightning", "splade_lightning.systems", "splade_lightning.callbacks",
               "splade_lightning.tools.lightning_cli", "splade_lightning.data") for sub in PURE}
RULES["idf"] = (*RULES["idf"], "splade_lightning.models")  # below the models, which read IDF tables
DATAMODULES = ("datamodule.py", "distill_datamodule.py")  # the only data/ files that may import lightning
RULES["data"] = ("splade_lightning.models", "splade_lightning.systems", "splade_lightning.callbacks",
                 "splade_lightning.losses", "splade_lightning.tools.lightning_cli")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    package = "splade_lightning." + ".".join(path.relative_to(PKG).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            else:
                names.add(node.module or "")
    return names


@pytest.mark.parametrize("sub", sorted(RULES))
def test_import_direction(sub):
    bad = []
    for path in sorted((PKG / sub).rglob("*.py")):
        for name in imported_modules(path):
            if any(name == f or name.startswith(f + ".") for f in RULES[sub]):
                if sub == "data" and path.name in DATAMODULES and name.startswith("lightning"):
                    continue
                bad.append(f"{path.relative_to(PKG)} imports {name}")
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_data_only_datamodule_imports_lightning():
    for path in sorted((PKG / "data").rglob("*.py")):
        if path.name not in DATAMODULES:
            assert not any(n.startswith("lightning") for n in imported_modules(path)), path
