"""Benchmark: a whole quickstart training run through our ``fit`` vs sentence-transformers 6.2, same model and data.

    python benchmarks/fit_vs_st.py                                  # 3 seeds, the full recipe (~20 min on 2 cores)
    python benchmarks/fit_vs_st.py --seeds 42 --max-steps 2 --threads 1 --max-eval-queries 10   # smoke test (~4 min)

sentence-transformers' trainer needs ``accelerate`` (``pip install -e ".[bench]"``); to keep it out of the venv, install
it in a folder of its own (``pip install --no-deps --target DIR accelerate``) and add ``--st-pythonpath DIR`` (only the
ST child sees it). With ``--lir-pythonpath DIR`` (lightning-ir and the transformers 4.x it needs, installed there as
``benchmarks/lightning_ir_step.py`` says), the run ends with lightning-ir's SPLADE training step against ours on the
same model, batch and tokens; without lightning-ir it says why and skips that step.

Both sides fine-tune SPLADE-tiny (``splade_lightning.hub.alias_dir("splade-tiny")``) on the same triplets with the
hyper-parameters of ``configs/splade/quickstart.yaml``, read from that file:

* **ours**: ``python -m splade_lightning fit --config configs/splade/quickstart.yaml --seed_everything S
  --data.init_args.seed S``, without its validations (``--eval_before_fit=false --trainer.limit_val_batches=0``) and
  with every output under ``--out``. Its shipped callbacks (step checkpoints, sparsity monitor) stay on.
* **sentence-transformers**: ``SparseEncoder(<splade-tiny dir>)`` + ``SparseEncoderTrainer`` with
  ``SpladeLoss(SparseMultipleNegativesRankingLoss(), query_regularizer_weight=λ_q, document_regularizer_weight=λ_d)``
  and a ``SpladeRegularizerWeightSchedulerCallback(quadratic, warmup_ratio=<RegularizerWarmup.warmup_fraction>)``
  (ST's default would use 1/3, ours uses 0.33). Matched: batch size, lr, weight decay, linear lr schedule with
  ``round(lr_warmup_fraction × steps)`` warm-up steps, epochs (or ``--max-steps``), seed, NO_DUPLICATES batches,
  ``dataloader_drop_last``, fp32, no gradient clipping (``max_grad_norm=0``: Lightning clips nothing by default),
  fused AdamW (ST's default ``optim``, ``adamw_torch_fused`` with torch >= 2.8, and our ``fit``'s), no evaluation,
  nothing saved but the final model (``save_strategy="no"``).
  ST defaults kept: AdamW betas/eps, dot-product similarity with scale 1, max/ReLU SPLADE pooling.
  The rows are our data module's: ``TrainDataset`` (``TextTriplets``, ``num_negatives: 1``, ``sampling: random``)
  with seed S, epoch 0: one (query, positive, negative) per record that has a negative.
* **Not matched**: ST has one ``max_seq_length`` for queries and documents, so its queries are cut at the document
  length (128) instead of 48 (1 of the 400 training queries is longer than 48 tokens: 50); ST reuses the epoch-0
  rows every epoch where ours re-draws the positive and negative; the batch order differs (another RNG); our lr
  warm-up factor is (step + 1) / (warm-up + 1), HF's step / warm-up; ours also writes its step checkpoints.

Each side runs in its own subprocess; wall time is from its start to its exit (model saved), peak memory is the
child's own peak RSS (``os.wait4``). Both saved models are then scored by the same evaluator, ``splade-lightning
evaluate`` (queries 512 / documents 256 tokens, as the quickstart validates), on hotpotqa-dev and msmarco-trecdl-5k.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning_ir_step  # this folder is on sys.path when the script runs
import yaml
from head_worker import with_pythonpath

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "splade" / "quickstart.yaml"
SETS = [{"path": str(REPO / "data" / "hotpotqa-500"), "split": "dev", "name": "hotpotqa-dev"},
        {"path": str(REPO / "data" / "msmarco-trecdl-5k"), "split": "test", "name": "msmarco-trecdl-5k",
         "min_relevance": 2}]
SIDES = ("ours", "st")


def recipe() -> dict:
    """The quickstart's hyper-parameters, read from its config file."""
    cfg = yaml.safe_load(CONFIG.read_text())
    model, data = cfg["model"]["init_args"], cfg["data"]["init_args"]
    train = data["train"]["init_args"]
    warmup = next(c["init_args"] for c in cfg["trainer"]["callbacks"] if c["class_path"].endswith("RegularizerWarmup"))
    return {"files": [str(REPO / f) for f in train["files"]], "query_column": train["query_column"],
            "positive_column": train["positive_column"], "negative_columns": train["negative_columns"],
            "num_negatives": train["num_negatives"], "sampling": train["sampling"], "batch_size": data["batch_size"],
            "max_query_length": data["max_query_length"], "max_doc_length": data["max_doc_length"],
            "eval_max_query_length": data["eval_max_query_length"], "eval_max_doc_length": data["eval_max_doc_length"],
            "lr": model["lr"], "weight_decay": model["weight_decay"], "lr_warmup_fraction": model["lr_warmup_fraction"],
            "query_reg_weight": model["query_reg_weight"], "doc_reg_weight": model["doc_reg_weight"],
            "reg_warmup_fraction": warmup["warmup_fraction"], "reg_warmup_shape": warmup["shape"],
            "max_epochs": cfg["trainer"]["max_epochs"]}


