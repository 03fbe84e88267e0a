"""STS sets end to end on the tiny random BERT: ``validate`` / ``fit`` log ``val/<name>/spearman`` etc. (from
``val_sts_sets``) next to a BEIR set (a ModelCheckpoint can monitor them), and ``evaluate --data pairs.jsonl``
reports them; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "splade" / "quickstart.yaml"
CHECKPOINT = """\
trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {monitor: val/pairs/spearman, mode: max, save_top_k: 1, filename: "best-{step}"}
"""


@pytest.fixture()
def pairs(tmp_path) -> Path:
    """12 real STSb pairs (the first of data/stsb-cc/dev.jsonl)."""
    lines = (REPO / "data" / "stsb-cc" / "dev.jsonl").read_text().splitlines()[:12]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def direct_metrics(model_dir: str, pairs: Path, max_doc_length: int) -> dict:
    import splade_lightning
    from splade_lightning.formats.sts import load_sts
    from splade_lightning.metrics.sts import sts_metrics

    model = splade_lightning.load(model_dir, device="cpu")
    model.max_doc_length = max_doc_length
    data = load_sts(pairs)
    with torch.inference_mode():
        reps = [model.encode_document(texts, 4) for texts in (data.sentences1, data.sentences2)]
    return sts_metrics(*reps, data.scores)


def test_validate_logs_sts_next_to_beir(tiny_bert_dir, toy_beir, pairs, tmp_path):
    from splade_lightning.tools.lightning_cli import SpladeCLI

    cli = SpladeCLI(args=[
        "validate", "--config", str(QUICKSTART), f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
        f"--data.init_args.val_sets=[{{path: {toy_beir}, name: toy}}]",
        f"--data.init_args.val_sts_sets=[{{path: {pairs}, name: pairs}}]",
        "--data.init_args.eval_batch_size=5", "--data.init_args.eval_max_doc_length=32",
        f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    expected = direct_metrics(tiny_bert_dir, pairs, 32)
    for key in ("spearman", "pearson", "active_dims", "sparsity_ratio"):
        assert metrics[f"val/pairs/{key}"] == pytest.approx(expected[key], abs=1e-5), key
        assert metrics[f"val/{key}"] == pytest.approx(expected[key], abs=1e-5)  # the only STS set: its mean
    assert "val/toy/ndcg@10" in metrics and "val/ndcg@10" in metrics  # the BEIR mean is not lost
    report = (next(tmp_path.rglob("report.md"))).read_text()
    assert "spearman" in report and "| pairs" in report


def test_fit_checkpoint_monitors_sts_spearman(tiny_bert_dir, toy_triplets, pairs, tmp_path):
    from splade_lightning.tools.lightning_cli import SpladeCLI

    overlay = tmp_path / "ckpt.yaml"
    overlay.write_text(CHECKPOINT)
    cli = SpladeCLI(args=[
        "fit", "--config", str(QUICKSTART), "--config", str(overlay),
        f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
        f"--data.init_args.train.init_args.files=[{toy_triplets}]",
        "--data.init_args.train.init_args.negative_columns=[neg]",
        "--data.init_args.val_sets=null", f"--data.init_args.val_sts_sets=[{{path: {pairs}, name: pairs}}]",
        "--data.init_args.batch_size=4", "--data.init_args.eval_batch_size=8", "--data.init_args.max_doc_length=16",
        "--data.init_args.max_query_length=8", "--trainer.max_epochs=1", "--trainer.check_val_every_n_epoch=1",
        "--eval_before_fit=false", f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}"])
    best = [cb for cb in cli.trainer.checkpoint_callbacks if cb.monitor == "val/pairs/spearman"][0]
    assert best.best_model_path and "best-step=2" in best.best_model_path
    assert float(best.best_model_score) == pytest.approx(float(cli.trainer.callback_metrics["val/pairs/spearman"]))


def test_evaluate_reports_spearman_and_pearson(tiny_bert_dir, pairs, tmp_path, capsys):
    from splade_lightning.tools.main import main

    out = tmp_path / "sts.json"
    assert main(["evaluate", "--model", tiny_bert_dir, "--data", str(pairs), "--max_doc_length", "32",
                 "--batch_size", "4", "--no_progress", "--output", str(out)]) == 0
    got = json.loads(out.read_text())
    expected = direct_metrics(tiny_bert_dir, pairs, 32)
    for key in ("spearman", "pearson", "active_dims", "sparsity_ratio"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key
    assert got["pairs"] == 12 and got["similarity"] == "dot" and got["max_doc_length"] == 32
    printed = capsys.readouterr().out
    assert "| spearman | pearson | active_dims | sparsity_ratio |" in printed.replace("  ", " ")
    assert f"| {got['dataset']} |" in printed


@pytest.mark.parametrize(("extra", "message"), [
    (["--split", "dev"], "--split does not apply to an STS file"),
    (["--measures", "ndcg@10"], "--measures does not apply to an STS file"),
    (["--run_output", "x.trec"], "--run_output does not apply to an STS file"),
])
def test_evaluate_refuses_retrieval_options(tiny_bert_dir, pairs, extra, message, capsys):
    from splade_lightning.tools.main import main

    assert main(["evaluate", "--model", tiny_bert_dir, "--data", str(pairs), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_evaluate_bad_rows_exit_2_with_file_line(tiny_bert_dir, tmp_path, capsys):
    from splade_lightning.tools.main import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a", "score": 2}\n'
                   '{"sentence1": "a", "sentence2": "b", "score": NaN}\n')
    assert main(["evaluate", "--model", tiny_bert_dir, "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: field 'sentence2': missing field" in err and f"{bad}:3: field 'score'" in err
    assert "Traceback" not in err
    assert main(["evaluate", "--model", tiny_bert_dir, "--data", str(tmp_path / "none.jsonl")]) == 2
    assert "STS file not found" in capsys.readouterr().err
