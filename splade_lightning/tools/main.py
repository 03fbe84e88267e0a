"""``splade-lightning`` (and ``python -m splade_lightning``): one program, every subcommand through jsonargparse.

``fit``, ``validate`` and ``test`` run :class:`~splade_lightning.tools.lightning_cli.SpladeCLI` (LightningCLI); the
other subcommands are typed functions in :mod:`splade_lightning.tools` whose parsers are built from their signatures
(:mod:`splade_lightning.tools.parser`). Every subcommand takes ``--config`` and ``--print_config``. Bad input prints
one paragraph (``error: ...``, with a "did you mean" for a mistyped flag) and exits with status 2; set
``SPLADE_LIGHTNING_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
import warnings

from splade_lightning.errors import SpladeLightningError

PROG = "splade-lightning"
#: Lightning runs
LIGHTNING = {"fit": "train a model from a YAML config, evaluate it before and after, export it",
             "validate": "evaluate a model (or a checkpoint) on the config's validation sets",
             "test": "evaluate a model (or a checkpoint) on the config's test sets"}
#: tools: name -> (module, one-line summary); each module has a function of the same name
TOOLS = {
    "evaluate": "score a model on BEIR data (one set or a suite), or score and compare TREC runs",
    "index": "encode a corpus into a sharded, resumable sparse index",
    "search": "retrieve from an index with the model it was built with; write a TREC run",
    "export": "write a model for sentence-transformers, OpenSearch or Anserini",
    "mine": "mine hard negatives with BM25 or a sparse model",
    "score": "score candidates with teachers (distillation targets)",
    "idf": "compute and compare corpus IDF tables (idf.json)",
    "interpolate": "WiSE-FT: interpolate a zero-shot and a fine-tuned model, evaluate each mix, save the best",
    "ablate": "run a grid of fit configurations and collect a results table",
}
#: third-party notices a user cannot act on, hidden from the command line
QUIET = ("Sparse CSR tensor support is in beta state", r"`isinstance\(treespec, LeafSpec\)` is deprecated",
         "LightningCLI's args parameter is intended to run from within Python",
         "The dirpath has changed from")  # a checkpoint of an earlier run: every run has its own run directory


def _user_error(exc: BaseException) -> SpladeLightningError | None:
    """Our input error behind ``exc``, if any (jsonargparse re-raises constructor errors wrapped in ValueError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, SpladeLightningError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def overview() -> str:
    """The top-level help."""
    width = max(map(len, [*LIGHTNING, *TOOLS]))
    lines = [f"usage: {PROG} SUBCOMMAND [--config FILE] [OPTIONS]   ({PROG} SUBCOMMAND --help)", "",
             "Train and evaluate learned sparse retrievers (SPLADE, inference-free SPLADE, CSR).", "", "subcommands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in {**LIGHTNING, **TOOLS}.items()]
    return "\n".join(lines)


def tool_function(name: str):
    """The function behind a tool subcommand."""
    module = importlib.import_module(f"splade_lightning.tools.{name}")
    return getattr(module, name), module


def tool_parser(name: str):
    """The jsonargparse parser of a tool subcommand."""
    from splade_lightning.tools.parser import build_parser

    function, module = tool_function(name)
    doc = (module.__doc__ or "").strip()
    notes = doc.split("\n\n", 1)[1] if "\n\n" in doc else None  # the module docstring after its summary
    return build_parser(function, f"{PROG} {name}", epilog=notes)


def run_tool(name: str, argv: list[str]) -> int:
    """Parse ``argv`` for tool ``name`` and call it; returns its exit status."""
    from splade_lightning.tools.parser import (
        expand_switches,
        explain,
        flag_names,
        join_lists,
        list_options,
        suggest_flags,
        switches,
    )

    parser = tool_parser(name)
    try:
        config = parser.parse_args(join_lists(expand_switches(argv, switches(parser)), list_options(parser)))
    except argparse.ArgumentError as e:
        message = suggest_flags(explain(str(e)), flag_names(parser))
        raise UsageError(f"{message} (see {PROG} {name} --help)") from None
    kwargs = {k: v for k, v in vars(config).items() if k != "config"}
    function, _ = tool_function(name)
    return int(function(**kwargs) or 0)


class UsageError(SpladeLightningError):
    """A command line that does not parse."""


def _quiet() -> None:
    from splade_lightning.tools.lightning_errors import quiet_lightning

    for message in QUIET:
        warnings.filterwarnings("ignore", message=f".*{message}")
    quiet_lightning()


def dispatch(argv: list[str]) -> int:
    """Run one command line; returns the exit status (errors propagate)."""
    if not argv or argv[0] in ("-h", "--help"):
        print(overview())
        return 0
    name, rest = argv[0], argv[1:]
    if name in TOOLS:
        return run_tool(name, rest)
    if name in LIGHTNING:
        from splade_lightning.tools.lightning_cli import run_lightning

        return run_lightning(argv)
    close = difflib.get_close_matches(name, [*LIGHTNING, *TOOLS], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"unknown subcommand {name!r}{hint} Expected one of: {', '.join([*LIGHTNING, *TOOLS])} "
                     f"({PROG} --help)")


def main(args: list[str] | None = None) -> int:
    """Entry point of ``splade-lightning``: run one command line and return its exit status (0 on success, 2 on bad
    input, after printing one ``error:`` paragraph to stderr)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _quiet()
    if args is None:
        sys.argv[0] = PROG  # usage lines that jsonargparse prints itself (--model.help) name the program
    argv = list(sys.argv[1:] if args is None else args)
    try:
        return dispatch(argv)
    except SystemExit as e:  # --help, --print_config
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except Exception as e:
        user_error = _user_error(e)
        if user_error is None or os.environ.get("SPLADE_LIGHTNING_DEBUG"):
            raise
        print(f"error: {user_error}", file=sys.stderr)
        return 2
