"""Evaluation driven by the sets the batches carry (``batch.eval_set``; no data module), the typed evaluation state
(``last_eval_metrics``, ``last_eval_step``) and ``zero_shot_metrics`` through a checkpoint and a resumed fit."""

import math
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir import EvalData
from splade_lightning.models import SpladeEncoder
from splade_lightning.systems import SpladeModule
from splade_lightning.types import EncodeBatch
from tests.unit.systems.sparse_fakes import BagEncoder
from tests.unit.systems.train_batches import train_loader

# token ids of the texts (the bag encoder scores a query-document pair by the ids they share): d1 [1], d2 [1, 2], d3 [3]
CORPUS = {"d1": "one", "d2": "one two", "d3": "three"}
DOC_IDS = torch.tensor([[1, 0], [1, 2], [3, 0]])
# set "first": q1 = [3] -> d3 alone scores 1, relevant; q2 = [2] -> d2 alone scores 1, relevant: MRR 1, nDCG 1
# set "second": q1 = [1, 2] -> d2 scores 2, d1 scores 1, d1 relevant at rank 2 (MRR 1/2, nDCG 1/log2(3)); q2 = [3] -> d3
# relevant at rank 1: MRR 3/4, nDCG (1 + 1/log2(3)) / 2
FIRST = EvalData(name="first", corpus=CORPUS, queries={"q1": "three", "q2": "two"},
                 qrels={"q1": {"d3": 1}, "q2": {"d2": 1}})
SECOND = EvalData(name="second", corpus=CORPUS, queries={"q1": "one two", "q2": "three"},
                  qrels={"q1": {"d1": 1}, "q2": {"d3": 1}})
QUERY_IDS = {"first": torch.tensor([[3, 0], [2, 0]]), "second": torch.tensor([[1, 2], [3, 0]])}


def eval_batch(kind: str, ids: list[str], input_ids: torch.Tensor, eval_set: EvalData | None) -> EncodeBatch:
    # the data module's evaluation loaders set eval_set on every batch
    return EncodeBatch(input_ids=input_ids, attention_mask=(input_ids > 0).long(), ids=ids, kind=kind,
                       eval_set=eval_set)


def evaluating_module(step: int = 3) -> tuple[SpladeModule, dict]:
    """A SpladeModule over a bag-of-ids encoder, attached to a stand-in Trainer that has no data module."""
    module = SpladeModule(BagEncoder(), eval_k=10, eval_measures=["ndcg@10", "mrr@10"])
    module.trainer = SimpleNamespace(sanity_checking=False, global_step=step)
    logged = {}
    module.log_dict = lambda values, **kwargs: logged.update(values)
    return module, logged


def test_evaluation_takes_each_set_from_its_batches():
    module, logged = evaluating_module()
    for idx, data in enumerate((FIRST, SECOND)):
        module.validation_step(eval_batch("query", ["q1", "q2"], QUERY_IDS[data.name], data), 0, idx)
        module.validation_step(eval_batch("doc", ["d1", "d2"], DOC_IDS[:2], data), 1, idx)
        module.validation_step(eval_batch("doc", ["d3"], DOC_IDS[2:], data), 2, idx)
    module.on_validation_epoch_end()

    results = module.last_eval_metrics
    assert results["first"]["mrr@10"] == 1.0 and results["first"]["ndcg@10"] == pytest.approx(1.0)
    assert results["second"]["mrr@10"] == 0.75
    assert results["second"]["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert results["mean"]["mrr@10"] == pytest.approx(0.875)
    assert logged["val/second/mrr@10"] == 0.75 and logged["val/mrr@10"] == pytest.approx(0.875)
    assert module.last_eval_step == 3


def test_validate_through_a_trainer_without_a_data_module():
    """Plain DataLoaders of EncodeBatches: the sets travel with the batches (also through ``batch.to(device)``) to the
    module and to the callbacks."""
    from splade_lightning.callbacks import SparsityMonitor

    module = SpladeModule(BagEncoder(), eval_k=10, eval_measures=["ndcg@10", "mrr@10"])
    loaders = [torch.utils.data.DataLoader([eval_batch("query", ["q1", "q2"], QUERY_IDS[data.name], data),
                                            eval_batch("doc", ["d1", "d2", "d3"], DOC_IDS, data)], batch_size=None)
               for data in (FIRST, SECOND)]
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[SparsityMonitor(histograms=False)])
    trainer.validate(module, dataloaders=loaders, verbose=False)
    assert module.last_eval_metrics["second"]["mrr@10"] == 0.75 and module.last_eval_step == 0
    assert trainer.callback_metrics["val/mrr@10"] == pytest.approx(0.875)
    assert trainer.callback_metrics["val/second/active_dims_doc_max"] == 2.0  # d2 = [1, 2]


