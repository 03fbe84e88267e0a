"""Benchmark: our SPLADE train step and corpus encoding vs sentence-transformers 6.x, same machine, same run.

    python benchmarks/splade_head.py            # full comparison (~50 min on 2 CPU cores)
    python benchmarks/splade_head.py --quick    # SPLADE-tiny only: training step and encoding, no batch search
    python benchmarks/splade_head.py --checkpointing-only  # V = 250k (6 x 384) batch search, gradient checkpointing
    python benchmarks/splade_head.py --v250k-only  # V = 250k steps and batch searches, ours also with dense grads

Both sides get identical model weights, token tensors, batch, lengths and optimiser update: fused AdamW, lr 2e-5,
which is sentence-transformers' trainer default (``SparseEncoderTrainingArguments`` inherits transformers' ``optim``
default, ``adamw_torch_fused`` with torch >= 2.8; transformers 5.x ``training_args.py``). Ours runs it as our ``fit``
does, through ``RowSparseAdamW`` (``models/row_sparse_adamw.py``: torch's fused kernel, bit for bit the same update,
taking the vocabulary matrix's row-sparse gradient without a dense (V, H) copy). Ours is ``SpladeEncoder`` +
``SpladeModule.compute_loss``; sentence-transformers is ``SparseEncoder`` +
``SpladeLoss(SparseMultipleNegativesRankingLoss)``. Dropout is off on both sides so the losses are comparable. Each
measurement runs in a fresh subprocess (``benchmarks/head_worker.py``). "Peak memory" is the growth of the process's
resident set during the measured steps: the peak (``VmHWM``, reset through ``/proc/self/clear_refs`` just before the
steps, so that loading the model does not count) minus the RSS before them. ``peak_memory_bytes`` starts before the
first step, so it includes the optimiser state and gradients allocated there (the same on both sides);
``steady_peak_memory_bytes`` starts after it (what each further step needs on top of the model and optimiser state).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from head_worker import TEXT_KINDS, run_worker, tokenized, training_texts  # this folder is on sys.path


def shaped_mlm(directory: Path, layers: int = 6, hidden: int = 384, vocab: int = 30522,
               target_doc_active_dims: int | None = None, heads: int | None = None) -> str:
    """A randomly initialised BertForMaskedLM (MiniLM-L6-shaped by default: 6 layers, hidden 384, vocab 30522, 12
    heads; ``heads`` defaults to hidden / 32).

    A random MLM head is dense: nearly every vocabulary entry is active for every text, the worst case for a
    sparse backward. With ``target_doc_active_dims`` the decoder bias is shifted by one constant so that training
    documents get about that many active dimensions, the sparsity of a trained SPLADE model. The tokenizer is
    SPLADE-tiny's (its ids are a subset of any larger vocabulary).
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from splade_lightning.hub import alias_dir

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads or hidden // 32, intermediate_size=4 * hidden)
    model = BertForMaskedLM(cfg).eval()
    tokenizer = AutoTokenizer.from_pretrained(alias_dir("splade-tiny"))
    if target_doc_active_dims:
        _, positives, _ = training_texts(8)
        enc = tokenized(tokenizer, positives, 128)
        with torch.no_grad():
            logits = model(**enc).logits.masked_fill(~enc["attention_mask"].bool().unsqueeze(-1), float("-inf"))
            pooled = logits.amax(dim=1)  # (8, V) max logit per document and term
            shift = torch.quantile(pooled.flatten()[:2**24], 1 - target_doc_active_dims / cfg.vocab_size)
            model.cls.predictions.decoder.bias -= shift
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


# Extra sides of compare_train: (name, worker --impl, extra worker arguments).
KEEP_ACTIVATIONS = ("ours_keep_activations", "ours", ("--no-selective-recompute",))
DENSE_VOCAB_GRAD = ("ours_dense_vocab_grad", "ours", ("--dense-vocab-grad",))
NO_SCREEN = ("ours_no_screen", "ours", ("--head-screen", "off"))  # without the bf16 screen (models/head_screen.py)


