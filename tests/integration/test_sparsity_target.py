"""Acceptance: the SparsityController drives a tiny random SPLADE to a target of 100 active document dims on the
bundled HotpotQA training data (through the real CLI), and logs what it does.

The tiny random model is a hard plant: its ranking loss never learns (it stays at the uniform log(16)), so nothing
pushes the number of active dims back up once they fall, and Adam keeps them falling for a few steps after λ drops.
The controller therefore has to approach from above without overshooting: kp = 1.5 (damping on the falling error)
and λ bounded at exp(8)·λ_0. The pretrained SPLADE-tiny, whose ranking loss does push back, reaches the same target
with the default-like gains of configs/splade/target_sparsity.yaml (experiments/2026-11-24_sparsity_controller).
"""

import csv
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "splade" / "quickstart.yaml"
TRAIN = REPO / "data" / "hotpotqa-500" / "train.jsonl"
TARGET = 100.0
MAX_DOC_LENGTH = 32


def _documents() -> tuple[list[str], list[str]]:
    """(training documents: the first positive and negative of the first 48 records, held-out documents: 96 corpus
    paragraphs that no training record contains)."""
    records = [json.loads(line) for line in TRAIN.read_text(encoding="utf-8").splitlines()]
    seen = {text for r in records for text in r["pos"] + r["neg"]}
    train_docs = [text for r in records[:48] for text in r["pos"][:1] + r["neg"][:1]]
    corpus = (json.loads(line) for line in (TRAIN.parent / "corpus.jsonl").read_text(encoding="utf-8").splitlines())
    held_out = [t for t in (f"{d['title']} {d['text']}".strip() for d in corpus) if t not in seen][:96]
    return train_docs, held_out


def _controller_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "controller.yaml"
    path.write_text(f"""trainer:
  callbacks:
    - class_path: splade_lightning.callbacks.SparsityController
      init_args: {{doc_target: {TARGET}, kp: 1.5, ki: 0.05, max_log_multiplier: 8.0}}
    - class_path: splade_lightning.callbacks.SparsityMonitor
      init_args: {{every_n_steps: 1}}
""")
    return path


def _mean_active_dims(model, texts: list[str]) -> float:
    reps = model.encode_document(texts).to_dense()
    return float((reps != 0).sum(dim=1).float().mean())


def test_controller_reaches_100_active_doc_dims(tiny_bert_dir, tmp_path):
    import splade_lightning
    from splade_lightning.tools.main import main

    train_docs, held_out_docs = _documents()
    export = tmp_path / "export"
    main(["fit", "--config", str(QUICKSTART), "--config", str(_controller_yaml(tmp_path)),
          f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}", "--model.init_args.lr=1e-3",
          "--model.init_args.encoder.init_args.efficient_head=false",  # reps start dense: plain head is faster
          f"--data.init_args.train.init_args.files=[{TRAIN}]",
          "--data.init_args.val_sets=[]", "--data.init_args.batch_size=8",
          f"--data.init_args.max_doc_length={MAX_DOC_LENGTH}", f"--data.init_args.eval_max_doc_length={MAX_DOC_LENGTH}",
          "--data.init_args.max_query_length=16", "--eval_before_fit=false", "--trainer.limit_val_batches=0",
          "--trainer.max_epochs=1", "--trainer.log_every_n_steps=1", f"--trainer.default_root_dir={tmp_path}",
          f"--trainer.logger.init_args.save_dir={tmp_path}", f"--export_dir={export}"])

    rows = list(csv.DictReader(open(next(tmp_path.rglob("metrics.csv")), newline="")))
    measured = [float(r["train/controller_measured_doc"]) for r in rows if r.get("train/controller_measured_doc")]
    batches = [float(r["train/active_dims_doc"]) for r in rows if r.get("train/active_dims_doc")]
    weights = [float(r["train/reg_weight_doc"]) for r in rows if r.get("train/reg_weight_doc")]
    last_batches = sum(batches[-5:]) / 5  # the training documents of the last 5 steps, as trained (dropout on)

    model = splade_lightning.load(export)  # eval mode: no dropout, so a little sparser than in training
    on_train, on_held_out = _mean_active_dims(model, train_docs), _mean_active_dims(model, held_out_docs)
    print(f"\nactive doc dims at the end: last 5 training batches {last_batches:.1f} (controller EMA "
          f"{measured[-1]:.1f}); final model: training docs {on_train:.1f}, held-out docs {on_held_out:.1f}")
    assert measured[0] > 10 * TARGET  # a random MLM head starts dense: the target is far away
    assert abs(last_batches - TARGET) <= 10.0 and abs(measured[-1] - TARGET) <= 10.0
    assert abs(on_train - TARGET) <= 20.0 and abs(on_held_out - TARGET) <= 20.0
    assert max(weights) > 100 * weights[0]  # λ_d was adapted, not fixed
    assert {"train/controller_log_multiplier_doc", "train/controller_target_doc"} <= set(rows[0])


