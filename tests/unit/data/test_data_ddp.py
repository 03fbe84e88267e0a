"""A real 2-process CPU DDP fit (ddp_spawn, gloo): Lightning keeps our samplers; ranks split, evaluation is whole."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from splade_lightning.data import BeirSet, RetrievalDataModule, TextTriplets


class RecordingModule(pl.LightningModule):
    """Writes, per rank, the training query rows and the evaluation ids it was given."""

    def __init__(self, out_dir: str, tokenizer_dir: str):
        super().__init__()
        self.out_dir, self.tokenizer_name_or_path = out_dir, tokenizer_dir
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.train_rows: list = []
        self.eval_ids: list = []

    def training_step(self, batch, batch_idx):
        self.train_rows.append([self.current_epoch, batch.query_input_ids.tolist()])
        return self.weight.sum() * 0

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.eval_ids.extend([batch.kind, i] for i in batch.ids)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def on_train_end(self):
        sampler = self.trainer.train_dataloader.batch_sampler
        info = {"rows": self.train_rows, "eval": self.eval_ids, "replicas": [sampler.num_replicas, sampler.rank],
                "sampler": type(sampler).__name__}
        (Path(self.out_dir) / f"rank{self.global_rank}.json").write_text(json.dumps(info))


@pytest.mark.slow
def test_ddp_spawn_two_processes(tmp_path, toy_beir, tokenizer_dir):
    from conftest import write_jsonl

    rows = [{"query": f"question {i}", "pos": f"answer {i}", "neg": [f"wrong {i}"]} for i in range(24)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    dm = RetrievalDataModule(TextTriplets([str(train)], negative_columns=["neg"]), val_sets=[BeirSet(str(toy_beir))],
                             tokenizer=tokenizer_dir, batch_size=3, eval_batch_size=2, max_doc_length=16,
                             max_query_length=8)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, use_distributed_sampler=True)
    trainer.fit(RecordingModule(str(tmp_path), tokenizer_dir), datamodule=dm)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["replicas"] for r in ranks] == [[2, 0], [2, 1]]
    assert {r["sampler"] for r in ranks} == {"NoDuplicatesBatchSampler"}
    for epoch in (0, 1):
        per_rank = [[tuple(q) for e, batch in r["rows"] if e == epoch for q in batch] for r in ranks]
        assert len(per_rank[0]) == len(per_rank[1]) == 12 and not set(per_rank[0]) & set(per_rank[1])
    expected = sorted([("query", q) for q in ("q1", "q2", "q3")] + [("doc", f"d{i}") for i in range(1, 7)]) * 2
    for r in ranks:  # every rank encodes every query and document in each of the 2 validation runs
        assert sorted(tuple(x) for x in r["eval"]) == sorted(expected)
