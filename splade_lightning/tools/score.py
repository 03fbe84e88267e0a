"""``splade-lightning score``: teacher scores for distillation, from one teacher or an ensemble.

Examples::

    splade-lightning score --input data/hard_negatives.jsonl --queries data/queries.jsonl \\
        --corpus data/corpus.jsonl --teacher cross:models/ms-marco-MiniLM-L-6-v2 --output data/ce_scores.jsonl
    # OpenSearch's ensemble teacher (opensearch-sparse-model-tuning-sample, scripts/train/bi_encoder_wrapper.py):
    # per-query min-max normalised, averaged, times 30
    splade-lightning score --input data/hard_negatives.jsonl --queries data --corpus data \\
        --teacher dense:all-minilm-l6-v2 --teacher sparse:splade-tiny --scale 30 --output data/ensemble.jsonl

Input: hard negatives ``{"qid", "pos": [doc ids], "neg": {"<system>": [doc ids]} | [doc ids]}`` (as ``mine`` writes
them) or an earlier score file ``{"qid", "doc_ids", "scores"}`` (rescored), with the BEIR ``queries.jsonl`` and
``corpus.jsonl`` the ids point into. Output: one ``{"qid", "pos", "doc_ids", "scores"}`` line per input line,
positives first (``pos`` lists them; it is left out when the input names none), plus ``"teacher_scores":
{"KIND:NAME": [raw scores]}`` with ``--keep_teacher_scores``; written atomically.

Ensembling: each teacher's scores of one query's candidates are normalised (``--normalize minmax``: (s - min) /
(max - min + 1e-6) per query and teacher; ``none``: raw), averaged over the teachers and multiplied by ``--scale``. One
teacher defaults to raw scores (``--normalize none``, ``--scale 1``); several to ``--normalize minmax``. OpenSearch's
ensemble teacher is ``--normalize minmax --scale 30``.

Every argument and the input files are checked before a teacher is loaded.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np

from splade_lightning.devices import resolve_device
from splade_lightning.errors import ConfigError
from splade_lightning.formats.outputs import Input, check_file_output, model_input
from splade_lightning.formats.records import write_jsonl_atomic
from splade_lightning.scoring.ensemble import ensemble_scores
from splade_lightning.scoring.groups import Group, load_inputs, score_record
from splade_lightning.scoring.teachers import (
    Teacher,
    TeacherSpec,
    check_teacher_source,
    load_teacher,
    parse_teacher_spec,
)


def _check_args(args: argparse.Namespace) -> list[TeacherSpec]:
    """Check every argument (filling in the defaults that depend on others); return the parsed teachers."""
    specs = [parse_teacher_spec(text) for text in args.teacher]
    labels = [spec.label for spec in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(f"--teacher {duplicates[0]} is given more than once; each teacher may appear once")
    for name in ("batch_size", "chunk_size", "max_candidates", "max_length"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name} must be >= 1, got {value}")
    if not math.isfinite(args.scale) or args.scale <= 0:
        raise ConfigError(f"--scale must be a finite number > 0, got {args.scale}")
    if args.normalize is None:
        args.normalize = "none" if len(specs) == 1 else "minmax"
    args.device = resolve_device(args.device)
    for spec in specs:
        check_teacher_source(spec)
    inputs = [Input(args.input, "--input"), Input(args.queries, "--queries", reads=("queries.jsonl",)),
              Input(args.corpus, "--corpus", reads=("corpus.jsonl",)),
              *(model_input(spec.name, "--teacher") for spec in specs)]
    check_file_output(args.output, "--output", args.overwrite, "the JSONL file to write", inputs)
    return specs


def score_chunk(groups: Sequence[Group], queries: dict[str, str], corpus: dict[str, str],
                teachers: Sequence[Teacher]) -> dict[str, list[np.ndarray]]:
    """Raw scores of every teacher for a chunk of groups: ``{label: [(n_candidates,) per group]}``.

    Each distinct query text and document text of the chunk is encoded once per teacher; each distinct
    (query, document) pair is scored once.
    """
    query_texts = list(dict.fromkeys(queries[g.qid] for g in groups))
    doc_texts = list(dict.fromkeys(corpus[doc_id] for g in groups for doc_id in g.doc_ids))
    query_index = {text: i for i, text in enumerate(query_texts)}
    doc_index = {text: i for i, text in enumerate(doc_texts)}
    pairs = np.array([(query_index[queries[g.qid]], doc_index[corpus[doc_id]]) for g in groups for doc_id in g.doc_ids],
                     dtype=np.int64)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    splits = np.cumsum([len(g.doc_ids) for g in groups])[:-1]
    out = {}
    for teacher in teachers:
        scores = teacher.score_pairs(query_texts, doc_texts, unique)[inverse.reshape(-1)]
        rows = np.split(scores, splits)
        for group, row in zip(groups, rows):
            bad = np.flatnonzero(~np.isfinite(row))
            if bad.size:
                j = int(bad[0])
                raise ConfigError(f"--teacher {teacher.label} gave a non-finite score ({row[j]}) to query "
                                  f"{group.qid!r}, document {group.doc_ids[j]!r}; check the model (dtype, weights)")
        out[teacher.label] = rows
    return out


def score_records(groups: Sequence[Group], queries: dict[str, str], corpus: dict[str, str],
                  teachers: Sequence[Teacher], normalize: str, scale: float, chunk_size: int,
                  keep_teacher_scores: bool, progress: bool = True) -> Iterator[dict]:
    """Yield the output record of every group, in input order, scoring ``chunk_size`` groups at a time."""
    from tqdm.auto import tqdm

    with tqdm(total=len(groups), disable=not progress, desc="score", unit="query") as bar:
        for start in range(0, len(groups), chunk_size):
            chunk = groups[start:start + chunk_size]
            raw = score_chunk(chunk, queries, corpus, teachers)
            for i, group in enumerate(chunk):
                per_teacher = {label: rows[i] for label, rows in raw.items()}
                scores = ensemble_scores(list(per_teacher.values()), normalize=normalize, scale=scale)
                yield score_record(group, scores, per_teacher if keep_teacher_scores else None)
            bar.update(len(chunk))


def score(input: str, queries: str, corpus: str, teacher: list[str], output: str,
          normalize: Literal["none", "minmax"] | None = None, scale: float = 1.0, max_candidates: int | None = None,
          keep_teacher_scores: bool = False, device: str = "auto", batch_size: int = 32, chunk_size: int = 256,
          max_length: int | None = None, overwrite: bool = False, progress: bool = True) -> int:
    """Score each query's candidates (positives + hard negatives, or the doc_ids of a score file) with one or more
    teachers and write the teacher-score JSONL that distillation trains on.

    Args:
        input: hard negatives {"qid", "pos", "neg"} (as `mine` writes them) or teacher scores {"qid", "doc_ids",
            "scores"[, "pos"]} to rescore, JSONL, one line per query; the output is {"qid", "pos", "doc_ids",
            "scores"}, positives first.
        queries: the queries: a BEIR directory (its queries.jsonl) or a JSONL file.
        corpus: the documents: a BEIR directory (its corpus.jsonl) or a JSONL file; a document is title + " " + text.
        teacher: one or more KIND:NAME_OR_PATH, KIND in sparse (anything splade_lightning.load reads, e.g.
            sparse:splade-tiny), dense (sentence-transformers / HF encoder, e.g. dense:all-minilm-l6-v2), cross (HF
            sequence-classification model, one logit).
        output: the score JSONL to write (atomically).
        normalize: per-query score normalisation before averaging (default: none for one teacher, minmax for
            several).
        scale: multiplies the (averaged) scores.
        max_candidates: score only the first max_candidates candidates of each query (positives first; default: all).
        keep_teacher_scores: also write each teacher's raw scores as "teacher_scores": {"KIND:NAME": [...]}.
        device: where the teachers run: auto (CUDA when available), cpu, cuda or cuda:N.
        batch_size: texts (bi-encoders) or pairs (cross-encoders) per forward pass.
        chunk_size: queries per chunk: each distinct text of a chunk is encoded once.
        max_length: truncation length in tokens of every teacher input (default: each model's own).
        overwrite: replace an existing --output file.
        progress: show a progress bar.
    """
    args = argparse.Namespace(**locals())
    specs = _check_args(args)
    groups, queries, corpus = load_inputs(args.input, args.queries, args.corpus, args.max_candidates)
    n_pairs = sum(len(g.doc_ids) for g in groups)
    print(f"scoring {n_pairs} candidates of {len(groups)} queries with {len(specs)} teacher(s) on {args.device} "
          f"(normalize={args.normalize}, scale={args.scale:g})", flush=True)
    start = time.perf_counter()
    teachers = [load_teacher(spec, args.device, args.batch_size, args.max_length) for spec in specs]
    loaded = time.perf_counter()
    records = score_records(groups, queries, corpus, teachers, args.normalize, args.scale, args.chunk_size,
                            args.keep_teacher_scores, progress=args.progress)
    count = write_jsonl_atomic(args.output, records)
    done = time.perf_counter()
    print(f"wrote {count} queries to {args.output} (loading {loaded - start:.1f} s, scoring {done - loaded:.1f} s, "
          f"{n_pairs / max(done - loaded, 1e-9):.1f} pairs/s)", flush=True)
    return 0
