"""End-to-end runs of the CLI on a tiny random BERT and toy data (CPU, offline, seconds)."""

import json
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "splade" / "quickstart.yaml"


def tiny_args(tiny_bert_dir, toy_triplets, toy_beir, root, *extra):
    return [
        "--config", str(QUICKSTART),
        f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
        f"--data.init_args.train.init_args.files=[{toy_triplets}]",
        "--data.init_args.train.init_args.negative_columns=[neg]",
        f"--data.init_args.val_sets=[{{path: {toy_beir}, split: test, name: toy}}]",
        "--data.init_args.batch_size=4", "--data.init_args.eval_batch_size=4",
        "--data.init_args.max_doc_length=24", "--data.init_args.eval_max_doc_length=32",
        "--data.init_args.max_query_length=16", "--data.init_args.eval_max_query_length=20",
        f"--trainer.default_root_dir={root}", f"--trainer.logger.init_args.save_dir={root}",
        *extra,
    ]


def test_fast_dev_run_smoke(tiny_bert_dir, toy_triplets, toy_beir, tmp_path):
    from splade_lightning.tools.main import main

    main(["fit", *tiny_args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--trainer.fast_dev_run=true",
                            "--eval_before_fit=false")])


def test_fit_reports_exports_and_reloads(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, capsys):
    import splade_lightning
    from splade_lightning.tools.main import main

    main(["fit", *tiny_args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--trainer.max_epochs=2",
                            "--trainer.check_val_every_n_epoch=1", f"--export_dir={tmp_path / 'export'}")])
    out = capsys.readouterr().out
    assert "zero-shot" in out and "fine-tuned" in out and "| toy" in out

    report = json.loads(next(tmp_path.rglob("report.json")).read_text())
    for stage in ("zero_shot", "fine_tuned"):
        metrics = report[stage]["toy"]
        assert {"ndcg@10", "mrr@10", "recall@100", "active_dims_query", "active_dims_doc", "flops"} <= set(metrics)
        assert 0.0 <= metrics["ndcg@10"] <= 1.0

    metrics_csv = next(tmp_path.rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    for key in ("train/loss", "train/loss_rank", "train/flops_query", "train/flops_doc", "train/reg_weight_query",
                "train/reg_weight_doc", "train/lr", "train/active_dims_doc", "train/flops",
                "val/toy/ndcg@10", "val/toy/active_dims_doc", "val/ndcg@10", "val/toy/active_dims_doc_max"):
        assert key in metrics_csv, key

    card = (tmp_path / "export" / "README.md").read_text()  # the model card: the run's command, config and report
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "sentence-transformers" and "splade" in meta["tags"]
    index = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert index["ndcg@10"] == pytest.approx(report["fine_tuned"]["toy"]["ndcg@10"])
    assert "splade-lightning fit --config" in card and "query_reg_weight" in card and "### Sparsity" in card

    texts = ["a cat on a mat", "python programming"]
    exported = splade_lightning.load(tmp_path / "export")
    from_ckpt = splade_lightning.load(next(tmp_path.rglob("last.ckpt")))
    a = exported.encode_document(texts).to_dense()
    b = from_ckpt.encode_document(texts).to_dense()
    torch.testing.assert_close(a, b)
    assert exported.max_doc_length == 32  # eval_max_doc_length, not the training max_doc_length
    assert exported.max_query_length == from_ckpt.max_query_length == 20  # likewise eval_max_query_length


def test_missing_training_file_is_a_clear_error(tiny_bert_dir, toy_beir, tmp_path, capsys):
    from splade_lightning.tools.main import main

    missing = tmp_path / "nope.jsonl"
    exit_info = main(["fit", *tiny_args(tiny_bert_dir, missing, toy_beir, tmp_path)])
    assert exit_info != 0
    err = capsys.readouterr().err
    assert "nope.jsonl" in err


def test_malformed_line_is_reported_before_training(tiny_bert_dir, toy_beir, tmp_path, capsys):
    from splade_lightning.tools.main import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q1", "pos": ["p1"], "neg": ["n1"]}\n{"query": "q2", "pos": \n'
                   '{"query": "", "pos": ["p3"], "neg": ["n3"]}\n{"query": "q4", "neg": ["n4"]}\n')
    assert main(["fit", *tiny_args(tiny_bert_dir, bad, toy_beir, tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "bad.jsonl:2" in err and "bad.jsonl:3" in err and "query" in err and "bad.jsonl:4" in err
    assert not list(tmp_path.rglob("*.ckpt"))


def test_validate_subcommand(tiny_bert_dir, toy_triplets, toy_beir, tmp_path):
    from splade_lightning.tools.lightning_cli import SpladeCLI

    cli = SpladeCLI(args=["validate", *tiny_args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path)])
    assert "val/toy/ndcg@10" in cli.trainer.callback_metrics


def test_regularizer_warmup_is_right_after_resume(tiny_bert_dir, toy_triplets, toy_beir, tmp_path):
    """Train 2 steps, resume from the checkpoint to step 4: λ at every step equals λ_max·(t/T)² of an unbroken run."""
    import csv

    from splade_lightning.tools.main import main

    overlay = tmp_path / "callbacks.yaml"
    overlay.write_text(
        "trainer:\n  callbacks:\n"
        "    - {class_path: splade_lightning.callbacks.RegularizerWarmup, init_args: {warmup_steps: 4}}\n"
        "    - {class_path: lightning.pytorch.callbacks.ModelCheckpoint,\n"
        "       init_args: {every_n_train_steps: 1, save_last: true, save_top_k: -1}}\n")
    args = tiny_args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--config", str(overlay),
                     "--trainer.log_every_n_steps=1", "--eval_before_fit=false", "--trainer.limit_val_batches=0")
    main(["fit", *args, "--trainer.max_steps=2", "--trainer.max_epochs=-1"])
    ckpt = next(tmp_path.rglob("last.ckpt"))
    main(["fit", *args, "--trainer.max_steps=4", "--trainer.max_epochs=-1", f"--ckpt_path={ckpt}"])
    weights = {}
    for path in tmp_path.rglob("metrics.csv"):
        for row in csv.DictReader(path.open()):
            if row.get("train/reg_weight_doc"):
                weights[int(row["step"])] = float(row["train/reg_weight_doc"])
    lam = 3e-4  # doc_reg_weight in quickstart.yaml
    assert sorted(weights) == [0, 1, 2, 3]
    for step, value in weights.items():
        assert value == pytest.approx(lam * (step / 4) ** 2, rel=1e-5, abs=1e-12), step


def test_report_always_describes_the_final_weights(tiny_bert_dir, toy_triplets, toy_beir, tmp_path):
    """With validation only after epoch 1 of 2 (or never during fit), fit evaluates the final weights before
    reporting."""
    from splade_lightning.tools.lightning_cli import SpladeCLI

    for every_n_epochs, root in ((1, tmp_path / "a"), (5, tmp_path / "b")):
        extra = ["--trainer.max_epochs=2", f"--trainer.check_val_every_n_epoch={every_n_epochs}",
                 "--trainer.limit_train_batches=1", "--eval_before_fit=false"]
        cli = SpladeCLI(args=["fit", *tiny_args(tiny_bert_dir, toy_triplets, toy_beir, root, *extra)])
        assert cli.model.last_eval_step == cli.trainer.global_step == 2


def test_test_subcommand_uses_test_sets(tiny_bert_dir, toy_triplets, toy_beir, tmp_path):
    from splade_lightning.tools.lightning_cli import SpladeCLI

    cli = SpladeCLI(args=["test", *tiny_args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path,
                                             f"--data.init_args.test_sets=[{{path: {toy_beir}, name: held}}]")])
    assert "test/held/ndcg@10" in cli.trainer.callback_metrics


