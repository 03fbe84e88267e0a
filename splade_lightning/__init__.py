"""splade_lightning: train and evaluate learned sparse retrievers (SPLADE) with PyTorch Lightning.

Public API::

    import splade_lightning
    model = splade_lightning.load("splade-tiny")           # alias, model dir, hub id or .ckpt
    docs = model.encode_document(["a passage"])            # sparse (N, V)
    model.decode(docs[0], top_k=10)                        # [(token, weight), ...]
"""

from __future__ import annotations

__all__ = ["SparseModel", "load"]

from splade_lightning._version import __version__  # noqa: E402, F401


def __getattr__(name: str):
    # Lazy, so that importing a pure-torch subpackage (splade_lightning.models, ...) stays light.
    if name in __all__:
        from splade_lightning import api

        return getattr(api, name)
    raise AttributeError(f"module 'splade_lightning' has no attribute {name!r}")
