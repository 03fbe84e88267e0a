"""``SelectionCriterion`` in a real ``fit``: ``val/selection`` is logged after every validation from the logged
metrics and the zero-shot ones, a ``ModelCheckpoint`` can keep the best by it, and bad setups fail before training."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "splade" / "quickstart.yaml"


def overlay(root: Path, in_domain: str = "home", early_stopping_first: bool = False) -> Path:
    criterion = ("    - class_path: splade_lightning.callbacks.SelectionCriterion\n"
                 f"      init_args: {{in_domain: [{in_domain}], out_of_domain: [away], max_drop: 0.0}}\n")
    stopping = ("    - class_path: lightning.pytorch.callbacks.EarlyStopping\n"
                "      init_args: {monitor: val/selection, mode: max, patience: 5}\n")
    path = root / "selection.yaml"
    first = stopping + criterion if early_stopping_first else criterion + stopping
    path.write_text("trainer:\n  callbacks:\n" + first
                    + "    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
                    "      init_args: {monitor: val/selection, mode: max, save_top_k: 1, filename: 'best-{step}'}\n")
    return path


def args(tiny_bert_dir, toy_triplets, toy_beir, root: Path, *extra: str) -> list[str]:
    sets = f"[{{path: {toy_beir}, split: test, name: home}}, {{path: {toy_beir}, split: test, name: away}}]"
    return ["fit", "--config", str(QUICKSTART), *extra, f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
            f"--data.init_args.train.init_args.files=[{toy_triplets}]", f"--data.init_args.val_sets={sets}",
            "--data.init_args.batch_size=4", "--data.init_args.eval_batch_size=8",
            "--data.init_args.max_doc_length=16", "--data.init_args.max_query_length=8",
            "--trainer.max_epochs=3", "--trainer.check_val_every_n_epoch=1", "--trainer.log_every_n_steps=1",
            "--model.init_args.lr=1e-3", f"--trainer.default_root_dir={root}",
            f"--trainer.logger.init_args.save_dir={root}"]


@pytest.mark.parametrize("early_stopping_first", [False, True])
def test_the_criterion_is_logged_and_selects_the_checkpoint(tiny_bert_dir, toy_triplets, toy_beir, tmp_path,
                                                            early_stopping_first):
    """The module logs val/selection with its own metrics, so an EarlyStopping listed before the criterion reads
    the current value too (Lightning runs callbacks' validation-end hooks in list order)."""
    from splade_lightning.metrics.selection import selection_score
    from splade_lightning.tools.main import main

    path = overlay(tmp_path, early_stopping_first=early_stopping_first)
    code = main(args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--config", str(path),
                     "--eval_before_fit=true", "--final_weights=best"))
    assert code == 0
    run = next(tmp_path.rglob("report.json")).parent
    report = json.loads((run / "report.json").read_text())
    # the logged metrics (and so metrics.csv) are float32; the report keeps float64: compare at the logged precision,
    # or a model whose nDCG did not move reads as a drop of 1e-8 (infeasible with max_drop 0)
    zero = {name: {"ndcg@10": float(np.float32(report["zero_shot"][name]["ndcg@10"]))} for name in ("home", "away")}
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    selection = [row for row in rows if row.get("val/selection")]
    assert len(selection) == 3  # one per validation of fit, none for the zero-shot one
    steps = [row["step"] for row in selection]
    evaluations = {row["step"]: {name: {"ndcg@10": float(row[f"val/{name}/ndcg@10"])} for name in ("home", "away")}
                   for row in rows if row.get("val/home/ndcg@10") and row["step"] in steps}  # same step as the metrics
    assert len(evaluations) == 3
    for row in selection:
        expected = selection_score(evaluations[row["step"]], zero, ["home"], ["away"], "ndcg@10", 0.0)
        assert float(row["val/selection"]) == pytest.approx(expected.score, abs=1e-6)
        assert float(row["val/selection_feasible"]) == float(expected.feasible)
        assert float(row["val/selection_ood_change"]) == pytest.approx(expected.out_of_domain_change, abs=1e-6)
        assert float(row["val/selection_in_domain_change"]) == pytest.approx(expected.in_domain_change, abs=1e-6)
    rows = selection
    best = max(float(row["val/selection"]) for row in rows)
    assert report["weights"]["monitor"] == "val/selection"
    assert report["weights"]["value"] == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize(("extra", "message"), [
    (["--eval_before_fit=false"], "needs the zero-shot evaluation as its reference"),
    (["--eval_before_fit=true", "in_domain=elsewhere"], "has no ndcg@10 for the sets ['elsewhere']"),
])
def test_bad_setups_fail_before_training(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, capsys, extra, message):
    from splade_lightning.tools.main import main

    in_domain = "elsewhere" if "in_domain=elsewhere" in extra else "home"
    path = overlay(tmp_path, in_domain)
    code = main(args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--config", str(path), extra[0]))
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.rglob("*.ckpt"))  # nothing trained
