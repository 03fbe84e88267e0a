"""``splade-lightning mine``: mine hard negatives for the queries of a BEIR directory.

Examples::

    splade-lightning mine --data data/hotpotqa-500 --split train --output runs/hn_bm25.jsonl
    splade-lightning mine --data data/hotpotqa-500 --split train --retriever splade-tiny \\
        --relative_margin 0.05 --num_negatives 8 --output_scores --output runs/hn_splade.jsonl

Candidates come from BM25 (bm25s) or from any sparse model :func:`splade_lightning.load` accepts (exact search), and
are filtered as sentence-transformers 6's ``mine_hard_negatives`` does (see :mod:`splade_lightning.mining.filters`).
Each output line is ``{"qid", "pos": [doc ids], "neg": {"<system>": [doc ids]}}`` (plus ``"scores"`` with
``--output_scores``). The run is resumable: rerun the same command after an interruption.

Every argument is checked (:mod:`splade_lightning.tools.mine_args`) before the data or the model is loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm

from splade_lightning.devices import resolve_device
from splade_lightning.errors import ConfigError
from splade_lightning.formats.atomic import write_text_atomic
from splade_lightning.formats.fingerprints import describe_changes, model_fingerprint, texts_fingerprint
from splade_lightning.formats.manifest import MANIFEST, write_manifest
from splade_lightning.formats.outputs import dir_output_state, remove_owned
from splade_lightning.mining.data import (
    MiningData,
    append_lines,
    cache_dir,
    load_mining_data,
    output_record,
    read_skipped,
    read_written,
)
from splade_lightning.mining.filters import MiningRule, mine_negatives, query_rng
from splade_lightning.mining.retrievers import BM25_STOPWORDS, BM25Retriever
from splade_lightning.tools.mine_args import (
    bm25_settings,
    check_args,
    is_model,
    resolve_rule,
    run_settings,
    system_name,
)

_SHOWN = 10  # query ids listed in the summary
SKIPPED_FILE = "skipped.jsonl"  # in <output>.cache/: ids of queries skipped for want of negatives (JSON strings)


def _fingerprint(args: argparse.Namespace, data: MiningData, rule: MiningRule, system: str, model) -> dict:
    """What the output depends on: the settings, the BEIR records read, and the model retriever's weights."""
    positives = [" ".join(ids) for ids in data.positive_ids]
    return {**run_settings(args, rule, system), "model": None if model is None else model_fingerprint(model),
            "data": texts_fingerprint(data.texts, data.text_doc_ids, data.qids, data.query_texts, positives)}


def _prepare_output(args: argparse.Namespace, data: MiningData, fingerprint: dict) -> set[str]:
    """Start a fresh output, or check and trim the one being resumed; return the query ids already done (written, or
    skipped for want of negatives).

    A non-empty output is resumed only when ``<output>.cache/`` records the same fingerprint; a missing, unreadable
    or different record is refused (``--overwrite`` starts again), so a file is never extended by another run.
    """
    output = Path(args.output)
    cache = cache_dir(output)
    state, manifest = dir_output_state(cache, "--output's cache directory")
    if state == "ours" and manifest.get("tool") != "mine":
        if not args.overwrite:
            raise ConfigError(f"{cache} holds an earlier output of splade_lightning `{manifest.get('tool')}`; pass "
                              "--overwrite to replace it, or choose another --output")
        remove_owned(cache, manifest)
    resume = output.exists() and output.stat().st_size > 0
    recorded = (manifest or {}).get("fingerprint") if (manifest or {}).get("tool") == "mine" else None
    if resume and recorded != fingerprint:
        if not args.overwrite:
            changes = describe_changes(recorded, fingerprint)
            raise ConfigError(f"--output {output} exists but was not built from these inputs and settings ("
                              + "; ".join(changes) + f"; recorded in {cache / MANIFEST}); nothing was reused or "
                              "written. Pass --overwrite to start again, or rerun with the earlier settings to resume")
        resume = False
    done: set[str] = set()
    if resume:
        written = read_written(output, set(data.qids))
        if written.size < output.stat().st_size:
            os.truncate(output, written.size)
        skipped = read_skipped(cache / SKIPPED_FILE) & set(data.qids)
        done = set(written.qids) | skipped
        note = f"; dropped {written.dropped}, to be rewritten" if written.dropped else ""
        print(f"resuming {output}: {len(written.qids)} of {len(data.qids)} queries already written, {len(skipped)} "
              f"skipped (no negative){note}", flush=True)
    else:
        (cache / SKIPPED_FILE).unlink(missing_ok=True)
        output.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(output, "")
    cache.mkdir(parents=True, exist_ok=True)
    write_manifest(cache, "mine", fingerprint, complete=False, files={SKIPPED_FILE: None}, owned_dirs=["corpus"])
    return done


