"""``splade-lightning interpolate``: WiSE-FT, the weight-space interpolation of a zero-shot model and its fine-tuned
version (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022, arXiv:2109.01903).

Examples::

    splade-lightning interpolate --zero_shot splade-tiny --fine_tuned runs/quickstart/csv/version_0/model \\
        --data data/msmarco-trecdl-5k --min_relevance 2 --output runs/wise-ft
    splade-lightning interpolate --config configs/interpolate/quickstart.yaml

For each alpha of --alphas the model (1 - alpha) * zero-shot + alpha * fine-tuned
(:mod:`splade_lightning.models.interpolation`) is evaluated on every set exactly as ``evaluate`` does
(:func:`~splade_lightning.retrieval.evaluation.evaluate_dataset`); the alpha chosen by --select is saved as a model
directory. --output DIR receives interpolation.json, interpolation.md, interpolation.png and model/. Every argument
is checked before a model is loaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import time
from pathlib import Path

from splade_lightning.devices import resolve_device
from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir import BeirSet
from splade_lightning.formats.beir_files import beir_dirs
from splade_lightning.formats.outputs import Input, check_dir_output, dir_output, model_input
from splade_lightning.metrics.ir import parse_measure
from splade_lightning.tools.evaluate import DEFAULT_MEASURES, check_model_name

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
BEIR_PARTS = ("corpus.jsonl", "queries.jsonl", "qrels")


def _alphas(alphas: list[float]) -> list[float]:
    bad = [a for a in alphas if isinstance(a, bool) or not isinstance(a, int | float) or not math.isfinite(a)
           or not 0.0 <= a <= 1.0]
    if not alphas or bad:
        raise ConfigError(f"--alphas {' '.join(map(str, bad or alphas)) or '(empty)'}: expected one or more numbers in "
                          "[0, 1] (0: the zero-shot model, 1: the fine-tuned one), e.g. --alphas 0 0.25 0.5 0.75 1")
    return sorted({float(a) for a in alphas})


def _select(select: str, alphas: list[float], names: list[str]) -> tuple[float | None, str | None]:
    """``--select``: (a fixed alpha, None), or (None, the set to maximise on; None: the mean)."""
    text = select.strip()
    if text == "best":
        return None, None
    if text.startswith("best:"):
        name = text[len("best:"):]
        if name not in names:
            raise ConfigError(f"--select {select}: no evaluation set is named {name!r}; expected best:NAME with "
                              f"NAME one of {names}")
        return None, name
    try:
        alpha = float(text)
    except ValueError:
        raise ConfigError(f"--select {select!r}: expected best (the mean over the sets), best:NAME (one set, of "
                          f"{names}) or one of --alphas {alphas}") from None
    if alpha not in alphas:
        raise ConfigError(f"--select {select}: alpha {alpha:g} is not among --alphas {alphas}; expected one of them")
    return alpha, None


def _sets(args: argparse.Namespace) -> list[BeirSet]:
    """--data (a BEIR directory or a folder of them, with --split / --min_relevance) and --sets, as BeirSets."""
    from splade_lightning.data.arguments import as_beir_sets, check_eval_paths

    if args.data is None and not args.sets:
        raise ConfigError("expected evaluation sets: --data DIR (a BEIR directory or a folder of them) and/or "
                          "--sets '{path: DIR, split: dev, min_relevance: 2}' ...")
    if args.data is None and (args.split is not None or args.min_relevance != 1):
        raise ConfigError("--split and --min_relevance apply to --data; each --sets entry has its own split and "
                          "min_relevance")
    problems: list[str] = []
    if args.min_relevance < 1:
        problems.append(f"--min_relevance must be >= 1, got {args.min_relevance}")
    from_data = [] if args.data is None else [BeirSet(str(path), args.split or "test", None, args.min_relevance)
                                              for path in beir_dirs(args.data)[0]]
    listed = as_beir_sets(args.sets, "sets", problems, prefix="")
    problems += check_eval_paths([("data", from_data), ("sets", listed)], prefix="")
    found = from_data + listed
    names = [s.display_name for s in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"set names must be unique across --data and --sets, got duplicates {duplicates}; give "
                        "--sets entries a distinct `name`")
    if "mean" in names and len(names) > 1:
        problems.append("no set may be named 'mean' (the row of the mean over the sets); give it another `name`")
    if problems:
        raise ConfigError("; ".join(problems))
    return found


def _check_args(args: argparse.Namespace) -> None:
    """Check every argument before any model is loaded; fills in defaults (alphas sorted, sets, selection)."""
    args.alphas = _alphas(list(args.alphas))
    args.measures = list(dict.fromkeys(m.strip().lower() for item in args.measures for m in item.split(",")
                                       if m.strip()))
    if not args.measures:
        raise ConfigError(f"--measures is empty; expected e.g. {' '.join(DEFAULT_MEASURES)}")
    cutoffs = [(parse_measure(m).cutoff or 0, m) for m in args.measures]  # unknown measure: ConfigError
    args.k = 1000 if args.k is None else args.k
    args.batch_size = 64 if args.batch_size is None else args.batch_size
    problems = [f"--{name} must be >= 1, got {getattr(args, name)}" for name in
                ("k", "batch_size", "max_query_length", "max_doc_length")
                if getattr(args, name) is not None and getattr(args, name) < 1]
    if args.k >= 1 and max(cutoffs)[0] > args.k:
        problems.append(f"--k {args.k} is smaller than the cut-off of {max(cutoffs)[1]}; expected --k >= "
                        f"{max(cutoffs)[0]}")
    if problems:
        raise ConfigError("; ".join(problems))
    args.beir_sets = _sets(args)
    args.fixed_alpha, args.select_on = _select(args.select, args.alphas, [s.display_name for s in args.beir_sets])
    check_model_name(args.zero_shot, "--zero_shot")
    check_model_name(args.fine_tuned, "--fine_tuned")
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError("interpolate draws interpolation.png with matplotlib, which is not installed; "
                          "pip install -e '.[analysis]'")
    args.device = resolve_device(args.device)
    args.inputs = [model_input(args.zero_shot, "--zero_shot"), model_input(args.fine_tuned, "--fine_tuned"),
                   *(Input(s.path, "--data" if args.data else "--sets", reads=BEIR_PARTS) for s in args.beir_sets)]
    check_dir_output(args.output, "--output", args.overwrite, args.inputs)


def _load_pair(args: argparse.Namespace):
    """Load both models; refuse a pair that cannot be interpolated. Returns (zero-shot, fine-tuned) SparseModels."""
    from splade_lightning.api import load
    from splade_lightning.models.interpolation import check_same_settings, check_same_tensors
    from splade_lightning.models.onnx_encoder import runtime_of

    names = (f"--zero_shot {args.zero_shot}", f"--fine_tuned {args.fine_tuned}")
    models = [load(args.zero_shot, device=args.device), load(args.fine_tuned, device=args.device)]
    for name, model in zip(names, models):
        if runtime_of(model.encoder) == "onnx":
            raise ConfigError(f"{name} is an ONNX export, which has no torch weights to interpolate; give the model "
                              "it was exported from")
    zero_shot, fine_tuned = models
    check_same_settings(zero_shot.encoder.export_config(), fine_tuned.encoder.export_config(), names)
    vocab_a, vocab_b = zero_shot.tokenizer.get_vocab(), fine_tuned.tokenizer.get_vocab()
    if vocab_a != vocab_b:
        token = next((t for t in sorted(set(vocab_a) | set(vocab_b)) if vocab_a.get(t) != vocab_b.get(t)), None)
        raise ConfigError(f"{names[0]} and {names[1]} have different tokenizer vocabularies ({len(vocab_a)} vs "
                          f"{len(vocab_b)} tokens; first difference: token {token!r} has id {vocab_a.get(token)} vs "
                          f"{vocab_b.get(token)}); expected a model and its fine-tuned version")
    check_same_tensors(zero_shot.encoder.state_dict(), fine_tuned.encoder.state_dict(), names)
    for name in ("max_query_length", "max_doc_length"):
        if getattr(args, name) is not None:
            setattr(fine_tuned, name, getattr(args, name))
    return zero_shot, fine_tuned


def _sweep(args: argparse.Namespace, zero_shot, fine_tuned, datasets) -> list[dict]:
    """Evaluate every alpha on every set; leaves ``fine_tuned`` holding the last alpha's weights."""
    from splade_lightning.models.interpolation import interpolate_state_dicts
    from splade_lightning.retrieval.evaluation import SPARSITY_KEYS, evaluate_dataset
    from splade_lightning.tools.evaluate import format_table
    from splade_lightning.tools.interpolate_report import alpha_label, with_means

    keys = [*args.measures, *SPARSITY_KEYS]
    rows = []
    for alpha in args.alphas:
        fine_tuned.encoder.load_state_dict(interpolate_state_dicts(args.zero_state, args.fine_state, alpha))
        per_set = {}
        for data in datasets:
            result, _ = evaluate_dataset(fine_tuned, data, args.k, args.measures, args.batch_size, args.progress)
            per_set[data.name] = {key: result.metrics[key] for key in keys if key in result.metrics}
        rows.append({"alpha": alpha, "sets": per_set, "mean": with_means(per_set, keys)})
        table = {**per_set, **({"mean": rows[-1]["mean"]} if rows[-1]["mean"] else {})}
        print(f"alpha = {alpha_label(alpha)}\n{format_table(table, keys)}\n", flush=True)
    return rows


