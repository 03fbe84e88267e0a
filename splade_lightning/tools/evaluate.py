"""``splade-lightning evaluate``: score a model on BEIR data, or score (and compare) TREC run files.

Examples::

    splade-lightning evaluate --model splade-tiny --data data/msmarco-trecdl-5k --min_relevance 2 \\
        --max_query_length 48 --max_doc_length 256 --output runs/eval.json --run_output runs/dl.trec
    splade-lightning evaluate --model runs/my/model --data data/beir   # folder of BEIR dirs: one row each + mean
    splade-lightning evaluate --model splade-tiny --suite bundled       # a suite file (data/suites/bundled.yaml)
    splade-lightning evaluate --run a.trec b.trec --qrels data/scifact/qrels/test.tsv --alpha 0.05

Model mode encodes queries and corpus with :func:`splade_lightning.load`, retrieves exactly and scores with
:func:`splade_lightning.retrieval.evaluation.evaluate_retrieval` (the function in-training validation uses). Run
mode scores TREC run files with :func:`~splade_lightning.metrics.ir.retrieval_metrics`; with two runs it adds paired
significance tests (:mod:`splade_lightning.metrics.significance`). Every argument is checked before data or model
are loaded; errors are raised as :class:`~splade_lightning.errors.SpladeLightningError` for the caller to print.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from splade_lightning.devices import resolve_device
from splade_lightning.errors import ConfigError
from splade_lightning.formats.atomic import write_text_atomic
from splade_lightning.formats.outputs import Input, check_dir_output, check_file_output, dir_output, model_input
from splade_lightning.formats.tables import markdown_table
from splade_lightning.formats.trec import read_qrels, read_trec_run
from splade_lightning.metrics.ir import parse_measure, per_query_metrics, retrieval_metrics
from splade_lightning.metrics.significance import compare_per_query
from splade_lightning.retrieval.evaluation import SPARSITY_KEYS, evaluate_dataset, mean_over_datasets
from splade_lightning.tools.eval_sets import model_sets, suite_problems

DEFAULT_MEASURES = ("ndcg@10", "mrr@10", "recall@100", "recall@1000", "map")
#: model-mode options: name -> default (anything else given in run mode is an error)
MODEL_ONLY = {"data": None, "suite": None, "split": None, "k": None, "batch_size": None, "max_query_length": None,
              "max_doc_length": None, "run_output": None}
RUN_ONLY = {"qrels": None, "permutations": None, "seed": None, "alpha": None}


def check_model_name(name: str, flag: str = "--model") -> None:
    """Refuse, before loading, a model name that :func:`splade_lightning.load` cannot resolve (named by ``flag``)."""
    from splade_lightning.hub import ALIASES

    path = Path(name)
    if name.endswith(".ckpt") and not path.is_file():
        raise ConfigError(f"{flag} {name}: checkpoint does not exist")
    if not path.exists() and ("/" not in name or name.startswith((".", "/"))) and name.lower() not in ALIASES:
        raise ConfigError(f"{flag} {name!r} is neither an existing path, a known alias {sorted(ALIASES)}, nor a HF "
                          "hub id of the form 'owner/name'")


def _inputs(args: argparse.Namespace) -> list[Input]:
    """Every path the command reads."""
    if args.model is not None:
        beir = ("corpus.jsonl", "queries.jsonl", "qrels")
        flag = "--data" if args.suite is None else "--suite"
        return [model_input(args.model, "--model"), *(Input(path, flag, reads=beir) for path in args.data_dirs)]
    return [*(Input(path, "--run") for path in args.run), Input(args.qrels, "--qrels")]


def _check_outputs(args: argparse.Namespace) -> None:
    inputs = _inputs(args)
    if args.output is not None:
        check_file_output(args.output, "--output", args.overwrite, "the JSON file to write", inputs)
    if getattr(args, "run_output", None) is None:
        return
    if args.several:
        check_dir_output(args.run_output, "--run_output", args.overwrite, inputs)
    else:
        check_file_output(args.run_output, "--run_output", args.overwrite, "the TREC run file to write", inputs)


def _mode_problems(args: argparse.Namespace) -> list[str]:
    if (args.model is None) == (args.run is None):
        return ["expected either --model M --data DIR | --suite FILE (evaluate a model) or --run RUN [RUN2] --qrels "
                "FILE (score run files), not " + ("both" if args.model is not None else "neither")]
    wrong = RUN_ONLY if args.model is not None else MODEL_ONLY
    other = "--run" if args.model is not None else "--model"
    problems = [f"--{name} only applies with {other}" for name, default in wrong.items()
                if getattr(args, name) != default]
    if args.model is not None and args.data is None and args.suite is None:
        problems.append("--model needs --data DIR (a BEIR directory or a folder of them) or --suite FILE")
    problems += suite_problems(args)
    if args.run is not None:
        if args.qrels is None:
            problems.append("--run needs --qrels FILE")
        if len(args.run) > 2:
            problems.append(f"--run takes one or two run files, got {len(args.run)}")
        if len(args.run) < 2 and any(getattr(args, n) is not None for n in ("permutations", "seed", "alpha")):
            problems.append("--permutations, --seed and --alpha need two runs (--run A B)")
    return problems


def _value_problems(args: argparse.Namespace, measures: list[str]) -> list[str]:
    problems = []
    for name, low in (("min_relevance", 1), ("k", 1), ("batch_size", 1), ("max_query_length", 1),
                      ("max_doc_length", 1), ("permutations", 1)):
        value = getattr(args, name)
        if value is not None and value < low:
            problems.append(f"--{name} must be >= {low}, got {value}")
    if args.alpha is not None and not 0 < args.alpha < 1:
        problems.append(f"--alpha must lie in (0, 1), got {args.alpha}")
    cutoffs = [(parse_measure(m).cutoff or 0, m) for m in measures]
    if args.model is not None and args.k >= 1 and max(cutoffs)[0] > args.k:
        problems.append(f"--k {args.k} is smaller than the cut-off of {max(cutoffs)[1]}; expected --k >= "
                        f"{max(cutoffs)[0]} so that the run is deep enough")
    return problems


def _check_args(args: argparse.Namespace) -> list[str]:
    """Check every argument (collecting all problems into one ConfigError); return the parsed measure names."""
    measures = list(dict.fromkeys(m.strip().lower() for item in args.measures for m in item.split(",") if m.strip()))
    if not measures:
        raise ConfigError(f"--measures is empty; expected e.g. {' '.join(DEFAULT_MEASURES)}")
    for name in measures:
        parse_measure(name)  # unknown measure: ConfigError listing the supported ones
    problems = _mode_problems(args)
    if args.model is not None:
        args.split = args.split or ("test" if args.suite is None else None)
        args.k = 1000 if args.k is None else args.k
        args.batch_size = 64 if args.batch_size is None else args.batch_size
    problems += _value_problems(args, measures)
    if problems:
        raise ConfigError("; ".join(problems))
    if args.model is not None:
        check_model_name(args.model)
        args.device = resolve_device(args.device)
        args.sets = model_sets(args)
        args.data_dirs, args.several = args.sets.local_dirs(), args.sets.several
    else:
        for path in [*args.run, args.qrels]:
            if not Path(path).is_file():
                raise ConfigError(f"{'--qrels' if path == args.qrels else '--run'} {path} is not a file")
    _check_outputs(args)
    return measures


def _write_json(path: str | None, payload: dict) -> None:
    if path is not None:
        write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")
        print(f"wrote {path}", flush=True)


def _evaluate_model(args: argparse.Namespace, measures: list[str]) -> int:
    from splade_lightning.api import load
    from splade_lightning.formats.beir import load_beir_set

    start = time.perf_counter()
    datasets = [load_beir_set(beir_set) for beir_set in args.sets.sets]
    loaded_data = time.perf_counter()
    model = load(args.model, device=args.device)
    for name in ("max_query_length", "max_doc_length"):
        if getattr(args, name) is not None:
            setattr(model, name, getattr(args, name))
    rows, per_dataset, runs = {}, {}, {}
    for data in datasets:
        result, timings = evaluate_dataset(model, data, args.k, measures, args.batch_size, args.progress)
        rows[data.name] = result.metrics
        per_dataset[data.name] = {"dataset": data.name, "path": data.path, "split": data.split,
                                  "min_relevance": data.min_relevance, "queries": len(data.queries),
                                  "documents": len(data.corpus), **result.metrics, "timings": timings}
        runs[data.name] = result.run
    _write_runs(args, runs)
    keys = [*measures, *SPARSITY_KEYS]
    settings = {"model": args.model, "split": args.split,
                "min_relevance": args.min_relevance if args.sets.suite is None else None, "k": args.k,
                "measures": measures, "max_query_length": model.max_query_length,
                "max_doc_length": model.max_doc_length}
    total = {"load_data": loaded_data - start, "total": time.perf_counter() - start}
    if args.several:
        rows["mean"] = mean_over_datasets({name: rows[name] for name in per_dataset}, keys)
        suite = {} if args.sets.suite is None else {"suite": args.sets.suite[0], "suite_file": args.sets.suite[1]}
        payload = {**settings, **suite, "datasets": per_dataset, "mean": rows["mean"], "timings": total}
    else:
        only = next(iter(per_dataset.values()))
        payload = {**settings, **only, "timings": {**only["timings"], **total}}
    print(format_table(rows, keys), flush=True)
    print(f"({total['total']:.1f} s)", flush=True)
    _write_json(args.output, payload)
    return 0


def _write_runs(args: argparse.Namespace, runs: dict[str, dict]) -> None:
    """``--run_output``: one TREC file, or (several sets) a directory of ``<dataset>.trec``, written under the output
    policy."""
    from splade_lightning.formats.trec import write_trec_run

    if args.run_output is None:
        return
    if not args.several:
        write_trec_run(next(iter(runs.values())), args.run_output, tag="splade_lightning")
    else:
        with dir_output(args.run_output, "--run_output", "evaluate", args.overwrite, _inputs(args)) as tmp:
            for name, run in runs.items():
                write_trec_run(run, tmp / f"{name}.trec", tag="splade_lightning")
    print(f"wrote {args.run_output}", flush=True)


def _cell(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if key.startswith("active_dims") else f"{value:.4f}"


def format_table(rows: dict[str, dict[str, float]], keys: list[str], first_column: str = "dataset") -> str:
    """A Markdown table with one row per entry of ``rows`` and one column per key (missing values as ``-``)."""
    cells = ([name, *(_cell(k, m.get(k)) for k in keys)] for name, m in rows.items())
    return markdown_table([first_column, *keys], cells)


def _p(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4g}"


def _significance_table(rows) -> str:
    header = ["measure", "queries", "mean A", "mean B", "Δ", "t-test p", "randomisation p", "significant"]
    return markdown_table(header, ([row.measure, row.queries, f"{row.mean_a:.4f}", f"{row.mean_b:.4f}",
                                    f"{row.delta:+.4f}", _p(row.t_test_p), _p(row.randomisation_p),
                                    "-" if row.significant is None else ("yes" if row.significant else "no")]
                                   for row in rows))


def _evaluate_runs(args: argparse.Namespace, measures: list[str]) -> int:
    qrels = read_qrels(args.qrels)
    runs = {path: read_trec_run(path) for path in args.run}
    if len(runs) < len(args.run):
        raise ConfigError(f"--run names the same file twice ({args.run[0]}); expected two different runs")
    metrics = {path: retrieval_metrics(run, qrels, args.min_relevance, measures) for path, run in runs.items()}
    payload: dict = {"qrels": args.qrels, "min_relevance": args.min_relevance, "measures": measures, "runs": metrics}
    print(format_table(metrics, measures, first_column="run"), flush=True)
    if len(runs) == 2:
        (path_a, run_a), (path_b, run_b) = runs.items()
        per_query = [per_query_metrics(run, qrels, args.min_relevance, measures) for run in (run_a, run_b)]
        common = [q for q in run_a if q in run_b]
        rows = compare_per_query(*per_query, query_ids=common,
                                 permutations=10000 if args.permutations is None else args.permutations,
                                 seed=0 if args.seed is None else args.seed, alpha=args.alpha)
        print(f"\nA = {path_a}, B = {path_b}, over the judged queries both runs cover\n")
        print(_significance_table(rows), flush=True)
        payload["significance"] = {"a": path_a, "b": path_b, "alpha": args.alpha,
                                   "permutations": 10000 if args.permutations is None else args.permutations,
                                   "seed": 0 if args.seed is None else args.seed,
                                   "measures": {row.measure: row.to_dict() for row in rows}}
    _write_json(args.output, payload)
    return 0


def evaluate(model: str | None = None, data: str | None = None, suite: str | None = None, split: str | None = None,
             run: list[str] | None = None,
             qrels: str | None = None, measures: list[str] = DEFAULT_MEASURES, min_relevance: int = 1,
             k: int | None = None, batch_size: int | None = None, max_query_length: int | None = None,
             max_doc_length: int | None = None, device: str = "auto", permutations: int | None = None,
             seed: int | None = None, alpha: float | None = None, output: str | None = None,
             run_output: str | None = None, overwrite: bool = False, progress: bool = True) -> int:
    """Evaluate a sparse model on a BEIR directory (or a folder of them, or a suite file: one row per dataset plus the
    mean), or score TREC run files against qrels; two runs get paired significance tests.

    Model mode: --model M --data DIR, or --model M --suite FILE. Run mode: --run RUN [RUN2] --qrels FILE.

    Args:
        model: model mode: the model: alias (splade-tiny), model directory, HF hub id or a .ckpt written by fit.
        data: model mode: a BEIR directory, or a folder whose subfolders are BEIR directories (one row each plus
            their mean; every set with --split and --min_relevance), or an STS file (*.jsonl of {sentence1,
            sentence2, score} records: Spearman / Pearson of the dot product, both sentences encoded as documents).
        suite: model mode: a suite file (YAML: name, sets: [{path, split, name, min_relevance, max_queries}], paths
            relative to the file; a path may be hf://owner/name) or a preset name (bundled: data/suites/bundled.yaml):
            one row per set, each with its own split and min_relevance, plus the unweighted mean of every column.
        split: model mode: the qrels split, qrels/<split>.tsv (default test).
        run: run mode: one or two TREC run files (qid Q0 docid rank score tag); with two, the second (B) is compared
            against the first (A).
        qrels: run mode: BEIR qrels TSV (query-id corpus-id score) or TREC qrels (qid 0 docid rel).
        measures: measures to report: ndcg@k, mrr@k, recall@k, p@k, map, map@k (commas also separate).
        min_relevance: lowest grade counted as relevant by mrr, recall, p and map (2 for TREC DL; nDCG uses the
            grades).
        k: model mode: documents retrieved per query (default 1000; at least every cut-off).
        batch_size: model mode: texts per encoder call (default 64).
        max_query_length: model mode: query truncation in tokens (default: the model's).
        max_doc_length: model mode: document truncation in tokens (default: the model's).
        device: model mode: where to encode: auto (CUDA when available), cpu, cuda or cuda:N.
        permutations: run mode, two runs: sign patterns of the randomisation test (default 10000; exact enumeration
            when 2^queries is not larger).
        seed: run mode, two runs: seed of the randomisation test (default 0).
        alpha: run mode, two runs: mark measures where both p-values are below this level.
        output: a JSON file to write the metrics (and timings / significance) to.
        run_output: model mode: write the retrieved run as a TREC file (several sets: a directory of
            <dataset>.trec).
        overwrite: replace existing --output / --run_output files (a --run_output directory only if
            splade_lightning wrote it).
        progress: show progress bars.
    """
    args = argparse.Namespace(**locals())
    from splade_lightning.tools.evaluate_sts import evaluate_sts_file, is_sts_file

    if model is not None and is_sts_file(data):
        check_model_name(model)
        return evaluate_sts_file(args, DEFAULT_MEASURES)
    measures = _check_args(args)
    if args.model is not None:
        return _evaluate_model(args, measures)
    return _evaluate_runs(args, measures)
