"""The head benchmark compares like with like: same inputs give the same first loss on both sides (no timings)."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


def test_same_first_loss_for_sentence_transformers_and_ours(tiny_bert_dir):
    import head_worker

    losses = {impl: head_worker.build_step(impl, tiny_bert_dir, batch=4, query_len=16, doc_len=32)()
              for impl in ("st", "ours", "plain")}
    assert losses["ours"] == pytest.approx(losses["st"], rel=1e-5)
    assert losses["plain"] == pytest.approx(losses["st"], rel=1e-5)


def test_bf16_autocast_sides_and_documents_of_different_padded_lengths(tiny_bert_dir):
    """``gpu_bf16.py``'s sides on the CPU: positives and negatives padded to different lengths are joined for ours
    (the first CPU smoke run of it failed there), and under bf16 autocast the first losses stay close."""
    import head_worker

    long_negative = head_worker.concat_padded({"input_ids": torch.ones(2, 3, dtype=torch.long),
                                               "attention_mask": torch.ones(2, 3, dtype=torch.long)},
                                              {"input_ids": torch.ones(2, 5, dtype=torch.long),
                                               "attention_mask": torch.ones(2, 5, dtype=torch.long)}, pad_id=0)
    assert long_negative["input_ids"].shape == (4, 5)
    assert long_negative["attention_mask"].sum(dim=1).tolist() == [3, 3, 5, 5]
    assert long_negative["input_ids"][:2, 3:].eq(0).all()
    losses = {impl: head_worker.build_step(impl, tiny_bert_dir, batch=4, query_len=16, doc_len=128, bf16=True)()
              for impl in ("st", "ours", "plain")}
    assert losses["ours"] == pytest.approx(losses["st"], rel=2e-2)
    assert losses["plain"] == pytest.approx(losses["st"], rel=2e-2)


def test_gradient_checkpointing_on_both_sides_keeps_the_first_loss(tiny_bert_dir):
    """The checkpointing batch search recomputes the body; the objective must not change on either side."""
    import head_worker

    plain = head_worker.build_step("ours", tiny_bert_dir, batch=4, query_len=16, doc_len=32)()
    for impl in ("st", "ours"):
        step = head_worker.build_step(impl, tiny_bert_dir, batch=4, query_len=16, doc_len=32, checkpointing=True)
        backbone = step.model[0].auto_model if impl == "st" else step.model.mlm
        assert backbone.is_gradient_checkpointing
        assert step() == pytest.approx(plain, rel=1e-5)


def test_quantization_study_anchors_on_float32_and_a_fine_scale_keeps_the_ranking(tiny_bert_dir, toy_beir):
    import quantization

    import splade_lightning
    from splade_lightning.formats.beir import load_beir
    from splade_lightning.retrieval import evaluate_retrieval

    model, data = splade_lightning.load(tiny_bert_dir), load_beir(toy_beir)
    rows, _ = quantization.study(model, data, quantization.build_schemes([1e4], [8], [1]), batch_size=4, k=10)
    by_name = {row["scheme"]: row for row in rows}
    query_ids, doc_ids = list(data.queries), list(data.corpus)
    expected = evaluate_retrieval(query_ids, model.encode_query([data.queries[q] for q in query_ids]), doc_ids,
                                  model.encode_document([data.corpus[d] for d in doc_ids]), data.qrels, k=10,
                                  measures=("ndcg@10",)).metrics["ndcg@10"]
    assert by_name["float32"]["ndcg@10"] == pytest.approx(expected, abs=1e-6)
    assert by_name["float32"]["delta"] == 0 and by_name["float32"]["randomisation_p"] == 1
    assert by_name["anserini×10000"]["queries_quantised"] and by_name["anserini×10000"]["ndcg@10"] == pytest.approx(
        expected, abs=1e-6)
    assert by_name["top-1"]["postings"] == len(doc_ids)
    assert "| top-1 |" in quantization.markdown([{"model": "m", "dataset": "toy", **row} for row in rows])


def test_a_vocabulary_larger_than_the_tokenizer_gives_the_same_first_loss_on_both_sides(tmp_path):
    """The V = 250k comparison's setting, scaled down: a random MLM whose vocabulary exceeds its tokenizer's, decoder
    bias shifted to a trained SPLADE's sparsity; sentence-transformers and ours must still agree on the first loss."""
    import head_worker
    import splade_head

    model_dir = splade_head.shaped_mlm(tmp_path / "mlm", layers=1, hidden=32, vocab=40_000, target_doc_active_dims=150)
    losses = {impl: head_worker.build_step(impl, model_dir, batch=4, query_len=16, doc_len=32)()
              for impl in ("st", "ours")}
    assert losses["ours"] == pytest.approx(losses["st"], rel=1e-5)


