"""Short fits with the losses for other kinds of data, on the tiny random BERT: SPLADE + CoSENT on (text1, text2,
score) pairs through the CLI (YAML-style config), SPLADE + Triplet, SPLADE + embedding MSE from a teacher, CSR +
MarginMSE on scored groups and CSR + CoSENT; a loss the data cannot feed stops the CLI with exit 2 before training."""

import json

import lightning.pytorch as pl
import pytest
import torch
from conftest import write_jsonl

PAIRS = [{"sentence1": f"sentence number {i}", "sentence2": f"paraphrase text {i}", "score": (i * 7 % 6) / 5}
         for i in range(8)]
SCORED = [{"query": f"question number {i}", "pos": [f"answer text {i}"], "neg": [f"wrong text {i}", f"bad text {i}"],
           "pos_scores": [9.0], "neg_scores": [float(i % 3), 1.5]} for i in range(8)]


def splade_cli_config(root, tiny_bert_dir, pairs) -> dict:
    return {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 2, "limit_val_batches": 0,
                    "enable_progress_bar": False, "enable_model_summary": False, "log_every_n_steps": 1,
                    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                               "init_args": {"save_dir": str(root), "name": "csv"}},
                    "enable_checkpointing": False, "default_root_dir": str(root)},
        "model": {"class_path": "splade_lightning.systems.SpladeModule", "init_args": {
            "encoder": {"class_path": "splade_lightning.models.SpladeEncoder",
                        "init_args": {"backbone": tiny_bert_dir}},
            "loss": {"class_path": "splade_lightning.losses.CoSENTLoss", "init_args": {"scale": 20.0}},
            "lr": 1e-3}},
        "data": {"class_path": "splade_lightning.data.RetrievalDataModule", "init_args": {
            "train": {"class_path": "splade_lightning.data.TextPairs", "init_args": {
                "files": [str(pairs)], "text1_column": "sentence1", "text2_column": "sentence2",
                "label_column": "score", "label_type": "score", "divide_labels_by": 1.0}},
            "batch_size": 4, "max_query_length": 12, "max_doc_length": 12}},
        "export_dir": str(root / "export"),
    }


def test_splade_cosent_fit_on_pair_scores_through_the_cli(tiny_bert_dir, tmp_path):
    from splade_lightning.models import SpladeEncoder
    from splade_lightning.tools.lightning_cli import SpladeCLI

    pairs = write_jsonl(tmp_path / "sts.jsonl", PAIRS)
    config = tmp_path / "cosent.yaml"
    config.write_text(json.dumps(splade_cli_config(tmp_path, tiny_bert_dir, pairs)))
    before = SpladeEncoder(tiny_bert_dir).state_dict()  # the weights the run starts from
    cli = SpladeCLI(args=["fit", "--config", str(config)])
    assert cli.trainer.global_step == 2
    rows = next(tmp_path.rglob("metrics.csv")).read_text().splitlines()
    header = rows[0].split(",")
    assert {"train/loss", "train/loss_rank", "train/flops_query", "train/flops_doc"} <= set(header)
    losses = [float(r.split(",")[header.index("train/loss_rank")]) for r in rows[1:]
              if r.split(",")[header.index("train/loss_rank")]]
    assert len(losses) == 2 and all(0 < v < 100 for v in losses)
    after = cli.model.encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_a_loss_the_data_cannot_feed_exits_2_before_training(tiny_bert_dir, toy_triplets, tmp_path, capsys):
    from splade_lightning.tools.main import main

    config = splade_cli_config(tmp_path, tiny_bert_dir, toy_triplets)
    config["data"]["init_args"]["train"] = {"class_path": "splade_lightning.data.TextTriplets", "init_args": {
        "files": [str(toy_triplets)], "negative_columns": ["neg"], "num_negatives": 2}}
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(config))
    assert main(["fit", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "CoSENTLoss learns from pair labels" in err and "TextTriplets source" in err
    assert "needs exactly 0 hard negative(s) per query" in err and "Traceback" not in err
    assert not (tmp_path / "export").exists()


def fit(module, train, tokenizer_dir, steps=2):
    from splade_lightning.data import RetrievalDataModule

    data = RetrievalDataModule(train=train, tokenizer=tokenizer_dir, batch_size=4, max_query_length=12,
                               max_doc_length=12)
    trainer = pl.Trainer(accelerator="cpu", max_steps=steps, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == steps
    return trainer.callback_metrics


def test_splade_triplet_fit(tiny_bert_dir, toy_triplets):
    from splade_lightning.data import TextTriplets
    from splade_lightning.losses import TripletLoss
    from splade_lightning.models import SpladeEncoder
    from splade_lightning.systems import SpladeModule

    module = SpladeModule(SpladeEncoder(tiny_bert_dir), loss=TripletLoss(), lr=1e-3)
    train = TextTriplets([str(toy_triplets)], query_column="query", positive_column="pos", negative_columns=["neg"],
                         num_negatives=1)
    metrics = fit(module, train, tiny_bert_dir)
    assert torch.isfinite(metrics["train/loss_rank"]) and metrics["train/loss_rank"] > 0


def test_splade_embedding_mse_fit_from_a_teacher(tiny_bert_dir, toy_triplets):
    from splade_lightning.data import TextTriplets
    from splade_lightning.losses import EmbeddingMSELoss
    from splade_lightning.models import SpladeEncoder
    from splade_lightning.systems import SpladeModule

    torch.manual_seed(1)
    teacher = SpladeEncoder(tiny_bert_dir)
    with torch.no_grad():  # a teacher that differs from the student
        teacher.mlm.cls.predictions.bias.add_(torch.rand_like(teacher.mlm.cls.predictions.bias))
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}
    module = SpladeModule(SpladeEncoder(tiny_bert_dir), loss=EmbeddingMSELoss(), teacher=teacher, lr=1e-3)
    metrics = fit(module, TextTriplets([str(toy_triplets)], negative_columns=["neg"], num_negatives=1), tiny_bert_dir)
    assert metrics["train/loss_rank"] > 0
    assert all(torch.equal(frozen[k], v) for k, v in module.teacher.state_dict().items())  # never trained


def csr_module(tiny_encoder_dir, loss):
    from splade_lightning.models import CSREncoder, DenseEncoder, SparseAutoEncoder
    from splade_lightning.systems import CSRModule

    encoder = CSREncoder(DenseEncoder(tiny_encoder_dir), SparseAutoEncoder(32, 64, k=4, k_aux=8))
    return CSRModule(encoder, loss=loss, lr=1e-3, eval_dense_baseline=False)


@pytest.mark.parametrize("kind", ["margin_mse", "cosent"])
def test_csr_fits_by_distillation_and_on_pair_scores(tiny_encoder_dir, tmp_path, kind):
    from splade_lightning.data import ScoredGroups, TextPairs
    from splade_lightning.losses import CoSENTLoss, MarginMSELoss

    if kind == "margin_mse":
        loss, train = MarginMSELoss(), ScoredGroups([str(write_jsonl(tmp_path / "s.jsonl", SCORED))], num_negatives=2)
    else:
        loss, train = CoSENTLoss(), TextPairs([str(write_jsonl(tmp_path / "p.jsonl", PAIRS))])
    metrics = fit(csr_module(tiny_encoder_dir, loss), train, tiny_encoder_dir)
    assert torch.isfinite(metrics["train/loss_rank"]) and {"train/recon_k", "train/loss"} <= set(metrics)
