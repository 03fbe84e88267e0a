"""Benchmark on a CUDA GPU: our SPLADE training step (bf16 autocast) and encoding vs sentence-transformers 6.x.

    python benchmarks/gpu_bf16.py                 # on a machine with a CUDA GPU, ~4 min on one H200
    python benchmarks/gpu_bf16.py --smoke --device cpu   # the same flow on tiny shapes (checks the harness only)

The GPU counterpart of ``benchmarks/splade_head.py`` (same worker, ``benchmarks/head_worker.py``, one fresh process
per measurement, identical weights, tokens and optimiser on both sides; dropout off):

- **Training step, BERT-base-shaped** (12 layers, hidden 768, vocab 30522, randomly initialised; SPLADE-tiny's
  tokenizer), B = 64 triplets, query 32 / document 256 tokens, 1 hard negative, under bf16 autocast with float32
  parameters and fused AdamW, which is what sentence-transformers' trainer does with ``bf16=True`` (transformers'
  ``Trainer`` runs the loss under ``torch.autocast``) and what ``--trainer.precision=bf16-mixed`` does in ours. Two
  regimes: sparse (the decoder bias shifted so documents get ~150 active terms, as a trained SPLADE model) and dense
  (the untrained head: nearly every term active). Sides: sentence-transformers (``SparseEncoder`` +
  ``SpladeLoss(SparseMultipleNegativesRankingLoss)``), ours (``SpladeEncoder``, efficient head), ours with the plain
  (B, L, V) head.
- **V = 250,002** (multilingual-sized vocabulary, 6 layers, hidden 384, sparse regime), B = 32, query 32 /
  document 128: the same step, and the largest batch whose step (model, gradients, optimiser state, activations)
  peaks within 8 GiB of allocated GPU memory on each side.
- **Encoding**, BERT-base-shaped (sparse regime), 2,000 MS MARCO passages at 256 tokens, batch 32, float32 on both
  sides (both libraries' default ``encode_document``, sparse COO output); the largest absolute difference is reported.

Memory is the CUDA caching allocator's peak (``torch.cuda.max_memory_allocated``: tensors; the CUDA context and the
allocator's cached-but-free blocks are not counted) minus what was allocated before the first step; timing is
synchronised, after the first step and ``--warmup`` more. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from head_worker import TEXT_KINDS, run_worker  # this folder is on sys.path
from splade_head import compare_train, ratio, shaped_mlm

# An extra side: ours with larger head chunks (fewer, larger matmuls; a GPU has the memory for them).
LARGE_CHUNKS = ("ours_chunk8192", "ours", ("--head-chunk", "8192"))


def train(model_dir: str, impls: tuple[str, ...], batch: int, query_len: int, doc_len: int, args,
          extra_sides=()) -> dict:
    common = ("--query-len", str(query_len), "--doc-len", str(doc_len), "--warmup", str(args.warmup), "--device",
              args.device, "--head-chunk", str(args.head_chunk), *(["--bf16"] if args.device != "cpu" else []))
    out = compare_train(model_dir, batch, args.steps, impls, extra_sides, common)
    for name in list(out)[1:]:
        out[f"{name}_speedup"] = ratio(out[name], out["st"], "examples_per_s")
        out[f"{name}_peak_memory_ratio"] = ratio(out[name], out["st"], "peak_memory_bytes")
    return out


def largest_batches(model_dir: str, args) -> dict:
    """Largest batch within ``--budget-gib`` on each side; ours is tried at multiples of sentence-transformers'."""
    common = ("--model-dir", model_dir, "--query-len", "32", "--doc-len", "128", "--device", args.device, "--bf16",
              "--budget-gib", str(args.budget_gib), "--head-chunk", str(args.head_chunk))
    st = run_worker("largest-batch", "--impl", "st", "--batches", "1,2,4,6,8,12,16,24,32,48,64,96,128", *common)
    print(f"  largest batch st: {st}", flush=True)
    base = max(1, st.get("largest_batch", 0))
    ours = run_worker("largest-batch", "--impl", "ours", "--batches",
                      ",".join(str(times * base) for times in (10, 25, 50, 75, 100, 150)), *common)
    print(f"  largest batch ours: {ours}", flush=True)
    return {"st": st, "ours": ours, "max_batch_ratio": ours["largest_batch"] / st["largest_batch"]
            if st.get("largest_batch") and ours.get("largest_batch") is not None else None}


