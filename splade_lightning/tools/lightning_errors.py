"""Readable command-line errors for the Lightning subcommands, and Lightning's notices a user cannot act on.

jsonargparse reports a mistyped constructor argument inside a ``class_path`` as a nested "Does not validate against
any of the Union subtypes" dump after a 50-line usage text. :func:`explain_parse_error` turns it into one paragraph
naming the flag, the class, and the closest accepted names.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import logging
import re

from splade_lightning.errors import ConfigError

__all__ = ["explain_parse_error", "quiet_lightning"]

_CLASS_OPTION = re.compile(r"Problem with given class_path '([\w.]+)':\s*\n?\s*Option '([\w.]+)' is not accepted")
_OPTION = re.compile(r"Option '([\w.]+)' is not accepted")
_UNRECOGNIZED = re.compile(r"[Uu]nrecognized arguments: (.+)")
_KEY = re.compile(r'Parser key "([\w.]+)"')


class _Notices(logging.Filter):
    """Drop Lightning's advertising (the LitLogger tip)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def quiet_lightning() -> None:
    """Hide Lightning's notices that ask the user to do nothing actionable."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Notices) for f in logger.filters):
            logger.addFilter(_Notices())


def _init_arguments(class_path: str) -> list[str]:
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return []
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]


def _closest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def explain_parse_error(error: argparse.ArgumentError, argv: list[str], flags: list[str] = ()) -> ConfigError:
    """One readable paragraph for a parse error of ``splade-lightning fit/validate/test``.

    Args:
        error: the parser's error.
        argv: the command line (the subcommand first).
        flags: the flags the subcommand accepts, for "did you mean".
    """
    message = str(error)
    subcommand = argv[0] if argv else "fit"
    where = f"splade-lightning {subcommand} --help"
    if match := _CLASS_OPTION.search(message):
        class_path, option = match.groups()
        accepted = _init_arguments(class_path)
        key = _KEY.search(message)
        flag = f"--{key.group(1)}.init_args.{option}" if key else option
        short = class_path.rpartition(".")[2]
        return ConfigError(f"{flag}: {short} has no argument {option!r}{_closest(option, accepted)} "
                           f"({where.replace('--help', '')}--{key.group(1) if key else 'model'}.help {short} lists "
                           "its arguments)")
    if match := _OPTION.search(message):
        return ConfigError(f"option {match.group(1)!r} is not accepted by {subcommand} (see {where})")
    if match := _UNRECOGNIZED.search(message):
        unknown = [word for word in match.group(1).split() if word.startswith("--")]
        hints = "".join(_closest(word.split("=")[0], list(flags)) for word in unknown[:1])
        return ConfigError(f"unrecognized arguments: {match.group(1)}{hints} (see {where})")
    first = message.strip().splitlines()
    return ConfigError(f"{' '.join(line.strip() for line in first[:6])} (see {where})")
