"""``fit --final_weights best|last``: the weights a run ends with are the ones it evaluates, reports and exports.

A test callback logs a scripted metric (``val/scripted``: 0.5, 0.9, 0.1 after steps 2, 4, 6), so the best checkpoint
is known in advance and is not the last one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "splade" / "quickstart.yaml"
SCORES = {2: 0.5, 4: 0.9, 6: 0.1}
CHECKPOINTS = """\
trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {monitor: val/scripted, mode: max, save_top_k: 1, filename: "best-{step}",
                  save_on_train_epoch_end: false}
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {every_n_train_steps: 2, save_top_k: -1, filename: "{step}", save_last: true}
"""
TEXTS = ["a cat on a mat", "python programming", "barking dogs"]


class ScriptedScore(Callback):
    """Logs ``val/scripted`` = :data:`SCORES` of the global step at every validation."""

    def on_validation_epoch_end(self, trainer, pl_module):
        pl_module.log("val/scripted", SCORES.get(trainer.global_step, 0.0))


def fit(tiny_bert_dir, toy_triplets, toy_beir, root: Path, *extra: str):
    """A 6-step fit (3 epochs of 2 batches, validated after each) with the two checkpoints of :data:`CHECKPOINTS`."""
    from splade_lightning.tools.lightning_cli import SpladeCLI

    overlay = root / "checkpoints.yaml"
    overlay.parent.mkdir(parents=True, exist_ok=True)
    overlay.write_text(CHECKPOINTS)
    args = ["fit", "--config", str(QUICKSTART), "--config", str(overlay),
            f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
            f"--data.init_args.train.init_args.files=[{toy_triplets}]",
            "--data.init_args.train.init_args.negative_columns=[neg]",
            f"--data.init_args.val_sets=[{{path: {toy_beir}, split: test, name: toy}}]",
            "--data.init_args.batch_size=4", "--data.init_args.eval_batch_size=8",
            "--data.init_args.max_doc_length=16", "--data.init_args.max_query_length=8",
            "--trainer.max_epochs=3", "--trainer.check_val_every_n_epoch=1", "--trainer.log_every_n_steps=1",
            "--eval_before_fit=false", "--model.init_args.lr=1e-3",
            f"--trainer.default_root_dir={root}", f"--trainer.logger.init_args.save_dir={root}", *extra]
    return SpladeCLI(args=args, trainer_defaults={"callbacks": [ScriptedScore()]})


def encode(path: Path) -> torch.Tensor:
    import splade_lightning

    return splade_lightning.load(path).encode_document(TEXTS).to_dense()


def logged_eval(run: Path, step: int) -> dict[str, float]:
    """The ``val/toy/*`` figures the validation of the weights of ``step`` logged during fit."""
    for row in csv.DictReader((run / "metrics.csv").open()):
        if row.get("val/toy/ndcg@10") and int(row["step"]) == step - 1:  # Lightning logs at step - 1
            return {k.removeprefix("val/toy/"): float(v) for k, v in row.items() if k.startswith("val/toy/") and v}
    raise AssertionError(f"no validation logged for step {step}")


@pytest.mark.parametrize("final_weights", ["best", "last"])
def test_fit_ends_with_the_chosen_weights(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, final_weights):
    cli = fit(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, f"--export_dir={tmp_path / 'model'}",
              *([f"--final_weights={final_weights}"] if final_weights == "best" else []))  # last is the default
    run = next(tmp_path.rglob("report.json")).parent
    checkpoints = run / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("*.ckpt")) == [  # nothing removed or added by the choice
        "best-step=4.ckpt", "last.ckpt", "step=2.ckpt", "step=4.ckpt", "step=6.ckpt"]
    best, last = checkpoints / "best-step=4.ckpt", checkpoints / "last.ckpt"
    assert torch.load(best, weights_only=False)["global_step"] == 4

    exported = encode(tmp_path / "model")
    chosen, other = (best, last) if final_weights == "best" else (last, best)
    torch.testing.assert_close(exported, encode(chosen), rtol=0, atol=0)
    assert not torch.equal(exported, encode(other))

    report = json.loads((run / "report.json").read_text())
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    readme = (tmp_path / "model" / "README.md").read_text()
    if final_weights == "best":
        assert report["weights"] == {"selected": "best", "step": 4, "monitor": "val/scripted", "mode": "max",
                                     "value": pytest.approx(0.9), "checkpoint": "checkpoints/best-step=4.ckpt"}
        assert "best checkpoint by val/scripted (max), 0.9000 at step 4: checkpoints/best-step=4.ckpt" in (
            run / "report.md").read_text()
        assert "best checkpoint by `val/scripted` (max, 0.9000 at step 4)" in readme
        assert cli.model.last_eval_step == 4
    else:
        assert report["weights"] == {"selected": "last", "step": 6}
        assert "Weights: the last, at step 6." in (run / "report.md").read_text()
    assert card["weights"] == report["weights"]
    # the final evaluation is the chosen weights': the figures their validation logged during fit
    assert report["fine_tuned"]["toy"] == pytest.approx(logged_eval(run, report["weights"]["step"]))


def test_best_survives_a_resume_into_a_new_run_directory(tiny_bert_dir, toy_triplets, toy_beir, tmp_path):
    """Lightning forgets the scores of the first run's checkpoints when the resumed run writes to another directory;
    the best of the first run (0.9 at step 4) still beats the resumed run's (0.1 at step 6)."""
    fit(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--final_weights=best", "--trainer.max_epochs=2")
    first = next(tmp_path.rglob("best-step=4.ckpt"))
    fit(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--final_weights=best", f"--ckpt_path={first}")
    reports = sorted(tmp_path.rglob("report.json"))
    assert [p.parent.name for p in reports] == ["version_0", "version_1"]
    weights = json.loads(reports[1].read_text())["weights"]
    assert weights["step"] == 4 and weights["value"] == pytest.approx(0.9)
    assert Path(weights["checkpoint"]) == first.resolve()  # outside the run directory: an absolute path
    assert (reports[1].parent / "checkpoints" / "best-step=6.ckpt").is_file()
    torch.testing.assert_close(encode(reports[1].parent / "model"), encode(first), rtol=0, atol=0)


@pytest.mark.parametrize("checkpoint", [None, "{monitor: val/ndcg@10, mode: max, save_top_k: 0}"])
def test_best_without_a_monitored_checkpoint_is_an_error_before_training(tiny_bert_dir, toy_triplets, toy_beir,
                                                                         tmp_path, capsys, checkpoint):
    from splade_lightning.tools.main import main

    extra = []
    if checkpoint:  # instead of the quickstart's step checkpoint: one that monitors a metric and keeps nothing
        overlay = tmp_path / "overlay.yaml"
        overlay.write_text("trainer:\n  callbacks:\n    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
                           f"      init_args: {checkpoint}\n")
        extra = ["--config", str(overlay)]
    args = ["fit", "--config", str(QUICKSTART), *extra, f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
            f"--data.init_args.train.init_args.files=[{toy_triplets}]",
            f"--data.init_args.val_sets=[{{path: {toy_beir}, split: test, name: toy}}]",
            f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--final_weights=best"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--final_weights=best needs a ModelCheckpoint that keeps checkpoints by a metric" in err
    assert ("save_top_k=0" if checkpoint else "monitor='step'") in err and "--final_weights=last" in err
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("report.json"))

    assert main([*args[:-1], "--final_weights=worst"]) == 2
    assert "final_weights" in capsys.readouterr().err


@pytest.mark.slow
def test_best_under_two_process_ddp(tiny_bert_dir, toy_triplets, toy_beir, tmp_path):
    """2 CPU processes (gloo): every rank loads the checkpoint rank 0 chose and evaluates it, rank 0 alone exports
    and reports."""
    import inspect
    import os
    import subprocess
    import sys

    source = inspect.getsource(ScriptedScore)
    (tmp_path / "scripted.py").write_text(  # importable by both processes: PYTHONPATH below
        f"from lightning.pytorch.callbacks import Callback\nSCORES = {SCORES!r}\n\n\n{source}")
    overlay = tmp_path / "checkpoints.yaml"
    overlay.write_text(CHECKPOINTS + "    - class_path: scripted.ScriptedScore\n")
    cmd = [sys.executable, "-m", "splade_lightning", "fit", "--config", str(REPO / "configs/splade/multi_gpu.yaml"),
           "--config", str(overlay), "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.precision=32-true",
           f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
           f"--data.init_args.train.init_args.files=[{toy_triplets}]",
           "--data.init_args.train.init_args.negative_columns=[neg]",
           f"--data.init_args.val_sets=[{{path: {toy_beir}, split: test, name: toy}}]",
           "--data.init_args.batch_size=2", "--data.init_args.eval_batch_size=4", "--data.init_args.max_doc_length=16",
           "--data.init_args.max_query_length=8", "--trainer.check_val_every_n_epoch=1", "--eval_before_fit=false",
           "--trainer.log_every_n_steps=1", "--model.init_args.lr=1e-3", "--final_weights=best",
           f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}"]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = next(tmp_path.rglob("report.json")).parent
    report = json.loads((run / "report.json").read_text())
    assert report["weights"]["step"] == 4 and report["weights"]["checkpoint"] == "checkpoints/best-step=4.ckpt"
    torch.testing.assert_close(encode(run / "model"), encode(run / "checkpoints" / "best-step=4.ckpt"), rtol=0,
                               atol=0)
    assert report["fine_tuned"]["toy"] == pytest.approx(logged_eval(run, 4))
