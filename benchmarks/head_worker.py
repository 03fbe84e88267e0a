"""The measuring side of ``benchmarks/splade_head.py``: one training step or one corpus encoding per fresh process.

    python benchmarks/head_worker.py train --impl ours --model-dir DIR --batch 32 --steps 3   # prints one JSON line

``--impl`` is ``st`` (sentence-transformers' ``SparseEncoder`` + ``SpladeLoss``), ``ours`` (``SpladeEncoder`` with the
memory-efficient head + ``SpladeModule.compute_loss``), ``plain`` (ours with the plain (B, L, V) head) or ``lir``
(lightning-ir's ``BiEncoderModule.training_step``, see ``benchmarks/lightning_ir_step.py``). How memory is measured is
in ``benchmarks/splade_head.py``'s docstring; :func:`run_worker` runs this file in a subprocess and returns its JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "data" / "hotpotqa-500" / "train.jsonl"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak resident set since the last :func:`reset_peak` (the process's whole life where that is unavailable)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_counter_slack_bytes() -> int:
    """How far two readings of the kernel's RSS counters (``statm``, ``VmHWM``) can disagree about one memory state.

    Linux keeps a process's RSS counters per CPU (``percpu_counter`` in ``mm_struct.rss_stat``, since 6.2); a
    ``/proc`` read returns their shared total, which misses each CPU's unflushed delta of up to ``max(32, 2 * CPUs)``
    pages (``percpu_counter_batch``, lib/percpu_counter.c). A difference of two readings can thus be off by twice
    that per CPU (observed: a step that adds nothing read as -8 to -48 KiB of growth); growth figures are exact only
    to this.
    """
    cpus = os.cpu_count() or 1
    return 2 * max(32, 2 * cpus) * cpus * os.sysconf("SC_PAGE_SIZE")


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (``VmHWM``; Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def no_dropout(model):
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model.train()


def training_texts(batch: int):
    records = [json.loads(line) for line in TRAIN.open()]
    records = [r for r in records if r["neg"]]
    picked = [records[i % len(records)] for i in range(batch)]
    return [r["query"] for r in picked], [r["pos"][0] for r in picked], [r["neg"][0] for r in picked]


def tokenized(tokenizer, texts, length):
    enc = tokenizer(texts, padding=True, truncation=True, max_length=length, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def concat_padded(a: dict, b: dict, pad_id: int) -> dict:
    """Two tokenized batches as one, the shorter right-padded to the longer's length."""
    import torch
    import torch.nn.functional as F

    length = max(a["input_ids"].shape[1], b["input_ids"].shape[1])
    return {key: torch.cat([F.pad(x[key], (0, length - x[key].shape[1]), value=pad_id if key == "input_ids" else 0)
                            for x in (a, b)]) for key in a}


