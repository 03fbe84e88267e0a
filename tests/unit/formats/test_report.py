"""The run report: fixed columns always, CSR's extra columns only when a result has them, labelled runs in order,
and the JSON keys other tools read (``fine_tuned``)."""

import json

from splade_lightning.formats.report import COLUMNS, format_table, report_rows, write_report

SPLADE = {"msmarco": {"ndcg@10": 0.8, "mrr@10": 0.9, "recall@100": 0.85, "active_dims_query": 17.2,
                      "active_dims_doc": 128.1, "flops": 2.1}}


def test_splade_table_has_the_fixed_columns_only():
    runs = {"zero-shot": None, "fine-tuned": SPLADE}
    header = format_table(runs).splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == ["dataset", "model", *COLUMNS]
    assert report_rows(runs) == [["msmarco", "fine-tuned", "0.8000", "0.9000", "0.8500", "17.2", "128.1", "2.1"]]


def test_csr_columns_appear_when_present():
    before = {"msmarco": {**SPLADE["msmarco"], "dense_ndcg@10": 0.7977, "recon_fvu": 0.76, "dead_fraction": 0.0}}
    after = {"msmarco": {**SPLADE["msmarco"], "dense_ndcg@10": 0.7977, "recon_fvu": 0.75, "dead_fraction": 0.01}}
    runs = {"zero-shot": before, "fine-tuned": after}
    lines = format_table(runs).splitlines()
    assert lines[0].split("|")[-4:-1] == [" dense_ndcg@10 ", " recon_fvu ", " dead_fraction "]
    assert [row[-3:] for row in report_rows(runs)] == [["0.7977", "0.7600", "0.0000"], ["0.7977", "0.7500", "0.0100"]]


def test_rows_follow_the_datasets_of_the_last_run_and_the_runs_in_order(tmp_path):
    two = {"a": SPLADE["msmarco"], "mean": SPLADE["msmarco"]}
    rows = report_rows({"zero-shot": two, "fine-tuned": two})
    assert [row[:2] for row in rows] == [["a", "zero-shot"], ["a", "fine-tuned"], ["mean", "zero-shot"],
                                         ["mean", "fine-tuned"]]
    table = write_report(tmp_path, {"zero-shot": None, "fine-tuned": two})
    assert (tmp_path / "report.md").read_text() == table + "\n"
    assert json.loads((tmp_path / "report.json").read_text()) == {"zero_shot": None, "fine_tuned": two}
    assert report_rows({"last": two})[0][:2] == ["a", "last"]


def test_fit_report_names_the_weights(tmp_path):
    best = {"selected": "best", "step": 24, "monitor": "val/ndcg@10", "mode": "max", "value": 0.81234,
            "checkpoint": "checkpoints/best-step=24.ckpt"}
    text = write_report(tmp_path, {"fine-tuned": SPLADE}, best)
    assert text.endswith("\n\nWeights: the best checkpoint by val/ndcg@10 (max), 0.8123 at step 24: "
                         "checkpoints/best-step=24.ckpt.")
    assert (tmp_path / "report.md").read_text() == text + "\n"
    assert json.loads((tmp_path / "report.json").read_text()) == {"fine_tuned": SPLADE, "weights": best}
    assert write_report(tmp_path, {"fine-tuned": SPLADE}, {"selected": "last", "step": 36}).endswith(
        "Weights: the last, at step 36.")