def machine() -> dict:
    """The CPU (model, family/model numbers, the vector and bf16 instruction sets that decide which kernels run)
    and whether the head's bf16 screen is on by default here."""
    info: dict = {"cpus": len(os.sched_getaffinity(0))}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    fields = dict(line.split(":", 1) for line in text.splitlines()[:40] if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    info.update(model=fields.get("model name"), family=fields.get("cpu family"), model_number=fields.get("model"),
                isa=sorted(flags & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile"}))
    import torch

    from splade_lightning.models.head_screen import bf16_dot_available

    info.update(torch=torch.__version__, torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
                head_screen_auto=bf16_dot_available())
    return info


def compare_train(model_dir: str, batch: int, steps: int, impls=("st", "ours"), extra_sides=(),
                  common: tuple[str, ...] = ()) -> dict:
    """One training measurement per side: ``impls`` by name, then ``extra_sides``; ``common`` worker arguments go to
    every side (before a side's own, which win)."""
    results = {}
    sides = [(impl, impl, ()) for impl in impls] + list(extra_sides)
    for name, impl, extra in sides:
        results[name] = run_worker("train", "--impl", impl, "--model-dir", model_dir, "--batch", str(batch),
                                   "--steps", str(steps), *common, *extra)
        print(f"  train {name:5s} B={batch}: {results[name]}", flush=True)
    return results


def compare_minilm(tmp: Path, steps: int) -> dict:
    """The MiniLM-L6-shaped step in the sparse and the dense regime; ours also without selective recomputation."""
    summary: dict = {}
    for regime, target in (("sparse", 150), ("dense", None)):
        print(f"# MiniLM-L6-shaped MLM (6 layers, hidden 384, vocab 30522), B=32, {regime} head", flush=True)
        minilm = shaped_mlm(tmp / f"minilm_{regime}", target_doc_active_dims=target)
        mini = compare_train(minilm, 32, steps, extra_sides=[KEEP_ACTIVATIONS, NO_SCREEN])
        for key, result in ((f"minilm_{regime}", mini["ours"]), (f"minilm_{regime}_keep_activations",
                                                                 mini[KEEP_ACTIVATIONS[0]])):
            summary.update({f"{key}_train_speedup": ratio(result, mini["st"], "examples_per_s"),
                            f"{key}_train_peak_memory_ratio": ratio(result, mini["st"], "peak_memory_bytes"),
                            f"{key}_train_steady_peak_memory_ratio": ratio(result, mini["st"],
                                                                           "steady_peak_memory_bytes")})
        summary[f"minilm_{regime}_no_screen_train_speedup"] = ratio(mini[NO_SCREEN[0]], mini["st"], "examples_per_s")
        summary[f"minilm_{regime}_train"] = mini
    summary.update(dense_train_speedup=summary["minilm_dense_train_speedup"],
                   dense_peak_memory_ratio=summary["minilm_dense_train_peak_memory_ratio"],
                   dense_steady_peak_memory_ratio=summary["minilm_dense_train_steady_peak_memory_ratio"])
    return summary


def largest_batch(impl: str, model_dir: str, budget_bytes: int, batches: list[int],
                  checkpointing: bool = False) -> tuple[int, list]:
    """Largest batch (from ``batches``, ascending) whose whole-process peak RSS stays within ``budget_bytes``.

    Each batch runs one training step (optimiser state included) in a fresh process.
    """
    best, tried = 0, []
    for batch in batches:
        res = run_worker("train", "--impl", impl, "--model-dir", model_dir, "--batch", str(batch), "--steps", "0",
                         *(["--gradient-checkpointing"] if checkpointing else []))
        tried.append((batch, res.get("peak_rss_bytes"), res.get("error")))
        print(f"  {impl:5s} B={batch}: peak RSS {res.get('peak_rss_bytes', 0) / 2**30:.2f} GiB "
              f"{res.get('error', '')}", flush=True)
        if "error" in res or res["peak_rss_bytes"] > budget_bytes:
            break
        best = batch
    return best, tried


def compare_encode(model_dir: str, corpus: Path, docs: int, doc_len: int, tmp: Path) -> dict:
    import torch

    out = {}
    for name, impl, extra in (("st", "st", ()), ("ours", "ours", ()), NO_SCREEN):
        out[name] = run_worker("encode", "--impl", impl, "--model-dir", model_dir, "--docs", str(docs),
                               "--doc-len", str(doc_len), "--corpus", str(corpus), "--out", str(tmp / f"{name}.pt"),
                               *extra)
        print(f"  encode {name:5s}: {out[name]}", flush=True)
    reference = torch.load(tmp / "st.pt")
    out["max_abs_diff"] = float((reference - torch.load(tmp / "ours.pt")).abs().max())
    out["no_screen_max_abs_diff"] = float((reference - torch.load(tmp / f"{NO_SCREEN[0]}.pt")).abs().max())
    return out


def compare_v250k(tmp: Path, layers: int, hidden: int, steps: int, checkpointing_search: bool = False) -> dict:
    """The V = 250,002 comparison (multilingual-sized vocabulary): one training step's speed and memory at B=8 (ours
    also with dense (V, H) gradient contributions, ``sparse_vocab_grad=False``), and the largest batch within 8 GiB
    on each side (ours is tried at 10x, 25x and 50x sentence-transformers' largest)."""
    model = shaped_mlm(tmp / f"v250k_{layers}x{hidden}", layers, hidden, 250_002, target_doc_active_dims=150)
    train = compare_train(model, 8, steps, extra_sides=[DENSE_VOCAB_GRAD, NO_SCREEN])
    budget = 8 * 2**30
    st_batch = largest_batch("st", model, budget, [1, 2, 4, 6, 8, 12, 16])[0]
    ours_batch = largest_batch("ours", model, budget, [times * max(1, st_batch) for times in (10, 25, 50)])[0]
    out = {"train": train, "train_speedup": ratio(train["ours"], train["st"], "examples_per_s"),
           "peak_memory_ratio": ratio(train["ours"], train["st"], "peak_memory_bytes"),
           "steady_peak_memory_ratio": ratio(train["ours"], train["st"], "steady_peak_memory_bytes"),
           "dense_vocab_grad_peak_memory_ratio": ratio(train[DENSE_VOCAB_GRAD[0]], train["st"], "peak_memory_bytes"),
           "dense_vocab_grad_steady_peak_memory_ratio": ratio(train[DENSE_VOCAB_GRAD[0]], train["st"],
                                                              "steady_peak_memory_bytes"),
           "no_screen_train_speedup": ratio(train[NO_SCREEN[0]], train["st"], "examples_per_s"),
           "largest_batch_8gib": {"st": st_batch, "ours_at_least": ours_batch},
           "max_batch_ratio": ours_batch / st_batch if st_batch else None}
    if checkpointing_search:
        out.update(checkpointing_batches(model, budget))
    return out


def checkpointing_batches(model: str, budget: int) -> dict:
    """The largest batch in ``budget`` with gradient checkpointing on both sides (the body's saved activations,
    which grow with the batch, traded for recomputing it in backward; sentence-transformers' trainer has it as
    ``gradient_checkpointing=True``, ours as ``SpladeEncoder(gradient_checkpointing=True)``)."""
    print("  with gradient checkpointing on both sides:", flush=True)
    st_batch = largest_batch("st", model, budget, [4, 6, 8, 12, 16], checkpointing=True)[0]
    ours_batch = largest_batch("ours", model, budget, [times * max(1, st_batch) for times in (10, 25, 50, 75)],
                               checkpointing=True)[0]
    return {"largest_batch_8gib_checkpointing": {"st": st_batch, "ours_at_least": ours_batch},
            "max_batch_ratio_checkpointing": ours_batch / st_batch if st_batch else None}


def ratio(a: dict, b: dict, key: str) -> float | None:
    return a[key] / b[key] if a.get(key) is not None and b.get(key) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="SPLADE-tiny only; no MiniLM-shaped run, no batch search")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per measurement")
    parser.add_argument("--encode-docs", type=int, default=1000)
    parser.add_argument("--checkpointing-only", action="store_true",
                        help="only the V = 250k (6 x 384) largest-batch search, gradient checkpointing on both sides")
    parser.add_argument("--minilm-only", action="store_true",
                        help="only the MiniLM-L6-shaped steps (sparse and dense regime)")
    parser.add_argument("--v250k-only", action="store_true",
                        help="only the V = 250k steps and largest-batch searches (no checkpointing search)")
    args = parser.parse_args()
    if args.v250k_only:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(v250k_summary(Path(tmp), max(1, args.steps - 1), checkpointing_search=False),
                             default=float))
        return
    if args.minilm_only:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(compare_minilm(Path(tmp), max(1, args.steps - 1)), default=float))
        return
    if args.checkpointing_only:
        print("# V = 250,002, 6 layers, hidden 384, largest batch in 8 GiB (peak RSS), sparse head", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            model = shaped_mlm(Path(tmp) / "v250k_6x384", 6, 384, 250_002, target_doc_active_dims=150)
            print(json.dumps(checkpointing_batches(model, 8 * 2**30)))
        return
    from splade_lightning.hub import alias_dir

    tiny = str(alias_dir("splade-tiny"))
    summary: dict = {"machine": machine(), "torch_threads": int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))}
    print(f"# machine: {json.dumps(summary['machine'])}", flush=True)
    print("# SPLADE-tiny, B=32, query 32 / doc 128 tokens, 1 hard negative", flush=True)
    tiny_train = compare_train(tiny, 32, args.steps, impls=("st", "ours", "plain"), extra_sides=[NO_SCREEN])
    st, ours = tiny_train["st"], tiny_train["ours"]
    summary.update(train_speedup=ratio(ours, st, "examples_per_s"),
                   train_peak_memory_ratio=ratio(ours, st, "peak_memory_bytes"),
                   train_steady_peak_memory_ratio=ratio(ours, st, "steady_peak_memory_bytes"),
                   train_loss_abs_diff=abs(ours["first_loss"] - st["first_loss"]),
                   plain_head_speedup=ratio(tiny_train["plain"], st, "examples_per_s"),
                   no_screen_train_speedup=ratio(tiny_train[NO_SCREEN[0]], st, "examples_per_s"),
                   tiny_train=tiny_train)
    with tempfile.TemporaryDirectory() as tmp:
        encodes = {}
        for kind, corpus in TEXT_KINDS.items():
            print(f"# Corpus encoding, SPLADE-tiny, {kind}, doc length 256", flush=True)
            encodes[kind] = compare_encode(tiny, corpus, args.encode_docs, 256, Path(tmp))
        speedups = {kind: ratio(e["ours"], e["st"], "docs_per_s") for kind, e in encodes.items()}
        no_screen = {kind: ratio(e[NO_SCREEN[0]], e["st"], "docs_per_s") for kind, e in encodes.items()}
        summary.update(encode_speedup=min(speedups.values()), encode_speedup_by_kind=speedups,
                       no_screen_encode_speedup_by_kind=no_screen,
                       max_abs_diff=max(e["max_abs_diff"] for e in encodes.values()), encode=encodes)
        if not args.quick:
            summary.update(compare_minilm(Path(tmp), max(1, args.steps - 1)))
            print("# Largest SPLADE-tiny batch whose training step fits in 8 GiB (peak RSS)", flush=True)
            budget = 8 * 2**30
            summary["largest_batch_8gib"] = {
                "st": largest_batch("st", tiny, budget, [16, 32, 48, 64, 96, 128])[0],
                "ours": largest_batch("ours", tiny, budget, [32, 64, 128, 256, 512, 1024])[0],
            }
            summary.update(v250k_summary(Path(tmp), max(1, args.steps - 1), checkpointing_search=True))
    print(json.dumps(summary, default=float))


