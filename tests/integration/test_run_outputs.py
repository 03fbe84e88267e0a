"""What a Lightning run leaves and prints: every artifact in the run's own version directory whatever the logger,
the full resolved config on the dashboard, the same compact report from fit / validate / test (and no Lightning
metric table), no repeated zero-shot evaluation on resume, and a clear error for ``test`` without test sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from splade_lightning.tools.main import main

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "splade" / "quickstart.yaml"


def args(tiny_bert_dir, toy_triplets, toy_beir, root: Path, *extra) -> list[str]:
    return ["--config", str(QUICKSTART), f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
            f"--data.init_args.train.init_args.files=[{toy_triplets}]",
            "--data.init_args.train.init_args.negative_columns=[neg]",
            f"--data.init_args.val_sets=[{{path: {toy_beir}, split: test, name: toy}}]",
            "--data.init_args.batch_size=4", "--data.init_args.eval_batch_size=4",
            "--data.init_args.max_doc_length=16", "--data.init_args.max_query_length=8",
            "--trainer.max_epochs=1", "--trainer.check_val_every_n_epoch=1", f"--trainer.default_root_dir={root}",
            f"--trainer.logger.init_args.save_dir={root}", *extra]


@pytest.fixture()
def offline_wandb(tmp_path, monkeypatch):
    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path),
                        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
                        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache")}.items():
        monkeypatch.setenv(name, value)
    yield
    import wandb

    wandb.finish()


def test_wandb_run_keeps_its_artifacts_together(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, offline_wandb,
                                                 monkeypatch):
    """With the wandb overlay the model, report, config and checkpoints of a run land in one directory, and a
    second run gets another (nothing of the first is overwritten)."""
    import wandb

    recorded = []
    monkeypatch.setattr("lightning.pytorch.loggers.WandbLogger.log_hyperparams",
                        lambda self, params: recorded.append(dict(params)))
    runs = []
    for _ in range(2):
        assert main(["fit", *args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--eval_before_fit=false",
                                  "--trainer.max_epochs=3"),  # 6 steps: one step checkpoint
                     "--config", str(REPO / "configs" / "logging" / "wandb.yaml")]) == 0
        wandb.finish()
        runs = sorted(p.parent for p in tmp_path.glob("splade-lightning/*/report.md"))
    assert len(runs) == 2
    for run in runs:
        assert (run / "model" / "splade_lightning.manifest.json").is_file()
        assert (run / "config.yaml").is_file() and (run / "report.json").is_file()
        assert list((run / "checkpoints").glob("*.ckpt"))
    assert not (tmp_path / "model").exists() and not (tmp_path / "report.md").exists()
    config = recorded[0]
    assert config["model/init_args/encoder/init_args/backbone"] == tiny_bert_dir
    assert config["data/init_args/batch_size"] == 4 and "trainer/callbacks" in config
    assert yaml.safe_load((runs[0] / "config.yaml").read_text())["model"]["init_args"]["doc_reg_weight"] == 3e-4


def test_validate_and_test_print_the_compact_report(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, capsys):
    root = tmp_path / "v"
    common = args(tiny_bert_dir, toy_triplets, toy_beir, root,
                  f"--data.init_args.test_sets=[{{path: {toy_beir}, split: test, name: held}}]")
    assert main(["validate", *common]) == 0
    out = capsys.readouterr().out
    assert "Retrieval results (written to" in out and "| toy " in out and "| model " in out
    assert "DataLoader 0" not in out and "Validate metric" not in out  # Lightning's own table is not printed
    report = json.loads(next(root.rglob("report.json")).read_text())
    assert set(report) == {"model"} and "ndcg@10" in report["model"]["toy"]
    per_query = json.loads(next(root.rglob("per_query.json")).read_text())["toy"]["ndcg@10"]
    assert sorted(per_query) == ["q1", "q2", "q3"]  # every judged query, and their mean is the report's figure
    assert sum(per_query.values()) / 3 == pytest.approx(report["model"]["toy"]["ndcg@10"], abs=1e-12)
    assert main(["test", *common]) == 0
    out = capsys.readouterr().out
    assert "| held " in out and "Test metric" not in out


def test_test_without_test_sets_is_an_error(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, capsys):
    assert main(["test", *args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path)]) == 2
    assert "no test sets" in capsys.readouterr().err


def test_resume_takes_the_zero_shot_rows_from_the_checkpoint(tiny_bert_dir, toy_triplets, toy_beir, tmp_path,
                                                             capsys, caplog):
    import logging

    first = args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--eval_before_fit=true",
                 "--trainer.max_steps=1", "--trainer.max_epochs=-1", "--trainer.check_val_every_n_epoch=100")
    with caplog.at_level(logging.INFO):  # `--ckpt_path last` with no checkpoint yet: a fresh run, zero-shot included
        assert main(["fit", *first, "--ckpt_path=last"]) == 0
    assert "Zero-shot evaluation before training" in caplog.text
    before = json.loads(next(tmp_path.rglob("report.json")).read_text())["zero_shot"]
    ckpt = next(tmp_path.rglob("step=1.ckpt"), None) or next(tmp_path.rglob("*.ckpt"))
    capsys.readouterr()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        resumed = [a if a != "--trainer.max_steps=1" else "--trainer.max_steps=2" for a in first]
        assert main(["fit", *resumed, f"--ckpt_path={ckpt}"]) == 0
    assert "Zero-shot evaluation before training" not in caplog.text
    assert "zero-shot rows of the report come from the checkpoint" in caplog.text
    reports = sorted(tmp_path.rglob("report.json"), key=lambda p: p.stat().st_mtime)
    after = json.loads(reports[-1].read_text())
    assert after["zero_shot"] == before and after["fine_tuned"]
