"""The pure layers (formats, metrics, retrieval, models, losses, serialization, idf) never import Lightning."""

from __future__ import annotations

import subprocess
import sys

import splade_lightning.metrics
import splade_lightning.retrieval


def test_importing_the_pure_layers_does_not_import_lightning():
    code = ("import sys, splade_lightning.metrics, splade_lightning.retrieval, splade_lightning.formats.outputs, "
            "splade_lightning.serialization.model_dir, splade_lightning.api, splade_lightning.idf.corpus; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_names_are_exported():
    for module in (splade_lightning.metrics, splade_lightning.retrieval):
        assert module.__all__ and all(hasattr(module, name) for name in module.__all__)
