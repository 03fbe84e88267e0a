"""Fingerprints of what a resumable output was built from, so that a re-run never reuses stale state.

A fingerprint is a flat JSON mapping ``{component: value}``:

- ``model``: :func:`model_fingerprint`, the sha256 of the encoder's settings, every tensor of its state dict (name,
  dtype, shape, bytes) and its tokenizer. It depends on the weights, not on where they were loaded from: a ``.ckpt``
  and the model directory exported from it have the same fingerprint, and a model re-saved at the same path with
  other weights has another.
- ``data``: :func:`texts_fingerprint`, the sha256 of the exact records (ids and texts) the command read, so an edited
  document changes it even when the path, the size and the record count stay the same.
- every setting that changes the output, by name.

:func:`describe_changes` turns two fingerprints into the sentence a refusal prints. No Lightning here; torch is
imported only by :func:`model_fingerprint`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

_SAMPLE = 1 << 20  # bytes hashed at each end of a large file by path_fingerprint


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (read in 4 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(model) -> str:
    """sha256 of a :class:`~splade_lightning.api.SparseModel`'s encoder settings, weights and tokenizer."""
    digest = hashlib.sha256()
    export_config = getattr(model.encoder, "export_config", None)
    settings = export_config() if export_config is not None else {"class": type(model.encoder).__name__}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode("utf-8"))
    _update_with_state(digest, model.encoder.state_dict())
    digest.update(_tokenizer_text(model.tokenizer).encode("utf-8"))
    return digest.hexdigest()


def state_fingerprint(state: Mapping) -> str:
    """sha256 of a state dict: every tensor's name, dtype, shape and bytes (e.g. a frozen teacher's weights)."""
    digest = hashlib.sha256()
    _update_with_state(digest, state)
    return digest.hexdigest()


def _update_with_state(digest, state: Mapping) -> None:
    for name, tensor in sorted(state.items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"\0{name}\0{data.dtype}\0{tuple(data.shape)}\0".encode())
        digest.update(data.reshape(-1).view(_uint8()).numpy())


def _uint8():
    import torch

    return torch.uint8


def _tokenizer_text(tokenizer) -> str:
    """The tokenizer's full definition (fast tokenizers: its JSON; others: the sorted vocabulary)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return backend.to_str()
    return json.dumps(sorted(tokenizer.get_vocab().items()))


def texts_fingerprint(*columns: Iterable) -> str:
    """sha256 of one or more sequences of strings (ids, texts, ...), each item and each column delimited."""
    digest = hashlib.sha256()
    for column in columns:
        for item in column:
            digest.update(str(item).encode("utf-8"))
            digest.update(b"\0")
        digest.update(b"\1")
    return digest.hexdigest()


def path_fingerprint(path: str | os.PathLike) -> str:
    """A digest of a file or directory as it is now: each file's relative path, size, and sha256 of its bytes
    (files over 4 MiB: of their first and last MiB), so an edit changes it."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path) if file != path else file.name}\0{size}\0".encode())
        with open(file, "rb") as handle:
            if size <= 4 * _SAMPLE:
                digest.update(handle.read())
            else:
                digest.update(handle.read(_SAMPLE))
                handle.seek(size - _SAMPLE)
                digest.update(handle.read(_SAMPLE))
    return digest.hexdigest()


def _short(value) -> str:
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else repr(value)
    return text if len(text) <= 40 else text[:16] + "…" + text[-8:]


def describe_changes(old: Mapping | None, new: Mapping) -> list[str]:
    """What differs between a recorded fingerprint and the current one, one phrase per component (``model``:
    "the model weights changed", ``data``: "the input data changed", a setting: "``name``: old -> new")."""
    if not isinstance(old, Mapping):
        return ["no readable fingerprint is recorded"]
    phrases = {"model": "the model (weights, settings or tokenizer) changed",
               "data": "the input data (its ids or texts) changed"}
    changes = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            changes.append(phrases.get(key, f"{key}: {_short(old.get(key))} -> {_short(new.get(key))}"))
    return changes
