"""lightning-ir's SPLADE training step against ours, on the same model, batch and token tensors.

Used by ``benchmarks/fit_vs_st.py`` (``--lir-pythonpath DIR``), which adds this step comparison to its whole-run
comparison with sentence-transformers, and by ``benchmarks/head_worker.py`` (``--impl lir``). lightning-ir
(https://github.com/webis-de/lightning-ir, PyPI ``lightning-ir`` 0.0.6) is kept out of the venv: its requirements are
unpinned, and 0.0.6 does not work with our transformers 5.x (its tokenizer factory indexes tokenizer classes as
(slow, fast) pairs, and its MLM-head key mapping leaves ``projection.predictions.decoder`` newly initialised). So it
goes into a folder of its own with the transformers 4.x it was written for, which only the lightning-ir child sees::

    pip install --no-deps --target DIR lightning-ir ir_datasets sentencepiece 'transformers<5' 'tokenizers<0.23' \
        'huggingface_hub<1'

With that, it loads SPLADE-tiny's MLM head exactly, and its first loss equals ours on the same tokens. Its SPLADE
model computes the (B, L, V) MLM logits, then log(1 + relu(.)) and max pooling
(``lightning_ir/models/bi_encoders/splade.py``), as sentence-transformers does.
"""

from __future__ import annotations

import json


def build_step(model_dir: str, queries, positives, negatives, q, p, n, no_dropout):
    """lightning-ir 0.0.6's SPLADE training step on the same model and token tensors (its module tokenises in the
    step; here it is handed ``q``/``p``/``n`` instead, so that both sides see identical tokens).

    A ``SpladeConfig`` model (max pooling of log(1 + relu(MLM logits)), dot product; the backbone and MLM head loaded
    from ``model_dir`` by its class factory) in a ``BiEncoderModule`` with its
    ``InBatchCrossEntropy`` (the positive first, then every other document in the batch: the candidates of
    sentence-transformers' ``SparseMultipleNegativesRankingLoss``) and ``FLOPSRegularization`` (λ_q 5e-5, λ_d 3e-5)
    losses; ``module.training_step`` as its trainer calls it, then backward and fused AdamW.
    """
    import torch
    from lightning_ir import BiEncoderModule, FLOPSRegularization, InBatchCrossEntropy, TrainBatch
    from lightning_ir.models import SpladeConfig
    from transformers import BatchEncoding

    config = SpladeConfig(query_length=q["input_ids"].shape[1], doc_length=p["input_ids"].shape[1])
    module = BiEncoderModule(model_name_or_path=model_dir, config=config, loss_functions=[
        InBatchCrossEntropy(pos_sampling_technique="first", neg_sampling_technique="all_and_non_first"),
        FLOPSRegularization(query_weight=5e-5, doc_weight=3e-5)])
    no_dropout(module)
    for layer in module.modules():  # transformers 4.x's SDPA attention drops out by a float, not a Dropout module
        if isinstance(getattr(layer, "dropout_prob", None), float):
            layer.dropout_prob = 0.0
    docs = {k: torch.stack([p[k], n[k]], dim=1).flatten(0, 1) for k in p}  # (positive, negative) per query
    encodings = {"query_encoding": BatchEncoding(dict(q)), "doc_encoding": BatchEncoding(docs)}
    module.prepare_input = lambda *_args, **_kwargs: encodings
    batch = TrainBatch(queries, [[pos, neg] for pos, neg in zip(positives, negatives)],
                       targets=torch.tensor([[1.0, 0.0]] * len(queries)))
    optimizer = torch.optim.AdamW(module.parameters(), lr=2e-5, fused=True)

    def step() -> float:
        loss = module.training_step(batch, 0)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    return step


def run_steps(r: dict, args) -> dict:
    """lightning-ir's SPLADE training step against ours on the same model, batch and token tensors.

    SPLADE-tiny, the recipe's batch (32 queries, one positive and one hard negative each) and training lengths
    (queries 48, documents 128 tokens), dropout off, fused AdamW, each side in a fresh subprocess
    (``benchmarks/head_worker.py``: ``--impl lir`` is lightning-ir 0.0.6's ``BiEncoderModule.training_step``
    with ``InBatchCrossEntropy`` + ``FLOPSRegularization``, ``--impl ours`` is ``SpladeModule.compute_loss``).
    A whole lightning-ir run is not matched: its trainer reads its own dataset formats and samplers.
    """
    import head_worker  # this folder is on sys.path when the script runs

    from splade_lightning.hub import alias_dir

    common = ["--model-dir", str(alias_dir("splade-tiny")), "--batch", str(r["batch_size"]),
              "--query-len", str(r["max_query_length"]), "--doc-len", str(r["max_doc_length"]),
              "--steps", str(args.lir_steps)]
    steps = {"lir": head_worker.run_worker("train", "--impl", "lir", *common, extra_path=args.lir_pythonpath,
                                            threads=args.threads),
             "ours": head_worker.run_worker("train", "--impl", "ours", *common, threads=args.threads)}
    for side, measured in steps.items():
        print(f"# {side} training step: {json.dumps(measured)}", flush=True)
        if "error" in measured:
            raise RuntimeError(f"the {side} step failed: {measured['error']}")
    return steps


def print_table(steps: dict) -> None:
    """lightning-ir's step against ours (one run each)."""
    print("\n| side (one process each, SPLADE-tiny, B=32) | s/step | first-step memory GiB | steady-step memory GiB "
          "| first loss |")
    print("|---|---|---|---|---|")
    for side, name in (("lir", "lightning-ir 0.0.6"), ("ours", "ours")):
        m = steps[side]
        print(f"| {name} | {m['s_per_step']:.2f} | {m['peak_memory_bytes'] / 2**30:.2f} | "
              f"{(m['steady_peak_memory_bytes'] or 0) / 2**30:.2f} | {m['first_loss']:.6f} |")


def summary(steps: dict | None) -> dict:
    """The lightning-ir keys of the final JSON object (None where its step was not run)."""
    if not steps:
        return {"lightning_ir_step_speedup": None, "lightning_ir_step_peak_memory_ratio": None}
    lir, ours = steps["lir"], steps["ours"]
    return {"lightning_ir_step_speedup": lir["s_per_step"] / ours["s_per_step"],
            "lightning_ir_step_peak_memory_ratio": ours["peak_memory_bytes"] / lir["peak_memory_bytes"],
            "lightning_ir_step_loss_abs_diff": abs(lir["first_loss"] - ours["first_loss"]), "lightning_ir_step": steps}