def _choose(args: argparse.Namespace, rows: list[dict]) -> tuple[float, str]:
    """The exported alpha and why (ties: the smallest alpha, the model closest to the zero-shot one)."""
    from splade_lightning.tools.interpolate_report import score_of

    measure = args.measures[0]
    if args.fixed_alpha is not None:
        return args.fixed_alpha, "fixed"
    best = max(rows, key=lambda r: (score_of(r, measure, args.select_on), -r["alpha"]))
    on = f"on {args.select_on}" if args.select_on else ("mean over the sets" if len(rows[0]["sets"]) > 1 else
                                                         f"on {next(iter(rows[0]['sets']))}")
    return best["alpha"], f"highest {measure} {on}"


def interpolate(zero_shot: str, fine_tuned: str, output: str, alphas: list[float] = DEFAULT_ALPHAS,
                data: str | None = None, split: str | None = None, min_relevance: int = 1,
                sets: list[BeirSet] | None = None, select: str = "best", measures: list[str] = DEFAULT_MEASURES,
                k: int | None = None, batch_size: int | None = None, max_query_length: int | None = None,
                max_doc_length: int | None = None, device: str = "auto", overwrite: bool = False,
                progress: bool = True) -> int:
    """WiSE-FT: interpolate a zero-shot model and its fine-tuned version, evaluate each alpha, save the chosen one.

    theta(alpha) = (1 - alpha) * zero_shot + alpha * fine_tuned (Wortsman et al., CVPR 2022, arXiv:2109.01903),
    evaluated on BEIR sets as evaluate does.

    Args:
        zero_shot: the model before fine-tuning (alpha = 0): alias (splade-tiny), model directory, HF hub id or a
            .ckpt written by fit.
        fine_tuned: the fine-tuned model (alpha = 1), of the same architecture, shapes and vocabulary; the exported
            model keeps its settings.
        output: a new directory: interpolation.json, interpolation.md, interpolation.png and model/ (the chosen
            alpha, as save writes it).
        alphas: interpolation weights in [0, 1]: theta = (1 - alpha) * zero_shot + alpha * fine_tuned.
        data: a BEIR directory, or a folder whose subfolders are BEIR directories (each one set).
        split: the qrels split of the --data sets, qrels/<split>.tsv (default test).
        min_relevance: lowest grade counted as relevant by mrr, recall, p and map in the --data sets (2 for TREC
            DL; nDCG uses the grades).
        sets: evaluation sets as fit's val_sets, one YAML mapping each, {path, split, name, min_relevance,
            max_queries} (e.g. --sets '{path: data/hotpotqa-500, split: dev}' '{path: data/b, min_relevance: 2}').
        select: the alpha saved to model/: best (highest mean of the first --measures over the sets), best:NAME
            (highest on set NAME), or a number among --alphas. Ties go to the smaller alpha.
        measures: measures to report: ndcg@k, mrr@k, recall@k, p@k, map, map@k (the first one selects).
        k: documents retrieved per query (default 1000; at least every cut-off).
        batch_size: texts per encoder call (default 64).
        max_query_length: query truncation in tokens (default: the fine-tuned model's; also saved with model/).
        max_doc_length: document truncation in tokens (default: the fine-tuned model's; also saved with model/).
        device: where to encode: auto (CUDA when available), cpu, cuda or cuda:N.
        overwrite: replace an earlier --output directory of interpolate (only the files it wrote).
        progress: show progress bars.
    """
    from splade_lightning.api import SparseModel
    from splade_lightning.formats.beir import load_beir_set
    from splade_lightning.models.interpolation import interpolate_state_dicts
    from splade_lightning.tools.interpolate_report import write_report

    args = argparse.Namespace(**locals())
    _check_args(args)
    start = time.perf_counter()
    datasets = [load_beir_set(s) for s in args.beir_sets]
    zero_model, fine_model = _load_pair(args)
    args.zero_state = zero_model.encoder.state_dict()
    args.fine_state = {key: value.detach().clone() for key, value in fine_model.encoder.state_dict().items()}
    rows = _sweep(args, zero_model, fine_model, datasets)
    chosen, why = _choose(args, rows)
    fine_model.encoder.load_state_dict(interpolate_state_dicts(args.zero_state, args.fine_state, chosen))
    payload = {"zero_shot": zero_shot, "fine_tuned": fine_tuned, "alphas": args.alphas, "measures": args.measures,
               "selection_measure": args.measures[0], "select": select, "selected_alpha": chosen,
               "selected_by": why, "k": args.k, "max_query_length": fine_model.max_query_length,
               "max_doc_length": fine_model.max_doc_length,
               "sets": [{"name": d.name, "path": d.path, "split": d.split, "min_relevance": d.min_relevance,
                         "queries": len(d.queries), "documents": len(d.corpus)} for d in datasets],
               "results": rows, "seconds": time.perf_counter() - start}
    with dir_output(output, "--output", "interpolate", overwrite, args.inputs) as tmp:
        SparseModel(fine_model.encoder, fine_model.tokenizer, fine_model.max_query_length,
                    fine_model.max_doc_length).save(tmp / "model")
        write_report(Path(tmp), payload)
    print(f"exported alpha = {chosen:g} ({why}); wrote {output}", flush=True)
    return 0