def build_step(impl: str, model_dir: str, batch: int, query_len: int, doc_len: int, head_chunk: int = 128,
               checkpointing: bool = False, selective_recompute: bool = True, device: str = "cpu",
               bf16: bool = False, sparse_vocab_grad: bool = True, head_screen: str = "auto"):
    """Return step() -> loss float for one implementation (``checkpointing``: recompute the body in backward;
    ``selective_recompute``: ours' default recomputation of attention cores and GELU outputs; ``bf16``: the forward
    under bf16 autocast, parameters and optimiser in float32, as sentence-transformers' trainer with ``bf16=True``
    and Lightning's ``bf16-mixed``; ``sparse_vocab_grad``: ours' default row-sparse vocabulary-matrix gradients;
    ``head_screen``: ours' bf16 screen of the head's entries, ``SpladeEncoder(head_screen=...)``)."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    queries, positives, negatives = training_texts(batch)
    q, p, n = ({k: v.to(device) for k, v in tokenized(tokenizer, t, ln).items()}
               for t, ln in ((queries, query_len), (positives, doc_len), (negatives, doc_len)))
    if impl == "st":
        from sentence_transformers import SparseEncoder
        from sentence_transformers.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss

        model = no_dropout(SparseEncoder(model_dir, device=device))
        if checkpointing:  # what its trainer's gradient_checkpointing=True calls
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        loss_fn = SpladeLoss(model, SparseMultipleNegativesRankingLoss(model), document_regularizer_weight=3e-5,
                             query_regularizer_weight=5e-5)

        def forward():
            return sum(loss_fn([q, p, n], None).values())
    elif impl == "lir":
        from lightning_ir_step import build_step as lightning_ir_build_step  # this folder is on sys.path

        return lightning_ir_build_step(model_dir, queries, positives, negatives, q, p, n, no_dropout)
    else:
        from splade_lightning.models import SpladeEncoder
        from splade_lightning.systems import SpladeModule

        model = no_dropout(SpladeEncoder(model_dir, efficient_head=impl == "ours", head_chunk_tokens=head_chunk,
                                         gradient_checkpointing=checkpointing,
                                         selective_recompute=selective_recompute,
                                         sparse_vocab_grad=sparse_vocab_grad, head_screen=head_screen)).to(device)
        module = SpladeModule(model, query_reg_weight=5e-5, doc_reg_weight=3e-5).to(device)
        docs = concat_padded(p, n, tokenizer.pad_token_id)

        def forward():
            query_reps = model(q["input_ids"], q["attention_mask"])
            doc_reps = model(docs["input_ids"], docs["attention_mask"])
            return module.compute_loss(query_reps, doc_reps, num_negatives=1)["loss"]
    if impl == "st":
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, fused=True)  # the trainer's adamw_torch_fused
    else:  # our fit's default: the same fused update, from the vocabulary matrix's row-sparse gradient
        from splade_lightning.models.row_sparse_adamw import RowSparseAdamW

        optimizer = RowSparseAdamW(model.parameters(), lr=2e-5)

    def step() -> float:
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            loss = forward()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    step.model = model  # for tests
    return step


def step_args(args, batch: int) -> tuple:
    return (args.impl, args.model_dir, batch, args.query_len, args.doc_len, args.head_chunk,
            args.gradient_checkpointing, not args.no_selective_recompute, args.device, args.bf16,
            not args.dense_vocab_grad, args.head_screen)


def worker_train(args) -> dict:
    import torch

    step = build_step(*step_args(args, args.batch))
    if args.device != "cpu":
        from gpu_measure import train_on_gpu  # this folder is on sys.path

        return train_on_gpu(step, args)
    before, reset = rss_bytes(), reset_peak()
    first_loss = step()  # includes optimiser-state allocation; same for both sides
    first_peak = peak_rss_bytes()
    steady_before = rss_bytes()
    reset_peak()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    elapsed = time.perf_counter() - start
    peak = max(first_peak, peak_rss_bytes())
    timed = max(1, args.steps)  # --steps 0: the first step only (memory probes)
    return {"examples_per_s": args.batch * args.steps / elapsed if args.steps else None,
            "s_per_step": elapsed / timed if args.steps else None,
            "peak_memory_bytes": peak - before, "peak_rss_bytes": peak,
            "steady_peak_memory_bytes": peak_rss_bytes() - steady_before if args.steps and reset else None,
            "peak_reset": reset, "first_loss": first_loss, "torch_threads": torch.get_num_threads()}


def worker_encode(args) -> dict:
    import torch

    docs = [json.loads(line)["text"] for line in Path(args.corpus).open()][: args.docs]
    if args.impl == "st":
        from sentence_transformers import SparseEncoder

        model = SparseEncoder(args.model_dir, device=args.device)
        model.max_seq_length = args.doc_len
    else:
        import splade_lightning

        model = splade_lightning.load(args.model_dir, device=args.device)
        model.max_doc_length = args.doc_len
        model.encoder.head_chunk_tokens = args.head_chunk
        model.encoder.head_screen = args.head_screen

    def encode(texts):  # both sides' defaults: a sparse COO tensor
        return model.encode_document(texts, batch_size=32)
    gpu = args.device != "cpu"
    encode(docs[:32])  # warm-up
    before = torch.cuda.memory_allocated() if gpu else rss_bytes()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    else:
        reset_peak()
    start = time.perf_counter()
    out = encode(docs)
    if gpu:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if gpu else peak_rss_bytes()
    torch.save(out.to_dense()[:200].cpu().clone(), args.out)
    return {"docs_per_s": len(docs) / elapsed, "peak_memory_bytes": peak - before,
            "tokens_per_doc": sum(len(t) for t in model.tokenizer(docs[:200], truncation=True,
                                                                   max_length=args.doc_len)["input_ids"]) / 200}


def with_pythonpath(env: dict[str, str], extra_path: str | None) -> dict[str, str]:
    """``env`` with ``extra_path`` (a side's own packages, e.g. lightning-ir) first on its PYTHONPATH."""
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(x for x in (extra_path, env.get("PYTHONPATH")) if x)
    return env


def run_worker(*argv: str, extra_path: str | None = None, threads: int | None = None) -> dict:
    """One measurement in a fresh subprocess; ``extra_path`` goes first on its PYTHONPATH (a side's own packages);
    ``threads`` sets its torch threads (``OMP_NUM_THREADS``; default: this process's environment)."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env = with_pythonpath(env, extra_path)
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


TEXT_KINDS = {  # three kinds of text: web passages, encyclopedia abstracts, long scientific abstracts
    "msmarco-passages": REPO / "data" / "msmarco-trecdl-5k" / "corpus.jsonl",
    "wikipedia-abstracts": REPO / "data" / "hotpotqa-500" / "corpus.jsonl",
    "medline-abstracts": REPO / "data" / "med" / "corpus.jsonl",
}


def worker_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["train", "encode", "largest-batch"])
    parser.add_argument("--impl", choices=["st", "ours", "plain", "lir"], required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--query-len", type=int, default=32)
    parser.add_argument("--doc-len", type=int, default=128)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--out", default="")
    parser.add_argument("--corpus", default=str(TEXT_KINDS["msmarco-passages"]))
    parser.add_argument("--head-chunk", type=int, default=512, help="SpladeEncoder(head_chunk_tokens=...)")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="recompute the body in backward")
    parser.add_argument("--no-selective-recompute", action="store_true",
                        help="ours/plain: SpladeEncoder(selective_recompute=False)")
    parser.add_argument("--dense-vocab-grad", action="store_true",
                        help="ours: SpladeEncoder(sparse_vocab_grad=False), dense (V, H) gradient contributions")
    parser.add_argument("--head-screen", choices=["auto", "bf16", "off"], default="auto",
                        help="ours: SpladeEncoder(head_screen=...), the bf16 screen of the head's entries")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (GPU: allocator memory, synchronised timing)")
    parser.add_argument("--bf16", action="store_true", help="train under bf16 autocast (parameters stay float32)")
    parser.add_argument("--warmup", type=int, default=2, help="GPU: untimed steps after the first")
    parser.add_argument("--batches", default="", help="largest-batch (GPU): ascending batch sizes to try")
    parser.add_argument("--budget-gib", type=float, default=8.0, help="largest-batch (GPU): allocated-memory budget")
    args = parser.parse_args(argv)
    if args.kind == "largest-batch":
        from gpu_measure import largest_batch_on_gpu

        result = largest_batch_on_gpu(args, lambda batch: build_step(*step_args(args, batch)))
    else:
        result = worker_train(args) if args.kind == "train" else worker_encode(args)
    print(json.dumps(result))


if __name__ == "__main__":
    worker_main(sys.argv[1:])