def _load_retriever_model(args: argparse.Namespace):
    """The model retriever (None for BM25), on ``--device``."""
    if not is_model(args):
        return None
    from splade_lightning.api import load

    return load(args.retriever, device=resolve_device(args.device or "auto"))


def _build_retriever(args: argparse.Namespace, data: MiningData, system: str, model, fingerprint: dict):
    """The BM25 index or the model with its (cached) corpus encodings."""
    progress = args.progress
    if model is None:
        bm25 = bm25_settings(args)
        return BM25Retriever(data.texts, bm25["bm25_stopwords"], bm25["bm25_k1"], bm25["bm25_b"], progress)
    from splade_lightning.mining.retrievers import SparseModelRetriever, corpus_fingerprint

    key = corpus_fingerprint(fingerprint["model"], model.max_doc_length, data.texts)
    return SparseModelRetriever(model, data.texts, cache_dir(args.output) / "corpus", key,
                                args.shard_size or 10000, args.batch_size or 32, system, progress)


@dataclass
class MineStats:
    """Counts for the summary."""

    mined: int = 0
    written: int = 0
    negatives: int = 0
    short: int = 0
    empty: list[str] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)


def _mine_chunk(retriever, data: MiningData, chunk: range, done: set[str], rule: MiningRule,
                args: argparse.Namespace, system: str, stats: MineStats) -> tuple[list[str], list[str]]:
    """Retrieve and filter the queries of ``chunk`` not yet ``done``; return their output lines and the ids of the
    queries skipped for want of negatives.

    The whole chunk is passed to the retriever (it encodes it together), so resuming mid-chunk gives the same
    scores as an uninterrupted run.
    """
    todo = [j for j, i in enumerate(chunk) if data.qids[i] not in done]
    found = retriever.search([data.query_texts[i] for i in chunk], [data.positive_rows[i] for i in chunk],
                             rule.range_max + data.max_positives, todo)
    indices = [chunk[j] for j in todo]
    positive_rows = [data.positive_rows[i] for i in indices]
    rngs = [query_rng(args.seed, data.qids[i]) for i in indices] if rule.sampling_strategy == "random" else None
    mined = mine_negatives(found.scores, found.rows, positive_rows, found.positive_scores, rule, rngs)
    for name, count in mined.removed.items():
        stats.removed[name] = stats.removed.get(name, 0) + count
    lines, skipped = [], []
    for j, i in enumerate(indices):
        rows, qid = mined.rows[j], data.qids[i]
        stats.mined += 1
        stats.short += 0 < len(rows) < rule.num_negatives
        if len(rows) == 0:
            stats.empty.append(qid)
            if not args.keep_empty:
                skipped.append(qid)
                continue
        scores = None
        if args.output_scores:
            by_row = dict(zip(positive_rows[j].tolist(), found.positive_scores[j]))
            scores = [by_row[data.doc_rows[doc_id]] for doc_id in data.positive_ids[i]]
        lines.append(output_record(qid, data.positive_ids[i], system, [data.text_doc_ids[r] for r in rows],
                                   scores, mined.scores[j] if args.output_scores else None))
        stats.written += 1
        stats.negatives += len(rows)
    return lines, skipped


def _summary(args: argparse.Namespace, system: str, rule: MiningRule, stats: MineStats, seconds: float) -> str:
    per_query = stats.negatives / stats.written if stats.written else 0.0
    lines = [f"mined {stats.mined} queries with {system} in {seconds:.1f} s: wrote {stats.written} with "
             f"{stats.negatives} negatives ({per_query:.2f} per query) to {args.output} (range_max {rule.range_max})"]
    if stats.short:
        lines.append(f"  {stats.short} queries have fewer than {rule.num_negatives} negatives")
    if stats.empty:
        shown = ", ".join(stats.empty[:_SHOWN]) + (", ..." if len(stats.empty) > _SHOWN else "")
        fate = "written with an empty list" if args.keep_empty else "skipped (--keep_empty writes them)"
        lines.append(f"  {len(stats.empty)} queries have no negative left after the filters, {fate}: {shown}")
    if stats.removed:
        lines.append("  candidates removed by the filters: "
                     + ", ".join(f"{name} {count}" for name, count in stats.removed.items()))
    return "\n".join(lines)


