"""eval/ and index/ are pure torch: importing them must not import lightning."""

from __future__ import annotations

import subprocess
import sys

import splade_lightning.eval
import splade_lightning.index


def test_importing_eval_and_index_does_not_import_lightning():
    code = ("import sys, splade_lightning.eval, splade_lightning.index; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_names_are_exported():
    for module in (splade_lightning.eval, splade_lightning.index):
        assert module.__all__ and all(hasattr(module, name) for name in module.__all__)
