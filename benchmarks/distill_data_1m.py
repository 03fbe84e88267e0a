"""Benchmark: the id-based distillation data pipeline at MS MARCO-like scale, against one SPLADE-tiny training step.

    python benchmarks/distill_data_1m.py                        # 1M passages, 50k queries x 20 negatives
    python benchmarks/distill_data_1m.py --num_passages 100000 --num_queries 10000      # quick check

A synthetic BEIR corpus (random words from the BERT vocabulary, ~60 per passage), queries, hard negatives
``{qid, pos, neg: {bm25: [10 ids], dense: [10 ids]}}`` and teacher scores ``{qid, doc_ids, scores}`` are written to a
temporary directory. Each measurement then runs in a fresh subprocess:

* ``cold``: first start-up of ``RetrievalDataModule`` with an ``IdGroups`` source (builds the corpus/query Arrow
  caches and the record caches,
  validates every id, builds the dataset and the first epoch's duplicate-free batches), then batches with
  ``num_workers=0``. Resident memory (``VmRSS``) is read before building and after the batches.
* ``warm``: the same with every cache in place, with ``num_workers`` 0 and 2 (worker RSS reported separately).
* ``step``: one SPLADE-tiny training step (forward + backward + AdamW of
  ``splade_lightning.models.SpladeEncoder("splade-tiny")``, default in-batch loss + FLOPS) on a real batch of the same
  shape (32 queries, 1 positive + 7 negatives each), on the CPU, in the same run.

Batches/s are of the data pipeline alone (sampling, text reads from the memory-mapped caches, tokenisation, collation);
the ratio to the training step's steps/s says how many times faster batches are produced than a step consumes them.
Prints a Markdown table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_bytes(pid: int | str = "self", kind: str = "VmRSS") -> int:
    """Resident memory from ``/proc/<pid>/status``: ``VmRSS`` (all), ``RssAnon`` (heap: Python objects, numpy
    arrays) or ``RssFile`` (file pages mapped in, e.g. the memory-mapped caches; page cache the kernel can reclaim)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(f"{kind}:"))


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def vocabulary() -> list[str]:
    """Whole-word, alphabetic entries of the BERT-uncased vocabulary (so tokenisation costs what real text costs)."""
    from splade_lightning.hub import load_tokenizer

    return sorted(w for w in load_tokenizer("splade-tiny").get_vocab() if w.isalpha() and len(w) > 2)


def generate(root: Path, num_passages: int, num_queries: int, negatives: int, words: int, seed: int = 0) -> dict:
    """Write corpus.jsonl, queries.jsonl, hard_negatives.jsonl and teacher_scores.jsonl under ``root``."""
    rng = random.Random(seed)
    vocab = vocabulary()
    with open(root / "corpus.jsonl", "w") as f:
        for i in range(num_passages):
            text = " ".join(rng.choices(vocab, k=rng.randint(words - 15, words + 15)))
            f.write(json.dumps({"_id": f"p{i}", "title": "", "text": text}) + "\n")
    with open(root / "queries.jsonl", "w") as f:
        for q in range(num_queries):
            f.write(json.dumps({"_id": f"q{q}", "text": " ".join(rng.choices(vocab, k=rng.randint(4, 12)))}) + "\n")
    half = negatives // 2
    with open(root / "hard_negatives.jsonl", "w") as hard, open(root / "teacher_scores.jsonl", "w") as teacher:
        for q in range(num_queries):
            docs = [f"p{d}" for d in rng.sample(range(num_passages), 1 + negatives)]
            hard.write(json.dumps({"qid": f"q{q}", "pos": docs[:1], "neg": {"bm25": docs[1:1 + half],
                                                                            "dense": docs[1 + half:]}}) + "\n")
            scores = [round(rng.uniform(8, 12), 3)] + [round(rng.uniform(0, 10), 3) for _ in range(negatives)]
            teacher.write(json.dumps({"qid": f"q{q}", "doc_ids": docs, "scores": scores}) + "\n")
    return {name: str(root / f"{name}.jsonl") for name in ("corpus", "queries", "hard_negatives", "teacher_scores")}