def training_rows(seed: int, r: dict) -> list[tuple[str, ...]]:
    """(query, positive, negative) rows as our data module draws them in epoch 0 with ``seed``."""
    from splade_lightning.data.text.dataset import TrainDataset
    from splade_lightning.data.text.records import read_train_records

    records = read_train_records(r["files"], r["query_column"], r["positive_column"], r["negative_columns"])
    dataset = TrainDataset(records, r["num_negatives"], r["sampling"], seed)
    return [dataset.texts(i, epoch=0) for i in range(len(dataset))]


def child_env(threads: int, extra_path: str | None = None) -> dict[str, str]:
    """The environment of a child: ``threads`` torch threads, offline hub, ``extra_path`` first on PYTHONPATH."""
    return with_pythonpath({**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                            "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}, extra_path)


def run_child(argv: list[str], log: Path, threads: int, extra_path: str | None = None) -> dict:
    """Run ``argv`` with ``threads`` torch threads; wall time and the child's own peak RSS (``wait4``).

    Raises:
        RuntimeError: the child failed (the end of its log is in the message).
    """
    env = child_env(threads, extra_path)
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {proc.returncode} (log {log}):\n" + "\n".join(tail))
    return {"wall_s": wall, "peak_rss_bytes": usage.ru_maxrss * 1024}


def train_ours(run_dir: Path, seed: int, args: argparse.Namespace) -> dict:
    """Our ``fit`` on the quickstart config, validations off, every output under ``run_dir``."""
    argv = [sys.executable, "-m", "splade_lightning", "fit", "--config", str(CONFIG), "--seed_everything", str(seed),
            "--data.init_args.seed", str(seed), "--eval_before_fit=false", "--trainer.limit_val_batches=0",
            "--trainer.default_root_dir", str(run_dir), "--trainer.logger.init_args.save_dir", str(run_dir),
            "--export_dir", str(run_dir / "model")]
    if args.max_steps:
        argv += ["--trainer.max_steps", str(args.max_steps)]
    return run_child(argv, run_dir / "train.log", args.threads)


def train_st(run_dir: Path, seed: int, args: argparse.Namespace) -> dict:
    """sentence-transformers in a fresh subprocess (this file with ``--worker-st``)."""
    argv = [sys.executable, __file__, "--worker-st", str(run_dir), "--seeds", str(seed), "--threads", str(args.threads),
            "--max-steps", str(args.max_steps or 0)]
    return run_child(argv, run_dir / "train.log", args.threads, args.st_pythonpath)


def st_problem(extra_path: str | None) -> str | None:
    """Why the sentence-transformers child cannot train (its trainer needs ``accelerate``), or ``None``."""
    check = "import accelerate, sentence_transformers; print(accelerate.__version__)"
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=child_env(1, extra_path))
    if proc.returncode == 0:
        return None
    return ("sentence-transformers' trainer needs accelerate>=1.1.0, which this environment lacks; install it, or "
            "put it in a folder of its own (pip install --no-deps --target DIR accelerate) and pass "
            "--st-pythonpath DIR")


def lightning_ir_problem(extra_path: str | None) -> str | None:
    """Why lightning-ir's training step cannot run (it is not importable with ``extra_path``), or ``None``."""
    proc = subprocess.run([sys.executable, "-c", "import lightning_ir"], capture_output=True, text=True,
                          env=child_env(1, extra_path))
    if proc.returncode == 0:
        return None
    return ("lightning-ir is not importable (install it beside the venv: `pip install --no-deps --target DIR "
            "lightning-ir ir_datasets sentencepiece 'transformers<5' 'tokenizers<0.23' 'huggingface_hub<1'`, and "
            "give --lir-pythonpath DIR): " + (proc.stderr.strip().splitlines() or ["?"])[-1])


def st_worker(run_dir: Path, seed: int, threads: int, max_steps: int) -> None:
    """Train with ``SparseEncoderTrainer`` and save the final model to ``run_dir/model`` (runs in the child)."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SparseEncoder, SparseEncoderTrainer, SparseEncoderTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sparse_encoder.callbacks.splade_callbacks import SpladeRegularizerWeightSchedulerCallback
    from sentence_transformers.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss

    from splade_lightning.hub import alias_dir

    torch.set_num_threads(threads)
    r = recipe()
    rows = training_rows(seed, r)
    steps = max_steps or r["max_epochs"] * (len(rows) // r["batch_size"])
    dataset = Dataset.from_dict({name: [row[i] for row in rows] for i, name in enumerate(("query", "positive",
                                                                                          "negative"))})
    model = SparseEncoder(str(alias_dir("splade-tiny")))
    model.max_seq_length = r["max_doc_length"]  # one length for queries and documents in ST
    loss = SpladeLoss(model, SparseMultipleNegativesRankingLoss(model), query_regularizer_weight=r["query_reg_weight"],
                      document_regularizer_weight=r["doc_reg_weight"])
    training_args = SparseEncoderTrainingArguments(
        output_dir=str(run_dir / "trainer"), per_device_train_batch_size=r["batch_size"], learning_rate=r["lr"],
        weight_decay=r["weight_decay"], lr_scheduler_type="linear", warmup_steps=round(r["lr_warmup_fraction"] * steps),
        num_train_epochs=r["max_epochs"], max_steps=max_steps or -1, seed=seed, data_seed=seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES, dataloader_drop_last=True, dataloader_num_workers=0,
        max_grad_norm=0.0, eval_strategy="no", save_strategy="no", logging_steps=4,
        report_to="none", disable_tqdm=True, fp16=False, bf16=False)
    scheduler = SpladeRegularizerWeightSchedulerCallback(loss, scheduler_type=r["reg_warmup_shape"],
                                                         warmup_ratio=r["reg_warmup_fraction"])
    trainer = SparseEncoderTrainer(model=model, args=training_args, train_dataset=dataset, loss=loss,
                                   callbacks=[scheduler])
    trainer.train()
    model.save_pretrained(str(run_dir / "model"))
    print(json.dumps({"steps": trainer.state.global_step, "rows": len(rows)}))


def evaluate(model_dir: Path, run_dir: Path, args: argparse.Namespace, r: dict) -> dict[str, float]:
    """nDCG@10 per set of ``model_dir`` through ``splade-lightning evaluate`` (same lengths for both sides)."""
    sets = [{**s, "max_queries": args.max_eval_queries} if args.max_eval_queries else s for s in SETS]
    suite = run_dir / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "fit_vs_st", "sets": sets}))
    output = run_dir / "eval.json"
    run_child([sys.executable, "-m", "splade_lightning", "evaluate", "--model", str(model_dir), "--suite", str(suite),
               "--max_query_length", str(r["eval_max_query_length"]), "--max_doc_length", str(r["eval_max_doc_length"]),
               "--measures", "ndcg@10", "--progress=false", "--output", str(output)], run_dir / "eval.log",
              args.threads)
    return {name: row["ndcg@10"] for name, row in json.loads(output.read_text())["datasets"].items()}


def make_out(path: str | None) -> Path:
    """A fresh output directory; an existing non-empty ``--out`` is refused (exit 2), never touched."""
    if path is None:
        return Path(tempfile.mkdtemp(prefix="fit_vs_st_"))
    out = Path(path)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        print(f"--out {out}: exists and is not an empty directory; give a new path (nothing was written)",
              file=sys.stderr)
        sys.exit(2)
    out.mkdir(parents=True, exist_ok=True)
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def print_tables(results: dict) -> None:
    """Per-seed rows, then mean ± std over seeds per side."""
    print("| side | seed | wall s | peak RSS GiB | nDCG@10 hotpotqa-dev | nDCG@10 msmarco-trecdl-5k |")
    print("|---|---|---|---|---|---|")
    for side in SIDES:
        for seed, m in results[side].items():
            print(f"| {side} | {seed} | {m['wall_s']:.1f} | {m['peak_rss_bytes'] / 2**30:.2f} | "
                  f"{m['hotpotqa-dev']:.4f} | {m['msmarco-trecdl-5k']:.4f} |")
    print("\n| side | wall s | peak RSS GiB | nDCG@10 hotpotqa-dev | nDCG@10 msmarco-trecdl-5k |")
    print("|---|---|---|---|---|")
    for side in SIDES:
        cells = []
        for key, scale, fmt in (("wall_s", 1, ".1f"), ("peak_rss_bytes", 2**30, ".2f"), ("hotpotqa-dev", 1, ".4f"),
                                ("msmarco-trecdl-5k", 1, ".4f")):
            mean, std = mean_std([m[key] / scale for m in results[side].values()])
            cells.append(f"{mean:{fmt}} ± {std:{fmt}}")
        print(f"| {side} | " + " | ".join(cells) + " |")


def summary(results: dict) -> dict:
    """The final JSON object (ratios of the means over seeds, plus the raw per-seed numbers)."""
    def mean(side, key):
        return mean_std([m[key] for m in results[side].values()])

    return {"wall_speedup": mean("st", "wall_s")[0] / mean("ours", "wall_s")[0],
            "peak_memory_ratio": mean("ours", "peak_rss_bytes")[0] / mean("st", "peak_rss_bytes")[0],
            "ndcg_at_10_ours": mean("ours", "hotpotqa-dev")[0], "ndcg_at_10_st": mean("st", "hotpotqa-dev")[0],
            "ndcg_at_10_seed_std": max(mean("ours", "hotpotqa-dev")[1], mean("st", "hotpotqa-dev")[1]),
            "msmarco_ndcg_at_10_ours": mean("ours", "msmarco-trecdl-5k")[0],
            "msmarco_ndcg_at_10_st": mean("st", "msmarco-trecdl-5k")[0], "per_seed": results}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--max-steps", type=int, default=None, help="override the step count on both sides (smoke)")
    parser.add_argument("--out", default=None, help="new or empty output directory (default: a fresh temp dir)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every child process")
    parser.add_argument("--max-eval-queries", type=int, default=None,
                        help="evaluate on this many queries per set (and a proportional corpus): smoke tests only")
    parser.add_argument("--st-pythonpath", default=None,
                        help="prepended to PYTHONPATH of the sentence-transformers child only (e.g. for accelerate)")
    parser.add_argument("--lir-pythonpath", default=None,
                        help="prepended to PYTHONPATH of the lightning-ir step's child only (where lightning-ir is)")
    parser.add_argument("--lir-steps", type=int, default=3, help="timed lightning-ir / ours training steps")
    parser.add_argument("--skip-lightning-ir", action="store_true", help="do not run lightning-ir's training step")
    parser.add_argument("--worker-st", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.worker_st:
        st_worker(Path(args.worker_st), args.seeds[0], args.threads, args.max_steps or 0)
        return
    problem = st_problem(args.st_pythonpath)
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(2)
    lir_problem = None if args.skip_lightning_ir else lightning_ir_problem(args.lir_pythonpath)
    out, r = make_out(args.out), recipe()
    print(f"# output: {out}", flush=True)
    if lir_problem:
        print(f"# lightning-ir step skipped: {lir_problem}", flush=True)
    results: dict = {side: {} for side in SIDES}
    for seed in args.seeds:
        for side, train in (("ours", train_ours), ("st", train_st)):
            run_dir = out / f"{side}-seed{seed}"
            run_dir.mkdir()
            measured = train(run_dir, seed, args)
            measured.update(evaluate(run_dir / "model", run_dir, args, r))
            results[side][seed] = measured
            print(f"# {side} seed {seed}: {json.dumps(measured)}", flush=True)
    print_tables(results)  # before the lightning-ir step, so that a failing step cannot lose the seeds' results
    steps = None
    if not args.skip_lightning_ir and not lir_problem:
        steps = lightning_ir_step.run_steps(r, args)
        lightning_ir_step.print_table(steps)
    print(json.dumps({**summary(results), **lightning_ir_step.summary(steps)}))


if __name__ == "__main__":
    main()
