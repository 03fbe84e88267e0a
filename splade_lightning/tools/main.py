"""``python -m splade_lightning``: the plain tools (``idf``, ``export``, ``mine``, ``score``) run without importing
Lightning; every other subcommand goes to :class:`splade_lightning.tools.lightning_cli.SpladeCLI`. Input errors print
one message and exit with status 2."""

from __future__ import annotations

import importlib
import os
import sys

from splade_lightning.errors import SpladeLightningError

#: subcommands that are plain tools rather than Lightning runs: name -> module with ``main(argv) -> int``
TOOLS = {name: f"splade_lightning.tools.{name}" for name in ("idf", "export", "mine", "score", "evaluate", "index",
                                                              "search")}


def _user_error(exc: BaseException) -> SpladeLightningError | None:
    """Our input error behind ``exc``, if any (jsonargparse re-raises constructor errors wrapped in ValueError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, SpladeLightningError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main(args: list[str] | None = None) -> None:
    """Entry point of ``python -m splade_lightning``; errors on bad input print one message and exit with status 2
    (set ``SPLADE_LIGHTNING_DEBUG=1`` for the traceback)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = list(sys.argv[1:] if args is None else args)
    try:
        if argv[:1] and argv[0] in TOOLS:
            module = importlib.import_module(TOOLS[argv[0]])
            sys.exit(module.main(argv[1:]))
        if argv[:1] in (["-h"], ["--help"]):
            print("Extra subcommands (each has --help): evaluate (score a model or TREC runs), index, search, export "
                  "(sentence-transformers / OpenSearch / Anserini), mine (hard negatives), score (teacher scores), "
                  "idf (corpus IDF tables)\n", flush=True)
        from splade_lightning.tools.lightning_cli import SpladeCLI

        SpladeCLI(args=args)
    except Exception as e:
        user_error = _user_error(e)
        if user_error is None or os.environ.get("SPLADE_LIGHTNING_DEBUG"):
            raise
        print(f"error: {user_error}", file=sys.stderr)
        sys.exit(2)
