"""Prompts: fixed text prepended to every query or document before tokenisation, as sentence-transformers' ``prompts``
(``sentence_transformers/base/model.py`` and ``sparse_encoder/model.py``, 6.2.0).

A model's prompts are one ``{route: text}`` dict, keyed by the routes of :data:`splade_lightning.types.ROUTES`
(``query``, ``document``): the model owns them (the module's ``prompts`` argument, saved with the model in
``splade_lightning.json`` and in ``config_sentence_transformers.json``), the collators apply them. sentence-transformers
prepends the prompt as a plain string (``prompt + text``) and truncates afterwards, so the prompt counts against the
maximum length; ``SparseEncoder.encode_query`` uses ``prompts["query"]`` and ``encode_document`` ``prompts["document"]``
(both always present in a ``SparseEncoder``: its defaults fill them with ``""``, so the ``passage``/``corpus``
fallback of ``encode_document`` and ``default_prompt_name`` never apply to them).
"""

from __future__ import annotations

from collections.abc import Mapping

from splade_lightning.errors import ConfigError
from splade_lightning.types import ROUTES

#: the prompts of a model without any: every route prepends nothing
NO_PROMPTS: dict[str, str] = {route: "" for route in ROUTES}


def check_prompts(prompts: object, name: str = "prompts") -> dict[str, str]:
    """Validate a model's prompts and complete them with ``""`` for the routes not given.

    Args:
        prompts: ``None`` (no prompts) or a mapping ``{route: text}`` whose keys are routes (``query``,
            ``document``) and whose values are strings.
        name: what gave ``prompts`` (an argument or a file), for the error message.

    Returns:
        ``{"query": str, "document": str}``.

    Raises:
        ConfigError: listing every unknown key and every non-string value, with what was expected.
    """
    if prompts is None:
        return dict(NO_PROMPTS)
    if not isinstance(prompts, Mapping):
        raise ConfigError(f"{name}={prompts!r}: expected a mapping {{route: text}} with routes {list(ROUTES)}, e.g. "
                          "{query: 'query: ', document: 'passage: '}")
    problems = [f"{name}: unknown key {key!r}; expected one of {list(ROUTES)}" for key in prompts if key not in ROUTES]
    problems += [f"{name}.{key}={value!r}: expected a string (the text prepended to every {key})"
                 for key, value in prompts.items() if key in ROUTES and not isinstance(value, str)]
    if problems:
        raise ConfigError("\n".join(problems))
    return {route: prompts.get(route, "") for route in ROUTES}


def st_config_prompts(config: Mapping, source: str) -> dict[str, str]:
    """The prompts ``SparseEncoder.encode_query`` / ``encode_document`` apply, from the content of a
    ``config_sentence_transformers.json``: its ``query`` and ``document`` entries (a missing or ``null`` one is
    ``""``, as in sentence-transformers); other prompt names (``passage``, ``classification``, ...) are not used
    by either method and are left out.

    Raises:
        ConfigError: ``prompts`` is not an object, or a used entry is not a string; naming ``source``.
    """
    prompts = config.get("prompts") or {}
    if not isinstance(prompts, Mapping):
        raise ConfigError(f"{source}: prompts={prompts!r}; expected an object {{name: text}}")
    used = {route: prompts[route] for route in ROUTES if prompts.get(route) is not None}
    return check_prompts(used, f"{source}: prompts")


def with_prompt(prompt: str, texts: list[str]) -> list[str]:
    """``texts`` with ``prompt`` prepended to each (sentence-transformers' ``prompt + text``); unchanged for ``""``."""
    return [prompt + text for text in texts] if prompt else list(texts)
