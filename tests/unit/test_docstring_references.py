"""Every Sphinx cross-reference in the package's docstrings (``:func:`~splade_lightning.retrieval.exact.exact_search```,
``:mod:`.records```) names something that exists, so a moved or renamed module cannot leave its readers pointing at
an old home."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "splade_lightning"
REFERENCE = re.compile(r":(?:func|mod|class|meth|attr|data|exc):`~?([\w.]+)`")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(target: str, path: Path) -> str | None:
    """``target`` as a dotted path from the top package (relative ``.x`` resolved against the file's package)."""
    if target.startswith("splade_lightning"):
        return target
    if not target.startswith("."):
        return None  # a name of another library or of the module itself (checked by the import below when local)
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    levels = len(target) - len(target.lstrip("."))
    base = package.split(".")
    base = base[: len(base) - levels + 1]
    return ".".join([*base, target.lstrip(".")])


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attribute in parts[i:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            return False
        return True
    return False


def test_every_docstring_reference_resolves():
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in REFERENCE.finditer(text):
            dotted = _absolute(match.group(1), path)
            if dotted is not None and not _resolves(dotted):
                line = text[: match.start()].count("\n") + 1
                broken.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {match.group(0)}")
    assert not broken, "references to nothing:\n" + "\n".join(broken)


def test_the_check_sees_a_broken_reference():
    here = PACKAGE / "formats" / "__init__.py"
    assert _absolute(".atomic", here) == "splade_lightning.formats.atomic"
    assert _absolute(".records", PACKAGE / "data" / "text" / "source.py") == "splade_lightning.data.text.records"
    assert _absolute("..source", PACKAGE / "data" / "text" / "source.py") == "splade_lightning.data.source"
    assert _resolves("splade_lightning.retrieval.exact.exact_search")
    assert not _resolves("splade_lightning.index.exact_search")
    assert not _resolves("splade_lightning.retrieval.exact.no_such_function")