def data_module(files: dict, cache_dir: str, workers: int, batch_size: int, num_negatives: int, max_doc_length: int):
    from splade_lightning.data import IdGroups, RetrievalDataModule
    from splade_lightning.hub import alias_dir

    source = IdGroups(corpus=files["corpus"], queries=files["queries"], hard_negatives=[files["hard_negatives"]],
                      teacher_scores=[files["teacher_scores"]], num_negatives=num_negatives, cache_dir=cache_dir)
    return RetrievalDataModule(source, batch_size=batch_size, num_workers=workers,
                               tokenizer=str(alias_dir("splade-tiny")), max_query_length=32,
                               max_doc_length=max_doc_length)


def worker_pipeline(args) -> dict:
    import datasets  # noqa: F401  (imports before the first RSS reading and timings: only data counts)
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from splade_lightning.data import RetrievalDataModule  # noqa: F401  (imports lightning)
    from splade_lightning.data.ids.records import read_hard_negatives, read_teacher_scores
    from splade_lightning.data.ids.text_store import TextStore

    files = json.loads(args.files)
    before, anon_before = rss_bytes(), rss_bytes(kind="RssAnon")
    timings = {}
    start = time.perf_counter()
    if args.phase == "cold":  # the same work setup() does, timed piece by piece
        corpus = TextStore(files["corpus"], args.cache_dir)
        timings["corpus_store_s"] = time.perf_counter() - start
        queries = TextStore(files["queries"], args.cache_dir, require_text=True)
        mark = time.perf_counter()
        read_hard_negatives([files["hard_negatives"]], corpus, queries, args.cache_dir)
        read_teacher_scores([files["teacher_scores"]], corpus, queries, args.cache_dir)
        timings["records_s"] = time.perf_counter() - mark
    dm = data_module(files, args.cache_dir, args.workers, args.batch_size, args.num_negatives, args.max_doc_length)
    dm.setup("fit")
    timings["startup_s"] = time.perf_counter() - start
    after_setup = rss_bytes()
    iterator = iter(dm.train_dataloader())
    for _ in range(args.warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(args.batches):
        batch = next(iterator)
    elapsed = time.perf_counter() - start
    workers = [rss_bytes(w.pid) for w in getattr(iterator, "_workers", [])]
    assert batch.teacher_scores.shape == (args.batch_size, 1 + args.num_negatives)
    return {**timings, "batches_per_s": args.batches / elapsed, "rss_before_bytes": before,
            "rss_growth_setup_bytes": after_setup - before, "rss_growth_bytes": rss_bytes() - before,
            "anon_rss_growth_bytes": rss_bytes(kind="RssAnon") - anon_before,
            "peak_rss_growth_bytes": peak_rss_bytes() - before, "worker_rss_bytes": workers,
            "train_groups": len(dm.train_dataset), "doc_tokens": int(batch.doc_attention_mask.sum())}


def worker_step(args) -> dict:
    import torch

    from splade_lightning.models import SpladeEncoder
    from splade_lightning.systems import SpladeModule

    files = json.loads(args.files)
    dm = data_module(files, args.cache_dir, 0, args.batch_size, args.num_negatives, args.max_doc_length)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    encoder = SpladeEncoder("splade-tiny")
    module = SpladeModule(encoder)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=2e-5)

    def step() -> None:
        query = encoder(batch.query_input_ids, batch.query_attention_mask)
        docs = encoder(batch.doc_input_ids, batch.doc_attention_mask)
        module.compute_loss(query, docs, batch.num_negatives)["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up (optimizer state)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    elapsed = time.perf_counter() - start
    return {"s_per_step": elapsed / args.steps, "doc_shape": list(batch.doc_input_ids.shape),
            "torch_threads": torch.get_num_threads()}


def run_worker(kind: str, args, **extra) -> dict:
    argv = [sys.executable, __file__, "--worker", kind, "--files", args.files, "--cache_dir", args.cache_dir]
    for key in ("batch_size", "num_negatives", "max_doc_length", "batches", "warmup", "steps"):
        argv += [f"--{key}", str(getattr(args, key))]
    for key, value in extra.items():
        argv += [f"--{key}", str(value)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} {extra} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {kind} {extra}: {result}", flush=True)
    return result


def table(summary: dict, args) -> str:
    gib = 2**30
    cold, warm0, warm2, step = (summary[k] for k in ("cold", "warm_0", "warm_2", "step"))
    steps_per_s = 1 / step["s_per_step"]
    rows = [
        ("first start-up: corpus TextStore build", f"{cold['corpus_store_s']:.1f} s"),
        ("first start-up: hard-negative + teacher records (parse, resolve, validate, cache)",
         f"{cold['records_s']:.1f} s"),
        ("first start-up total (`setup('fit')` incl. dataset + first epoch's batches)", f"{cold['startup_s']:.1f} s"),
        ("cached start-up (`setup('fit')`)", f"{warm0['startup_s']:.2f} s"),
        ("data pipeline, num_workers=0", f"{warm0['batches_per_s']:.1f} batches/s"),
        ("data pipeline, num_workers=2", f"{warm2['batches_per_s']:.1f} batches/s"),
        ("RSS growth, before building -> after start-up (cold)", f"{cold['rss_growth_setup_bytes'] / gib:.2f} GiB"),
        (f"RSS growth, before building -> after {args.batches} batches (cold)",
         f"{cold['rss_growth_bytes'] / gib:.2f} GiB"),
        ("... of which anonymous memory (heap; the rest is mapped cache pages)",
         f"{cold['anon_rss_growth_bytes'] / gib:.2f} GiB"),
        ("peak RSS growth (cold)", f"{cold['peak_rss_growth_bytes'] / gib:.2f} GiB"),
        ("RSS of each DataLoader worker (num_workers=2, shared pages counted in each)",
         ", ".join(f"{w / gib:.2f} GiB" for w in warm2["worker_rss_bytes"])),
        (f"SPLADE-tiny train step, docs {step['doc_shape']}, {step['torch_threads']} threads",
         f"{step['s_per_step']:.2f} s/step = {steps_per_s:.2f} steps/s"),
        ("batches/s ÷ steps/s (num_workers=0)", f"**{warm0['batches_per_s'] / steps_per_s:.0f}×**"),
        ("batches/s ÷ steps/s (num_workers=2)", f"**{warm2['batches_per_s'] / steps_per_s:.0f}×**"),
    ]
    head = (f"{args.num_passages:,} passages, {args.num_queries:,} queries x {args.negatives} negatives (+ teacher "
            f"scores); batch {args.batch_size} x (1 + {args.num_negatives}) docs, doc length <= {args.max_doc_length}")
    return "\n".join([head, "", "| measurement | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num_passages", type=int, default=1_000_000)
    parser.add_argument("--num_queries", type=int, default=50_000)
    parser.add_argument("--negatives", type=int, default=20, help="hard negatives per query in the files")
    parser.add_argument("--words", type=int, default=60, help="mean words per passage")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_negatives", type=int, default=7, help="negatives per example")
    parser.add_argument("--max_doc_length", type=int, default=128)
    parser.add_argument("--batches", type=int, default=200, help="timed batches per pipeline measurement")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=3, help="timed SPLADE-tiny training steps")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="distill_bench_") as tmp:
        start = time.perf_counter()
        files = generate(Path(tmp), args.num_passages, args.num_queries, args.negatives, args.words)
        sizes = {k: Path(v).stat().st_size for k, v in files.items()}
        print(f"# generated in {time.perf_counter() - start:.0f} s: {sizes}", flush=True)
        args.files, args.cache_dir = json.dumps(files), str(Path(tmp) / "cache")
        summary = {"machine": f"{os.cpu_count()} CPU cores", "args": {k: v for k, v in vars(args).items()
                                                                     if k not in ("files", "cache_dir")}}
        summary["cold"] = run_worker("pipeline", args, phase="cold", workers=0)
        summary["warm_0"] = run_worker("pipeline", args, phase="warm", workers=0)
        summary["warm_2"] = run_worker("pipeline", args, phase="warm", workers=2)
        summary["step"] = run_worker("step", args)
        summary["cache_bytes"] = sum(p.stat().st_size for p in Path(args.cache_dir).rglob("*") if p.is_file())
    print(table(summary, args))
    print(f"\ncache on disk: {summary['cache_bytes'] / 2**20:.0f} MiB")
    print(json.dumps(summary))


def worker_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["pipeline", "step"])
    parser.add_argument("--files", required=True)
    parser.add_argument("--cache_dir", required=True)
    parser.add_argument("--phase", choices=["cold", "warm"], default="warm")
    parser.add_argument("--workers", type=int, default=0)
    for key in ("batch_size", "num_negatives", "max_doc_length", "batches", "warmup", "steps"):
        parser.add_argument(f"--{key}", type=int, required=True)
    args = parser.parse_args(argv)
    result = worker_pipeline(args) if args.kind == "pipeline" else worker_step(args)
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        main()
