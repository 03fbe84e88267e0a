"""A tiny fit logged to wandb (offline), TensorBoard and CSV at once: every logger gets the same metric names, and the
media (expansions table, histograms) reach wandb and TensorBoard in their own formats and CSV as files.

wandb runs with ``WANDB_MODE=offline``: no account, no network. Its history is read back from the run's ``.wandb``
transaction log with wandb's own protobuf ``Record`` (the file is a LevelDB-style log: 32 KiB blocks of
``crc32 | length | type`` chunks, after a 7-byte ``:W&B`` header).
"""

from __future__ import annotations

import csv
import json
import math
import struct
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "splade" / "quickstart.yaml"

#: scalar keys every logger must have
SCALARS = [
    "train/loss", "train/loss_rank", "train/flops_query", "train/flops_doc", "train/reg_weight_query",
    "train/reg_weight_doc", "train/active_dims_query", "train/active_dims_doc", "train/active_dims_query_p10",
    "train/active_dims_query_p50", "train/active_dims_query_p90", "train/active_dims_doc_p10",
    "train/active_dims_doc_p50", "train/active_dims_doc_p90", "train/flops",
    "val/toy/ndcg@10", "val/ndcg@10", "val/toy/active_dims_doc", "val/toy/active_dims_doc_p50",
    "val/toy/active_dims_query_p90", "val/toy/vocab_active_doc",
]
HISTOGRAMS = ["train/active_dims_doc_hist", "train/active_dims_query_hist", "val/toy/active_dims_doc_hist",
              "val/toy/doc_df_log10"]
TABLE = "val/toy/expansions"

LOGGERS_OVERLAY = """
trainer:
  logger:
    - class_path: lightning.pytorch.loggers.CSVLogger
      init_args: {{save_dir: {root}, name: csv}}
    - class_path: lightning.pytorch.loggers.TensorBoardLogger
      init_args: {{save_dir: {root}, name: tb}}
    - class_path: lightning.pytorch.loggers.WandbLogger
      init_args: {{save_dir: {root}, project: test, offline: true}}
"""


def tiny_args(tiny_bert_dir, toy_triplets, toy_beir, root: Path) -> list[str]:
    """The quickstart (its callbacks included) on the tiny BERT and toy data: 2 steps per epoch."""
    return [
        "--config", str(QUICKSTART),
        f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
        f"--data.init_args.train.init_args.files=[{toy_triplets}]",
        "--data.init_args.train.init_args.negative_columns=[neg]",
        f"--data.init_args.val_sets=[{{path: {toy_beir}, split: test, name: toy}}]",
        "--data.init_args.batch_size=4", "--data.init_args.eval_batch_size=4",
        "--data.init_args.max_doc_length=24", "--data.init_args.eval_max_doc_length=32",
        "--data.init_args.max_query_length=16", f"--trainer.default_root_dir={root}",
    ]


def wandb_records(path: Path):
    """Every ``wandb.proto.wandb_internal_pb2.Record`` of a ``.wandb`` transaction log, in order."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B", data[:7]
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # FULL, or LAST of a fragmented record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk)
            pending = b""
            yield record
        elif kind in (2, 3):  # FIRST / MIDDLE
            pending += chunk


def finished_records(run_dir: Path, timeout_s: float = 60.0) -> list:
    """The records of an offline run's transaction log once wandb has written its ``exit`` record.

    ``wandb.finish()`` hands the run to wandb's service process, which may still be writing the log when it returns
    (seen on a loaded 2-core CI machine: the last history record was missing); so poll until the log is complete.
    """
    deadline = time.monotonic() + timeout_s
    from google.protobuf.message import DecodeError

    while True:
        try:
            records = list(wandb_records(next(run_dir.glob("run-*.wandb"))))
        except DecodeError:  # a record still being written
            records = []
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def wandb_history(run_dir: Path) -> dict[str, list]:
    """key -> logged values (JSON-decoded; media as their dicts) of an offline run."""
    history: dict[str, list] = {}
    for record in finished_records(run_dir):
        if record.WhichOneof("record_type") != "history":
            continue
        items: dict[str, dict] = {}
        for item in record.history.item:
            path = list(item.nested_key) or [item.key]
            node = items.setdefault(path[0], {})
            node[tuple(path[1:])] = json.loads(item.value_json)
        for key, parts in items.items():
            history.setdefault(key, []).append(parts[()] if () in parts else {k[0]: v for k, v in parts.items()})
    return history


def tensorboard_tags(log_dir: Path):
    """(kind -> tags, the loaded EventAccumulator) of a TensorBoard run directory."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"histograms": 0, "tensors": 0, "scalars": 0})
    acc.Reload()
    return {kind: set(tags) for kind, tags in acc.Tags().items() if isinstance(tags, list)}, acc


def test_tiny_fit_logs_to_wandb_tensorboard_and_csv(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, monkeypatch,
                                                     tokenizer_dir):
    from splade_lightning.tools.main import main

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    overlay = tmp_path / "loggers.yaml"
    overlay.write_text(LOGGERS_OVERLAY.format(root=tmp_path))
    main(["fit", *tiny_args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path), "--config", str(overlay),
          "--trainer.max_epochs=2", "--trainer.check_val_every_n_epoch=2", "--trainer.log_every_n_steps=1",
          f"--export_dir={tmp_path / 'export'}"])
    import wandb

    wandb.finish()  # what the interpreter's exit would do: flush the run's transaction log
    check_same_metric_names(tmp_path, tokenizer_dir)
    check_csv_media_files(tmp_path)