def test_a_batch_without_its_set_is_a_config_error():
    module, _ = evaluating_module()
    with pytest.raises(ConfigError, match="SpladeModule: the evaluation batch .*kind='query'.* has eval_set=None"):
        module.validation_step(eval_batch("query", ["q1", "q2"], QUERY_IDS["first"], None), 0, 0)


def test_one_dataloader_holds_one_set():
    module, _ = evaluating_module()
    module.validation_step(eval_batch("query", ["q1", "q2"], QUERY_IDS["first"], FIRST), 0, 0)
    with pytest.raises(ConfigError, match="dataloader 0 mixes the sets 'first' and 'second'"):
        module.validation_step(eval_batch("doc", ["d1"], DOC_IDS[:1], SECOND), 1, 0)


def test_nothing_is_kept_during_the_sanity_check():
    module, logged = evaluating_module()
    module.trainer.sanity_checking = True
    module.validation_step(eval_batch("query", ["q1", "q2"], QUERY_IDS["first"], FIRST), 0, 0)
    module.on_validation_epoch_end()
    assert module.last_eval_metrics == {} and module.last_eval_step == -1 and logged == {}


# -- zero_shot_metrics through checkpoints -----------------------------------------------------------------------------
ZERO_SHOT = {"toy": {"ndcg@10": 0.25, "mrr@10": 0.5}, "mean": {"ndcg@10": 0.25, "mrr@10": 0.5}}




def trainer(max_steps: int) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", max_steps=max_steps, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)


def test_zero_shot_metrics_round_trip_through_a_checkpoint(tiny_bert_dir, tmp_path):
    torch.manual_seed(0)
    module = SpladeModule(SpladeEncoder(tiny_bert_dir), lr_warmup_steps=0)
    assert module.zero_shot_metrics is None
    module.zero_shot_metrics = ZERO_SHOT  # what the CLI sets after the validation before training
    first = trainer(1)
    first.fit(module, train_dataloaders=train_loader(tiny_bert_dir))
    path = tmp_path / "step1.ckpt"
    first.save_checkpoint(path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    assert checkpoint["splade_lightning"]["zero_shot_metrics"] == ZERO_SHOT

    resumed = SpladeModule(SpladeEncoder(tiny_bert_dir), lr_warmup_steps=0)
    second = trainer(2)
    second.fit(resumed, train_dataloaders=train_loader(tiny_bert_dir), ckpt_path=path)
    assert second.global_step == 2 and resumed.zero_shot_metrics == ZERO_SHOT  # no second zero-shot evaluation

    loaded = SpladeModule.load_from_checkpoint(path, encoder=SpladeEncoder(tiny_bert_dir))
    assert loaded.zero_shot_metrics == ZERO_SHOT


def test_a_run_without_zero_shot_metrics_saves_and_restores_none(tiny_bert_dir):
    module = SpladeModule(SpladeEncoder(tiny_bert_dir))
    checkpoint = {}
    module.on_save_checkpoint(checkpoint)  # no Trainer, no zero-shot evaluation
    assert checkpoint["splade_lightning"]["zero_shot_metrics"] is None
    module.zero_shot_metrics = ZERO_SHOT
    module.on_load_checkpoint({"splade_lightning": {"format_version": 1}})  # written before the field existed
    assert module.zero_shot_metrics == ZERO_SHOT  # nothing to restore: left as it is
    module.on_load_checkpoint(checkpoint)
    assert module.zero_shot_metrics is None


def test_sync_dist_warning_is_silenced_for_the_evaluation_keys_only():
    """Under DDP Lightning warns once per epoch-level key logged without ``sync_dist``; our evaluation figures are
    equal on every process, so their warnings go (a single H200 run printed 43 of them), others stay."""
    import warnings

    from lightning.pytorch.utilities.warnings import PossibleUserWarning

    from splade_lightning.systems.eval_buffer import quiet_sync_dist_warnings

    def lightning_warning(key):  # the text of lightning/pytorch/trainer/connectors/logger_connector/result.py
        warnings.warn(f"It is recommended to use `self.log({key!r}, ..., sync_dist=True)` when logging on epoch level "
                      "in distributed setting to accumulate the metric across devices.", PossibleUserWarning)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_sync_dist_warnings(["val/toy/ndcg@10", "val/ndcg@10"])
        for key in ("val/toy/ndcg@10", "val/ndcg@10", "val/toy/ndcg@100", "val/loss"):
            lightning_warning(key)
    assert [str(w.message).split("'")[1] for w in caught] == ["val/toy/ndcg@100", "val/loss"]
