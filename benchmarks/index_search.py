"""Benchmark `index` / `search`: indexing throughput against sentence-transformers, exact vs Seismic search.

Usage::

    .venv/bin/python benchmarks/index_search.py                       # msmarco-trecdl-5k + a 1M-doc synthetic index
    .venv/bin/python benchmarks/index_search.py --docs 500 --synthetic_docs 200000   # quicker

Each measurement runs in a fresh subprocess (``--measure NAME``) and prints one JSON line; the parent prints a
Markdown table. Anchors measured in the same run: sentence-transformers 6.2 ``SparseEncoder.encode_document`` for
indexing, exact search for Seismic (latency ratio and recall@10).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "data" / "msmarco-trecdl-5k"


def _texts(n: int) -> tuple[list[str], list[str]]:
    from splade_lightning.formats.beir import _read_id_text

    corpus = _read_id_text(CORPUS / "corpus.jsonl", "doc", [])
    ids = list(corpus)[:n]
    return ids, [corpus[i] for i in ids]


def measure_st(args) -> dict:
    from sentence_transformers import SparseEncoder

    from splade_lightning.hub import alias_dir

    _, texts = _texts(args.docs)
    model = SparseEncoder(str(alias_dir("splade-tiny")), device="cpu")
    model.max_seq_length = 256
    start = time.perf_counter()
    model.encode_document(texts, batch_size=32)
    return {"docs_per_s": len(texts) / (time.perf_counter() - start)}


def measure_ours(args) -> dict:
    from splade_lightning.tools.index import main

    ids, texts = _texts(args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(ids, texts)))
        start = time.perf_counter()
        main(["--model", "splade-tiny", "--corpus", str(corpus), "--output", f"{tmp}/idx", "--max_length", "256",
              "--batch_size", "32", "--no_progress"])
        return {"docs_per_s": len(texts) / (time.perf_counter() - start)}


def _recall(exact: np.ndarray, approx: list[list[str]], ids: list[str]) -> float:
    hits = [len({ids[j] for j in row[:10]} & set(found[:10])) / min(10, len(row)) for row, found in zip(exact, approx)]
    return float(np.mean(hits))


def _search_both(index, query_ids: list[str], query_reps) -> dict:
    import torch
    from splade_lightning.indexing import seismic as sm

    from splade_lightning.retrieval.exact import exact_search

    docs = index.to_torch()
    with torch.inference_mode():
        start = time.perf_counter()
        _, exact = exact_search(query_reps, docs, 10)
        exact_ms = (time.perf_counter() - start) * 1000 / len(query_ids)
    params = sm.SeismicParams()
    start = time.perf_counter()
    engine = sm._build(sm.import_seismic(), index, params)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    run = sm.seismic_search(engine, query_ids, query_reps, 10, params)
    seismic_ms = (time.perf_counter() - start) * 1000 / len(query_ids)
    found = [sorted(run[q], key=lambda d: -run[q][d]) for q in query_ids]
    return {"exact_ms": exact_ms, "seismic_ms": seismic_ms, "seismic_build_s": build_s,
            "recall10": _recall(exact.numpy(), found, index.ids)}


def measure_search_real(args) -> dict:
    import splade_lightning
    from splade_lightning.formats.beir_files import read_queries
    from splade_lightning.formats.index_store import load_index

    queries = read_queries(CORPUS, "test")
    model = splade_lightning.load("splade-tiny")
    model.max_query_length = 48
    reps = model.encode_query(list(queries.values()))
    return _search_both(load_index(args.index_dir), list(queries), reps)


def _synthetic_rows(rng, n: int, nnz: int, vocab: int, weights: np.ndarray):
    """n random rows with about ``nnz`` distinct dimensions each, drawn from ``weights`` (vectorised)."""
    counts = np.clip(rng.poisson(nnz, n), 1, vocab)
    rows = np.repeat(np.arange(n, dtype=np.int64), counts)
    cols = np.searchsorted(np.cumsum(weights), rng.random(rows.size)).clip(0, vocab - 1)
    keys = np.unique(rows * vocab + cols)  # sorted: row-major, ascending dims, duplicates dropped
    rows, cols = keys // vocab, keys % vocab
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
    values = rng.gamma(2.0, 0.5, keys.size).astype(np.float32)
    return indptr, cols.astype(np.int32), values


def measure_search_synthetic(args) -> dict:
    import torch

    from splade_lightning.formats.index_store import StoredIndex

    rng, vocab = np.random.default_rng(0), 30522
    weights = 1.0 / np.arange(1, vocab + 1) ** 0.8  # Zipf-like dimension popularity
    weights = rng.permutation(weights / weights.sum())
    indptr, indices, values = _synthetic_rows(rng, args.synthetic_docs, 100, vocab, weights)
    index = StoredIndex([f"d{i}" for i in range(args.synthetic_docs)], indptr, indices, values, vocab, {})
    q_ptr, q_idx, q_val = _synthetic_rows(rng, args.synthetic_queries, 20, vocab, weights)
    rows = np.repeat(np.arange(args.synthetic_queries), np.diff(q_ptr))
    reps = torch.sparse_coo_tensor(torch.tensor(np.stack([rows, q_idx])), torch.tensor(q_val),
                                   (args.synthetic_queries, vocab)).coalesce()
    return _search_both(index, [f"q{i}" for i in range(args.synthetic_queries)], reps)


def _run(name: str, args) -> dict:
    cmd = [sys.executable, __file__, "--measure", name, "--docs", str(args.docs), "--index_dir", str(args.index_dir),
           "--synthetic_docs", str(args.synthetic_docs), "--synthetic_queries", str(args.synthetic_queries)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    print(f"[{name}] {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="passages encoded for the throughput comparison")
    parser.add_argument("--index_dir", default=str(REPO / "runs" / "bench_index_dl5k"),
                        help="full msmarco-trecdl-5k index (built or resumed here first)")
    parser.add_argument("--synthetic_docs", type=int, default=1_000_000)
    parser.add_argument("--synthetic_queries", type=int, default=200)
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(globals()[f"measure_{args.measure}"](args)), flush=True)
        return
    from splade_lightning.tools.index import main as index_main

    if not (Path(args.index_dir) / "index.json").is_file():
        index_main(["--model", "splade-tiny", "--corpus", str(CORPUS), "--output", args.index_dir,
                    "--max_length", "256", "--no_progress"])
    st, ours = _run("st", args), _run("ours", args)
    real, synth = _run("search_real", args), _run("search_synthetic", args)
    print(f"\n| indexing ({args.docs} msmarco-trecdl-5k passages, doc length 256) | docs/s |\n|---|---|")
    print(f"| sentence-transformers 6.2 `encode_document` (encode only) | {st['docs_per_s']:.1f} |")
    print(f"| ours `index` (whole command: model load, predict loop, shard writes) | {ours['docs_per_s']:.1f} |")
    print(f"| ratio ours / ST | **{ours['docs_per_s'] / st['docs_per_s']:.2f}x** |\n")
    print("| search | docs | exact ms/query | seismic ms/query | speed-up | seismic recall@10 vs exact | "
          "seismic build s |\n|---|---|---|---|---|---|---|")
    for name, n, r in (("msmarco-trecdl-5k", 5000, real), ("synthetic", args.synthetic_docs, synth)):
        print(f"| {name} | {n} | {r['exact_ms']:.2f} | {r['seismic_ms']:.3f} | {r['exact_ms'] / r['seismic_ms']:.0f}x "
              f"| {r['recall10']:.3f} | {r['seismic_build_s']:.1f} |")


if __name__ == "__main__":
    main()