def _run(args: argparse.Namespace, data: MiningData, rule: MiningRule, system: str, done: set[str], model,
         fingerprint: dict) -> MineStats:
    """Build the retriever, then mine the queries not ``done`` chunk by chunk, appending each chunk's lines."""
    retriever = _build_retriever(args, data, system, model, fingerprint)
    stats = MineStats()
    skipped_path = cache_dir(args.output) / SKIPPED_FILE
    remaining = sum(qid not in done for qid in data.qids)
    with tqdm(total=remaining, desc=f"mine ({system})", unit="query", disable=not args.progress) as bar:
        for begin in range(0, len(data.qids), args.chunk_size):  # chunks on a fixed grid: resumes give equal floats
            chunk = range(begin, min(begin + args.chunk_size, len(data.qids)))
            if all(data.qids[i] in done for i in chunk):
                continue
            lines, skipped = _mine_chunk(retriever, data, chunk, done, rule, args, system, stats)
            append_lines(skipped_path, [json.dumps(qid, ensure_ascii=False) + "\n" for qid in skipped])
            append_lines(args.output, lines)
            bar.update(len(lines) + len(skipped))
    return stats


def mine(data: str, output: str, split: str = "train", min_relevance: int = 1, retriever: str = "bm25",
         system_name: str | None = None, bm25_stopwords: Literal[BM25_STOPWORDS] | None = None,
         bm25_k1: float | None = None, bm25_b: float | None = None, batch_size: int | None = None,
         shard_size: int | None = None, device: str = "auto", num_negatives: int = 3, range_min: int = 0,
         range_max: int | None = None, max_score: float | None = None, min_score: float | None = None,
         absolute_margin: float | None = None, relative_margin: float | None = None,
         sampling_strategy: Literal["top", "random"] = "top", seed: int = 0, output_scores: bool = False,
         keep_empty: bool = False, chunk_size: int = 1000, overwrite: bool = False, progress: bool = True) -> int:
    """Mine hard negatives for the queries of a BEIR directory with BM25 or a sparse model, filtered as
    sentence-transformers' mine_hard_negatives does. Output: one JSON line per query, {"qid", "pos": [doc ids],
    "neg": {"<system>": [doc ids]}}. Rerun the same command to resume.

    Args:
        data: the BEIR directory (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); documents with identical text
            count once (the first id is written), as in sentence-transformers.
        output: the JSONL file to write; <output>.cache/ keeps the run's fingerprint and corpus encodings.
        split: the qrels split: qrels/<split>.tsv.
        min_relevance: the qrels grade from which a document is a positive; queries without a positive are not
            mined.
        retriever: bm25, or a sparse model: alias (splade-tiny), model directory, HF hub id or .ckpt written by fit.
        system_name: key of the negatives in "neg" (default: bm25, or the model's basename).
        bm25_stopwords: bm25 only: stopword list of bm25s' tokenizer (default en; none keeps every word).
        bm25_k1: bm25 only: k1 (default 1.5).
        bm25_b: bm25 only: b (default 0.75).
        batch_size: model only: texts per forward pass (default 32).
        shard_size: model only: documents per cached encoding shard (default 10000).
        device: model only: where the model runs: auto (CUDA when available), cpu, cuda or cuda:N.
        num_negatives: negatives per query.
        range_min: skip this many of the best surviving candidates.
        range_max: consider this many candidates (default: range_min + num_negatives + the most positives of a
            query, or range_min + 10*num_negatives + that when a margin or --max_score is set).
        max_score: drop candidates scoring above this.
        min_score: drop candidates scoring below this.
        absolute_margin: drop candidates with score + margin > p, p = the query's lowest positive score.
        relative_margin: drop candidates with score > p - abs(p) * margin (e.g. 0.05: at least 5% below).
        sampling_strategy: top (the best survivors) or random (a sample of them, by --seed).
        seed: seed of random sampling (per query).
        output_scores: also write "scores": {"pos": [...], "<system>": [...]}.
        keep_empty: write queries left without negatives (with an empty list) instead of skipping them.
        chunk_size: queries retrieved and appended (flushed, fsynced) at a time; keep it, and --batch_size, when
            resuming to get bit-identical model scores.
        overwrite: discard an existing --output and start again (valid corpus encodings are reused).
        progress: show progress bars.
    """
    return _mine(argparse.Namespace(**locals()))


def _mine(args: argparse.Namespace) -> int:
    """:func:`mine` on its parsed arguments (a function of its own: the parameter names shadow the helpers)."""
    check_args(args)
    start = time.perf_counter()
    data = load_mining_data(args.data, args.split, args.min_relevance)
    rule = resolve_rule(args, data.max_positives)
    system = system_name(args)
    model = _load_retriever_model(args)
    fingerprint = _fingerprint(args, data, rule, system, model)
    done = _prepare_output(args, data, fingerprint)
    remaining = sum(qid not in done for qid in data.qids)
    if remaining:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
            stats = _run(args, data, rule, system, done, model, fingerprint)
        print(_summary(args, system, rule, stats, time.perf_counter() - start), flush=True)
    else:
        print(f"{args.output} is complete: all {len(data.qids)} queries are done", flush=True)
    write_manifest(cache_dir(args.output), "mine", fingerprint, complete=True, files={SKIPPED_FILE: None},
                   owned_dirs=["corpus"])
    return 0
