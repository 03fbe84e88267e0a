"""Evaluation-set entries as jsonargparse types that a later list replaces whole (Lightning-side parsing glue).

jsonargparse (4.x) parses a list of dataclasses given on the command line, or in a later ``--config``, item by item
against the earlier list when both have the same length: ``--data.init_args.val_sets=[{path: a}, {path: b}]`` over a
config whose second set has ``min_relevance: 2`` gives ``b`` that ``min_relevance`` silently. Registering the entry
types makes each item an opaque value built from its own mapping only, with the dataclass defaults; bad keys are
passed through as mappings so that :func:`~splade_lightning.data.arguments.as_beir_sets` (and the STS check) name
them with the flag and the expected keys.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass

from jsonargparse.typing import register_type

from splade_lightning.formats.beir import BeirSet
from splade_lightning.formats.sts import StsSet
from splade_lightning.formats.suite import SuiteRef


def _serialize(value: object) -> object:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def _deserializer(cls: type, reject: set[str]):
    """Build ``cls`` from a mapping of its own fields only; a mapping with a key of ``reject`` is another entry type
    of the union (``ValueError``); one that does not fit ``cls`` is kept as it is, for the data module's message."""

    def deserialize(value: object) -> object:
        if isinstance(value, cls):
            return value
        if hasattr(value, "__dict__") and not isinstance(value, dict):  # a jsonargparse Namespace
            value = vars(value)
        if not isinstance(value, dict) or reject & set(value):
            raise ValueError(f"not a {cls.__name__}: {value!r}")
        try:
            return cls(**value)
        except TypeError:
            return dict(value)

    return deserialize


def register_eval_set_types() -> None:
    """Register :class:`BeirSet`, :class:`SuiteRef` and :class:`StsSet` with jsonargparse (idempotent)."""
    register_type(BeirSet, _serialize, _deserializer(BeirSet, {"suite"}))
    register_type(SuiteRef, _serialize, _deserializer(SuiteRef, {"path"}))
    register_type(StsSet, _serialize, _deserializer(StsSet, {"suite"}))