def test_optimizer_and_scheduler_injection(tiny_bert_dir, toy_triplets, toy_beir, tmp_path):
    from splade_lightning.tools.lightning_cli import SpladeCLI

    cli = SpladeCLI(run=False, args=tiny_args(
        tiny_bert_dir, toy_triplets, toy_beir, tmp_path,
        "--model.init_args.optimizer=torch.optim.SGD", "--model.init_args.optimizer.lr=0.05",
        "--model.init_args.lr_scheduler=torch.optim.lr_scheduler.StepLR",
        "--model.init_args.lr_scheduler.step_size=3"))
    cli.trainer.strategy.connect(cli.model)
    config = cli.model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["lr"] == 0.05
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)
    no_decay = [g for g in optimizer.param_groups if g["weight_decay"] == 0.0]
    assert no_decay, "biases and norm weights must be in a no-decay group"


def test_dangling_qrels_id_is_reported_with_file_and_line(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, capsys):
    from splade_lightning.tools.main import main

    qrels = toy_beir / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "q2\tdoc-that-does-not-exist\t1\n")
    assert main(["validate", *tiny_args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "test.tsv:7" in err and "doc-that-does-not-exist" in err


def test_print_config(tiny_bert_dir, capsys, monkeypatch):
    from splade_lightning.tools.main import main

    monkeypatch.chdir(REPO)
    exit_info = main(["fit", "--config", str(QUICKSTART), "--print_config"])
    assert exit_info == 0
    out = capsys.readouterr().out
    assert "splade_lightning.systems.SpladeModule" in out and "doc_reg_weight" in out