def test_multiplier_scales_the_applied_weight(tiny_bert_dir):
    """``λ = doc_reg_weight · reg_scale · reg_multiplier("doc")`` is what compute_loss applies and reports."""
    import torch

    from splade_lightning.models import SpladeEncoder
    from splade_lightning.systems import SpladeModule

    system = SpladeModule(SpladeEncoder(backbone=tiny_bert_dir), doc_reg_weight=1e-3, query_reg_weight=2e-3)
    system.set_reg_scale(0.5)
    system.set_reg_multiplier("query", 3.0)
    system.set_reg_multiplier("doc", 10.0)
    reps = torch.rand(2, system.encoder.vocab_size)
    terms = system.compute_loss(reps, torch.rand(4, system.encoder.vocab_size), 1)
    assert float(terms["reg_weight_doc"]) == pytest.approx(1e-3 * 0.5 * 10.0)
    assert float(terms["reg_weight_query"]) == pytest.approx(2e-3 * 0.5 * 3.0)
    assert system.reg_weight("doc") == pytest.approx(1e-3 * 0.5 * 10.0) and system.configured_reg_weight("doc") == 1e-3
    expected = terms["loss_rank"] + 3e-3 * terms["flops_query"] + 5e-3 * terms["flops_doc"]
    torch.testing.assert_close(terms["loss"], expected)


def test_checkpoint_carries_the_controller_state(tiny_bert_dir, toy_triplets, tmp_path):
    """The state saved by ``Callback.state_dict`` is in last.ckpt and is restored into a fresh controller."""
    import torch

    from splade_lightning.callbacks import SparsityController
    from splade_lightning.tools.main import main

    main(["fit", "--config", str(QUICKSTART), "--config", str(_controller_yaml(tmp_path)),
          f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
          f"--data.init_args.train.init_args.files=[{toy_triplets}]", "--data.init_args.val_sets=[]",
          "--data.init_args.batch_size=4", "--data.init_args.max_doc_length=16",
          "--data.init_args.max_query_length=8", "--eval_before_fit=false", "--trainer.limit_val_batches=0",
          "--trainer.max_steps=2", f"--trainer.default_root_dir={tmp_path}",
          f"--trainer.logger.init_args.save_dir={tmp_path}",
          "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
          "--trainer.callbacks.save_last=true"])
    checkpoint = torch.load(next(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=False)
    controller = SparsityController(doc_target=TARGET, kp=1.5, ki=0.05, max_log_multiplier=8.0)
    state = checkpoint["callbacks"][controller.state_key]
    assert state["states"]["doc"]["steps"] == 2 and state["states"]["doc"]["ema"] > TARGET
    controller.load_state_dict(state)
    assert controller.states["doc"].log_multiplier == state["states"]["doc"]["log_multiplier"] != 0.0