def v250k_summary(tmp: Path, steps: int, checkpointing_search: bool) -> dict:
    """Both V = 250k models (2 x 128 and 6 x 384); the summary keys give the weaker of the two."""
    v250k = {}
    for layers, hidden in ((2, 128), (6, 384)):
        print(f"# V = 250,002, {layers} layers, hidden {hidden}, B=8, q 32 / d 128, 1 hard negative, sparse "
              "head (~150 active terms per document)", flush=True)
        v250k[f"{layers}x{hidden}"] = compare_v250k(tmp, layers, hidden, steps,
                                                    checkpointing_search=checkpointing_search and layers == 6)
    out = dict(v250k_train_speedup=min(v["train_speedup"] or 0 for v in v250k.values()),
               v250k_peak_memory_ratio=max(v["peak_memory_ratio"] or float("inf") for v in v250k.values()),
               v250k_steady_peak_memory_ratio=max(v["steady_peak_memory_ratio"] or float("inf")
                                                  for v in v250k.values()),
               v250k_max_batch_ratio=min(v["max_batch_ratio"] or 0 for v in v250k.values()), v250k=v250k)
    if checkpointing_search:
        out["v250k_6x384_max_batch_ratio_checkpointing"] = v250k["6x384"]["max_batch_ratio_checkpointing"]
    return out


if __name__ == "__main__":
    main()