def encode(model_dir: str, docs: int, tmp: Path, device: str) -> dict:
    import torch

    out = {}
    for impl in ("st", "ours"):
        out[impl] = run_worker("encode", "--impl", impl, "--model-dir", model_dir, "--docs", str(docs), "--doc-len",
                               "256", "--corpus", str(TEXT_KINDS["msmarco-passages"]), "--device", device,
                               "--out", str(tmp / f"{impl}.pt"))
        print(f"  encode {impl:5s}: {out[impl]}", flush=True)
    out["max_abs_diff"] = float((torch.load(tmp / "st.pt") - torch.load(tmp / "ours.pt")).abs().max())
    out["speedup"] = ratio(out["ours"], out["st"], "docs_per_s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    parser.add_argument("--head-chunk", type=int, default=512, help="SpladeEncoder(head_chunk_tokens=...)")
    parser.add_argument("--budget-gib", type=float, default=8.0)
    parser.add_argument("--encode-docs", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes and batches: checks the flow, measures "
                                                             "nothing worth reporting")
    args = parser.parse_args()
    import torch

    if args.device != "cpu" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda: no CUDA GPU on this machine; this benchmark is for GPU machines "
                         "(use benchmarks/splade_head.py on a CPU)")
    layers, hidden, batch, v250k = (2, 64, 4, (2, 64)) if args.smoke else (12, 768, 64, (6, 384))
    summary: dict = {"device": torch.cuda.get_device_name() if args.device != "cpu" else "cpu",
                     "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shape = f"{layers} layers, hidden {hidden}, vocab 30522"
        for regime, target in (("sparse", 150), ("dense", None)):
            print(f"# BERT-base-shaped MLM ({shape}), {regime} head, B={batch}, q 32 / d 256, bf16", flush=True)
            model = shaped_mlm(tmp / f"bert_{regime}", layers, hidden, target_doc_active_dims=target,
                               heads=hidden // 64)  # BERT-base: 12 heads of 64
            summary[f"bert_base_{regime}"] = train(model, ("st", "ours", "plain") if regime == "sparse"
                                                   else ("st", "ours"), batch, 32, 256, args, [LARGE_CHUNKS])
        print(f"# Encoding, BERT-base-shaped (sparse), {args.encode_docs} MS MARCO passages, 256 tokens, float32",
              flush=True)
        summary["encode"] = encode(str(tmp / "bert_sparse"), args.encode_docs, tmp, args.device)
        print(f"# V = 250,002, {v250k[0]} layers, hidden {v250k[1]}, sparse head, B=32, q 32 / d 128, bf16",
              flush=True)
        big = shaped_mlm(tmp / "v250k", *v250k, 250_002, target_doc_active_dims=150)
        summary["v250k"] = train(big, ("st", "ours"), 8 if args.smoke else 32, 32, 128, args)
        if args.device != "cpu":
            print(f"# V = 250,002: largest batch within {args.budget_gib:g} GiB (allocated GPU memory)", flush=True)
            summary["v250k"]["largest_batch"] = largest_batches(big, args)
    sparse, dense, big = summary["bert_base_sparse"], summary["bert_base_dense"], summary["v250k"]
    summary.update(gpu_train_speedup=sparse["ours_speedup"],
                   gpu_train_peak_memory_ratio=sparse["ours_peak_memory_ratio"],
                   gpu_plain_head_speedup=sparse["plain_speedup"], gpu_dense_train_speedup=dense["ours_speedup"],
                   gpu_dense_peak_memory_ratio=dense["ours_peak_memory_ratio"],
                   gpu_v250k_train_speedup=big["ours_speedup"],
                   gpu_v250k_peak_memory_ratio=big["ours_peak_memory_ratio"],
                   gpu_v250k_max_batch_ratio=big.get("largest_batch", {}).get("max_batch_ratio"),
                   gpu_encode_speedup=summary["encode"]["speedup"],
                   gpu_max_abs_diff=summary["encode"]["max_abs_diff"])
    print(json.dumps(summary, default=float))


if __name__ == "__main__":
    main()