def check_same_metric_names(root: Path, tokenizer_dir: str) -> None:
    rows = list(csv.DictReader(next(root.rglob("metrics.csv")).open()))
    csv_keys = set(rows[0])
    history = wandb_history(next(root.glob("wandb/offline-run-*")))
    tags, acc = tensorboard_tags(next(root.glob("tb/version_*")))
    for key in SCALARS:
        assert key in csv_keys, f"CSV lacks {key}"
        assert key in history, f"wandb lacks {key}"
        assert key in tags["scalars"], f"TensorBoard lacks {key}"
    for key in HISTOGRAMS:
        assert key in tags["histograms"], f"TensorBoard lacks histogram {key}"
        assert history[key][-1]["_type"] == "histogram", key
    assert TABLE in history and history[TABLE][-1]["_type"] == "table-file"
    assert f"{TABLE}/text_summary" in tags["tensors"]

    # the same values reach every logger: the mean nDCG@10 of both validations (zero-shot at step 0, and final)
    csv_ndcg = [float(r["val/ndcg@10"]) for r in rows if r.get("val/ndcg@10")]
    assert len(csv_ndcg) == 2
    assert history["val/ndcg@10"] == pytest.approx(csv_ndcg)
    assert [e.value for e in acc.Scalars("val/ndcg@10")] == pytest.approx(csv_ndcg)
    # percentiles are ordered and bracket the median of a real distribution
    last = [r for r in rows if r.get("train/active_dims_doc_p50")][-1]
    p10, p50, p90 = (float(last[f"train/active_dims_doc_p{q}"]) for q in (10, 50, 90))
    assert 0 < p10 <= p50 <= p90 <= float(last["train/active_dims_doc_max"])
    # df histogram: one value per term active in >= 1 of the 6 toy documents, log10 df in [0, log10 6]
    vocab_active = [float(r["val/toy/vocab_active_doc"]) for r in rows if r.get("val/toy/vocab_active_doc")]
    hist = history["val/toy/doc_df_log10"][-1]
    assert sum(hist["values"]) == vocab_active[-1] > 0
    assert hist["bins"][0] >= 0 and hist["bins"][-1] <= math.log10(6) + 1e-6

    # the wandb table file holds the query/document rows with vocabulary tokens
    table = json.loads((next(root.glob("wandb/offline-run-*")) / "files" / history[TABLE][-1]["path"]).read_text())
    assert table["columns"] == ["pair", "kind", "id", "text", "active_dims", "top_terms"]
    assert [(r[1], r[2]) for r in table["data"]] == [("query", "q1"), ("doc", "d1"), ("query", "q2"),
                                                     ("doc", "d3"), ("query", "q3"), ("doc", "d2")]
    from transformers import AutoTokenizer

    vocab = AutoTokenizer.from_pretrained(tokenizer_dir).get_vocab()
    for row in table["data"]:
        terms = [t.rsplit(":", 1) for t in row[5].split()]
        assert 1 <= len(terms) <= min(12, row[4])
        assert all(name in vocab for name, _ in terms)
        weights = [float(w) for _, w in terms]
        assert weights == sorted(weights, reverse=True) and weights[0] > 0


def check_csv_media_files(root: Path) -> None:
    media = next(root.glob("csv/version_*")) / "media" / "val" / "toy"
    tables = sorted((media / "expansions").glob("step_*.json"))
    assert [p.name for p in tables] == ["step_0000000.json", "step_0000004.json"]  # zero-shot and final validation
    table = json.loads(tables[-1].read_text())
    assert table["key"] == TABLE and table["step"] == 4 and len(table["rows"]) == 6
    assert (media / "expansions" / "step_0000004.md").read_text().count("\n| ") == 7  # header + 6 rows
    df = json.loads(sorted((media / "doc_df_log10").glob("step_*.json"))[-1].read_text())
    assert sum(df["counts"]) == df["n"] > 0 and len(df["bin_edges"]) == len(df["counts"]) + 1
    assert not (media / "active_dims_doc_hist").exists()  # training/active-dims histograms: wandb/TensorBoard only


def test_logging_overlays_select_the_logger(tmp_path, monkeypatch):
    """The shipped overlays swap only trainer.logger and keep the base config's save_dir (no wandb run starts)."""
    import sys

    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    from splade_lightning.tools.lightning_cli import SpladeCLI

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(REPO)
    base = ["--config", "configs/splade/quickstart.yaml", f"--trainer.logger.init_args.save_dir={tmp_path}"]
    cli = SpladeCLI(args=[*base, "--config", "configs/logging/wandb.yaml"], run=False)
    assert isinstance(cli.trainer.logger, WandbLogger) and cli.trainer.logger._wandb_init["name"] is None
    assert cli.trainer.logger.save_dir == str(tmp_path) and cli.trainer.logger._project == "splade-lightning"
    assert "wandb" in sys.modules
    cli = SpladeCLI(args=[*base, "--config", "configs/logging/tensorboard.yaml"], run=False)
    assert isinstance(cli.trainer.logger, TensorBoardLogger)
    assert Path(cli.trainer.logger.log_dir).parent == tmp_path / "tensorboard"
