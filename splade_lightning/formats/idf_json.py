"""Read, check and write ``idf.json``: one flat JSON object mapping token strings to IDF weights.

This is the format of OpenSearch's inference-free sparse models (``opensearch-neural-sparse-encoding-doc-*``): keys are
the tokenizer's token strings (WordPiece: ``"the"``, ``"##ing"``, ``"[PAD]"``), values are floats. Unlike
sentence-transformers / OpenSearch, a key that is not in the tokenizer's vocabulary is never mapped to ``[UNK]``: it is
skipped and reported, and a table written for another tokenizer is rejected.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from splade_lightning.errors import ConfigError, DataError, DataErrors
from splade_lightning.formats.atomic import write_text_atomic

#: how many example tokens messages and warnings show
EXAMPLES = 5


@dataclass
class IdfTable:
    """An IDF table mapped onto a tokenizer's ids.

    Attributes:
        weights: ``(V,)`` float32 IDF weight per token id; ids that the table does not cover hold the missing weight.
        matched: number of table entries mapped to an id ``< V``.
        unknown: table keys that are not in the tokenizer's vocabulary (or whose id is ``>= V``); skipped.
        negative: table keys with a value ``< 0`` (kept: the encoder applies ``relu``, as OpenSearch does).
        missing: number of ids ``< min(V, len(tokenizer))`` that the table does not cover.
    """

    weights: torch.Tensor
    matched: int
    unknown: list[str] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)
    missing: int = 0


class _Pairs(list):
    """The ``(key, value)`` pairs of one JSON object, in file order (kept as pairs to detect duplicate keys)."""


class _NonFinite:
    """A ``NaN`` / ``Infinity`` / ``-Infinity`` literal, kept as written so that the message can show it."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _describe(value: object) -> str:
    """A JSON value as named in messages: ``null``, ``boolean true``, ``string 'x'``, ``an object``, ``list [..]``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, _Pairs):
        return "an object"
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{_json_type(value)} {text}"


def _json_type(value: object) -> str:
    """The JSON type name of a parsed value: ``list``, ``string``, ``number``, ``boolean`` or ``null``."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else "boolean"
    return {list: "list", str: "string"}.get(type(value), "number")