def test_train_worker_measures_memory_from_just_before_the_steps(tiny_bert_dir):
    """The peak counter is reset before the measured steps, so a peak from before them (loading a model) does not
    count; each training measurement reports the first-step and the steady-state growth."""
    import argparse

    import head_worker
    import torch

    if not head_worker.reset_peak():
        pytest.skip("this kernel cannot reset VmHWM")
    big = torch.ones(256 * 2**20 // 4)  # a 256 MiB peak, then freed
    del big
    assert head_worker.reset_peak()
    assert head_worker.peak_rss_bytes() < head_worker.rss_bytes() + 64 * 2**20
    args = argparse.Namespace(impl="ours", model_dir=tiny_bert_dir, batch=4, query_len=16, doc_len=32, head_chunk=512,
                              steps=1, gradient_checkpointing=False, no_selective_recompute=False, device="cpu",
                              bf16=False, dense_vocab_grad=False, head_screen="auto")
    result = head_worker.worker_train(args)
    assert result["peak_reset"] and result["peak_memory_bytes"] < 256 * 2**20
    steady = result["steady_peak_memory_bytes"]
    # Two RSS readings, exact only to the kernel's per-CPU counter slack (a step that adds nothing read -8 KiB).
    assert steady is not None and -head_worker.rss_counter_slack_bytes() <= steady < 256 * 2**20


def test_run_worker_runs_the_worker_script_with_the_given_threads(tiny_bert_dir):
    """``run_worker`` runs ``head_worker.py`` as a script in a fresh process, with ``threads`` torch threads."""
    import head_worker

    argv = ["train", "--impl", "ours", "--model-dir", tiny_bert_dir, "--batch", "2", "--query-len", "8", "--doc-len",
            "16", "--steps", "0"]
    result = head_worker.run_worker(*argv, threads=1)
    assert "error" not in result, result
    assert result["torch_threads"] == 1 and result["first_loss"] > 0


def test_checkpoint_save_benchmark_measures_lightnings_buffer(tmp_path):
    """Both writers run in their own process and write the same-size file; Lightning's BytesIO shows up as peak
    growth of about the checkpoint's size, ours does not (no timings are asserted)."""
    import json
    import subprocess

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "checkpoint_save.py"
    argv = [sys.executable, str(script), "--params", "4000000", "--repeats", "1", "--dir", str(tmp_path)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "error" in result:
        pytest.skip(result["error"])
    size = result["checkpoint_bytes"]
    assert size > 3 * 4 * 4_000_000
    assert result["peak_growth_bytes"]["lightning"] >= 0.8 * size  # allocator reuse may hide a little of it
    assert result["peak_growth_bytes"]["ours"] < size / 4
    assert list(tmp_path.iterdir()) == []  # its temporary folder is gone (each run checks it held only the file)


def test_step_memory_categories_sees_the_optimiser_state_of_a_first_step(tiny_bert_dir):
    """``step_memory_categories.py``: the first step creates AdamW's two moments (twice the trainable parameters'
    bytes) and keeps them, so its tensor peak is at least that; a later step creates none."""
    import step_memory_categories

    from splade_lightning.models import SpladeEncoder

    params = sum(p.numel() * p.element_size() for p in SpladeEncoder(tiny_bert_dir).parameters())
    first = step_memory_categories.measure("ours", tiny_bert_dir, 4, steady=False)
    assert first["tensor_peak_bytes"] >= 2 * params and first["rss_growth_bytes"] > 0
    assert sum(first["by_kind_bytes"].values()) == first["tensor_peak_bytes"]
    later = step_memory_categories.measure("ours", tiny_bert_dir, 4, steady=True)
    assert later["by_kind_bytes"].get("OPTIMIZER_STATE", 0) < params
    assert later["tensor_peak_bytes"] < first["tensor_peak_bytes"]