def _finite(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` (also for an integer too large for a float)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def read_idf_json(path: str | Path) -> dict[str, float]:
    """Parse and check an ``idf.json`` file.

    Args:
        path: a JSON file holding one object ``{token string: number}``. Negative numbers are allowed.

    Returns:
        token string -> IDF weight (Python float), in file order.

    Raises:
        DataError: the file is missing, is not valid JSON, is not one object, or is empty.
        DataErrors: per-token problems (a duplicate key, a non-numeric value, ``NaN`` / ``Infinity``), all together.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "not found"
        raise DataError(f"IDF table {what}; expected a JSON file {{token: idf}} such as OpenSearch's idf.json", path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"not valid UTF-8 ({e}); expected a UTF-8 JSON file", path) from e
    try:
        obj = json.loads(text, object_pairs_hook=_Pairs, parse_constant=_NonFinite)
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON: {e.msg} (column {e.colno}); expected one JSON object {{token: idf}}",
                        path, line=e.lineno) from e
    if not isinstance(obj, _Pairs):
        raise DataError(f"expected one JSON object mapping token strings to numbers, got {_json_type(obj)}", path)
    if not obj:
        raise DataError("empty IDF table {}; expected one JSON object mapping token strings to numbers", path)
    table: dict[str, float] = {}
    seen: set[str] = set()
    errors: list[DataError] = []
    for token, value in obj:
        if token in seen:
            errors.append(DataError(f"duplicate token {token!r} (JSON keys must be unique)", path, field=token))
        elif isinstance(value, _NonFinite):
            errors.append(DataError(f"expected a finite number, got {value.text}", path, field=token))
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(DataError(f"expected a number, got {_describe(value)}", path, field=token))
        elif _finite(value) is None:  # 1e999 parses as inf
            errors.append(DataError(f"expected a finite number, got {_describe(value)}", path, field=token))
        else:
            table[token] = float(value)
        seen.add(token)
    if errors:
        raise DataErrors(errors)
    return table


def idf_weights(table: dict[str, float], tokenizer, vocab_size: int, missing_weight: float = 1.0,
                path: str | Path | None = None) -> IdfTable:
    """Map a ``{token string: idf}`` table onto token ids.

    Args:
        table: token string -> weight, e.g. from :func:`read_idf_json`.
        tokenizer: a HF tokenizer; a key is known iff it is exactly in ``tokenizer.get_vocab()``.
        vocab_size: ``V``, the size of the weight vector (the MLM output size; may exceed ``len(tokenizer)``).
        missing_weight: weight of the ids the table does not cover.
        path: the table's file, named in errors.

    Returns:
        an :class:`IdfTable` whose ``weights`` is ``(V,)`` float32.

    Raises:
        ConfigError: ``vocab_size < 1`` or a non-finite ``missing_weight``.
        DataError: no key matched, or more than half of the keys are unknown (a table for another tokenizer).
    """
    if vocab_size < 1:
        raise ConfigError(f"vocab_size must be >= 1, got {vocab_size}")
    if not math.isfinite(missing_weight):
        raise ConfigError(f"missing_weight must be a finite number, got {missing_weight}")
    vocab = tokenizer.get_vocab()
    weights = torch.full((vocab_size,), float(missing_weight), dtype=torch.float32)
    covered = torch.zeros(vocab_size, dtype=torch.bool)
    unknown: list[str] = []
    negative: list[str] = []
    for token, value in table.items():
        idx = vocab.get(token)
        if idx is None or idx >= vocab_size:
            unknown.append(token)
            continue
        weights[idx] = value
        covered[idx] = True
        if value < 0:
            negative.append(token)
    matched = len(table) - len(unknown)
    if matched == 0 or len(unknown) > len(table) / 2:
        raise DataError(f"the IDF table does not match the tokenizer's vocabulary: {len(unknown)} of {len(table)} "
                        f"tokens are not in the tokenizer's vocabulary (e.g. {unknown[:EXAMPLES]}); was it written "
                        "for a different tokenizer?", path)
    n_real = min(vocab_size, len(tokenizer))
    missing = int(n_real - covered[:n_real].sum())
    return IdfTable(weights=weights, matched=matched, unknown=unknown, negative=negative, missing=missing)


def read_idf_table(path: str | Path, tokenizer, vocab_size: int, missing_weight: float = 1.0) -> IdfTable:
    """:func:`read_idf_json` then :func:`idf_weights`; warns once when some tokens are unknown or negative.

    Args:
        path: the ``idf.json`` file.
        tokenizer: the HF tokenizer of the model the table is for.
        vocab_size: ``V``, the MLM output size.
        missing_weight: weight of the ids the table does not cover.

    Returns:
        an :class:`IdfTable` whose ``weights`` is ``(V,)`` float32.
    """
    result = idf_weights(read_idf_json(path), tokenizer, vocab_size, missing_weight, path=path)
    notes = []
    if result.unknown:
        notes.append(f"{len(result.unknown)} token(s) not in the tokenizer's vocabulary were skipped "
                     f"(e.g. {result.unknown[:EXAMPLES]})")
    if result.negative:
        notes.append(f"{len(result.negative)} token(s) have a negative IDF, which relu turns into 0 "
                     f"(e.g. {result.negative[:EXAMPLES]})")
    if notes:
        warnings.warn(f"{path}: " + "; ".join(notes), stacklevel=2)
    return result


def idf_dict(weights: torch.Tensor | np.ndarray, tokenizer) -> dict[str, float]:
    """Token string -> weight for every id ``< min(len(weights), len(tokenizer))``, in id order.

    All entries are written, zeros included (OpenSearch writes only non-zero ones), so that a reload is exact. Ids
    without a token string are skipped.

    Args:
        weights: ``(V,)`` weights, one per token id.
        tokenizer: the HF tokenizer that defines the ids.
    """
    weights = torch.as_tensor(weights)
    if weights.dim() != 1:
        raise ConfigError(f"expected a 1-D (V,) weight vector, got shape {tuple(weights.shape)}")
    n = min(len(weights), len(tokenizer))
    tokens = tokenizer.convert_ids_to_tokens(list(range(n)))
    values = weights[:n].tolist()
    return {tok: float(v) for tok, v in zip(tokens, values) if tok is not None}


def write_idf_json(weights_or_dict: torch.Tensor | np.ndarray | dict[str, float], tokenizer,
                   path: str | Path) -> Path:
    """Write an ``idf.json`` atomically (``json.dumps(obj, ensure_ascii=False)``).

    Args:
        weights_or_dict: ``(V,)`` weights (then ``tokenizer`` names the ids), or a ready ``{token: idf}`` dict.
        tokenizer: the HF tokenizer for a weight vector; ``None`` for a dict.
        path: the file to write; missing parent directories are created.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: a weight vector without a tokenizer, or a non-finite value (the file would not load back).
    """
    if isinstance(weights_or_dict, dict):
        table = {str(k): float(v) for k, v in weights_or_dict.items()}
    else:
        if tokenizer is None:
            raise ConfigError("write_idf_json: a weight vector needs the tokenizer that maps ids to token strings")
        table = idf_dict(weights_or_dict, tokenizer)
    bad = [tok for tok, v in table.items() if not math.isfinite(v)]
    if bad:
        raise ConfigError(f"cannot write {len(bad)} non-finite IDF value(s) (e.g. {bad[:EXAMPLES]}) to {path}")
    return write_text_atomic(path, json.dumps(table, ensure_ascii=False))
