"""RetrievalDataModule end to end on the toy fixtures and real data, argument checks, and a real Lightning fit."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from splade_lightning.data import BeirSet, RetrievalDataModule, TextTriplets
from splade_lightning.errors import ConfigError, DataErrors
from splade_lightning.types import EncodeBatch, TrainBatch

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def make(toy_triplets, toy_beir, tokenizer_dir, num_negatives=1, router_mapping=None, **kw) -> RetrievalDataModule:
    train = TextTriplets([str(toy_triplets)], negative_columns=["neg"], num_negatives=num_negatives,
                         router_mapping=router_mapping)
    args = dict(train=train, val_sets=[BeirSet(str(toy_beir), name="toy")], tokenizer=tokenizer_dir, batch_size=4,
                eval_batch_size=4, max_query_length=8, max_doc_length=16)
    return RetrievalDataModule(**{**args, **kw})


def test_train_batches(toy_triplets, toy_beir, tokenizer_dir):
    dm = make(toy_triplets, toy_beir, tokenizer_dir, num_negatives=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(loader) == len(batches) == 2
    for batch in batches:
        assert isinstance(batch, TrainBatch) and batch.num_negatives == 2
        assert batch.query_input_ids.shape[0] == 4 and batch.doc_input_ids.shape[0] == 12
        assert batch.doc_input_ids.shape[1] <= 16 and batch.query_input_ids.shape[1] <= 8


def test_val_loaders_cover_every_id_once(toy_triplets, toy_beir, tokenizer_dir):
    dm = make(toy_triplets, toy_beir, tokenizer_dir, val_sets=[BeirSet(str(toy_beir), name="a"),
                                                              BeirSet(str(toy_beir), name="b", min_relevance=2)])
    dm.setup("validate")
    assert dm.eval_set_names("validate") == ["a", "b"] and dm.eval_data("validate", 1).min_relevance == 2
    loaders = dm.val_dataloader()
    assert len(loaders) == 2
    for idx, loader in enumerate(loaders):
        data = dm.eval_data("validate", idx)
        batches = list(loader)
        assert len(batches) == len(loader) and all(isinstance(b, EncodeBatch) for b in batches)
        kinds = [b.kind for b in batches]
        assert kinds == sorted(kinds, key=lambda k: k != "query")  # all queries first
        query_ids = [i for b in batches if b.kind == "query" for i in b.ids]
        doc_ids = [i for b in batches if b.kind == "doc" for i in b.ids]
        assert sorted(query_ids) == sorted(data.queries) and sorted(doc_ids) == sorted(data.corpus)
        lengths = [len(data.corpus[d]) for d in doc_ids]
        assert lengths == sorted(lengths, reverse=True) and {b.dataset for b in batches} == {data.name}
        assert all(b.eval_set is data for b in batches)  # the set travels with its batches
        assert all(b.input_ids.shape[1] <= (8 if b.kind == "query" else 16) for b in batches)


def test_eval_set_travels_with_batches_from_worker_processes(toy_triplets, toy_beir, tokenizer_dir):
    dm = make(toy_triplets, toy_beir, tokenizer_dir, num_workers=1,
              val_sets=[BeirSet(str(toy_beir), name="a"), BeirSet(str(toy_beir), name="b", max_queries=1)])
    dm.setup("validate")
    for idx, loader in enumerate(dm.val_dataloader()):
        batches = list(loader)
        data = dm.eval_data("validate", idx)
        assert batches and all(b.eval_set is data for b in batches)  # attached in this process, not pickled
        assert batches[0].to("cpu").eval_set is data
    assert len(dm.eval_data("validate", 1).queries) == 1


def test_no_eval_sets_gives_empty_lists(toy_triplets, toy_beir, tokenizer_dir):
    dm = make(toy_triplets, toy_beir, tokenizer_dir, val_sets=None)
    dm.setup("fit")
    assert dm.val_dataloader() == [] and dm.test_dataloader() == [] and dm.eval_set_names("test") == []
    with pytest.raises(ValueError, match="stage"):
        dm.eval_set_names("val")


def test_init_checks_collected(tmp_path, monkeypatch, toy_beir):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        sets = [BeirSet(str(toy_beir)), BeirSet(str(toy_beir), split="dev"), BeirSet("nowhere"),
                BeirSet(str(toy_beir), "x", max_queries=0)]
        RetrievalDataModule(TextTriplets(["missing.jsonl"], negative_columns=None, num_negatives=1), batch_size=0,
                            max_doc_length=-1, val_sets=sets)
    message = str(info.value)
    train = "--data.init_args.train.init_args"
    for expected in (f"{train}.files", "missing.jsonl", str(tmp_path), f"{train}.num_negatives: is 1 but",
                     "--data.init_args.batch_size", "--data.init_args.max_doc_length",
                     "--data.init_args.val_sets: set names must be unique", "--data.init_args.val_sets[1]",
                     "split 'dev'", "['test']", "--data.init_args.val_sets[2]", "nowhere",
                     "--data.init_args.val_sets[3].max_queries: must be an int >= 1"):
        assert expected in message, expected
    with pytest.raises(ConfigError, match=f"num_negatives: is 0 but {train}.negative_columns"):
        RetrievalDataModule(TextTriplets([str(tmp_path)], negative_columns=["neg"], num_negatives=0))
    with pytest.raises(ConfigError, match=r"train.init_args.files: must be a non-empty list"):
        RetrievalDataModule(TextTriplets([], num_negatives=0))
    with pytest.raises(ConfigError, match=r"--data.init_args.train: expected a training source"):
        RetrievalDataModule(train=["train.jsonl"])
    RetrievalDataModule(val_sets=[BeirSet(str(toy_beir))])  # evaluation only: no training source needed


def test_setup_collects_all_file_problems(tmp_path, toy_beir, tokenizer_dir):
    train = tmp_path / "bad.jsonl"
    train.write_text('{"query": "", "pos": "p", "neg": "n"}\n')
    with open(toy_beir / "qrels" / "test.tsv", "a") as f:
        f.write("q1\tghost\t1\n")
    dm = RetrievalDataModule(TextTriplets([str(train)], negative_columns=["neg"]), val_sets=[BeirSet(str(toy_beir))],
                             tokenizer=tokenizer_dir)
    with pytest.raises(DataErrors) as info:
        dm.setup("fit")
    assert [(Path(e.path).name, e.line, e.field) for e in info.value.errors] == [
        ("bad.jsonl", 1, "query"), ("test.tsv", 7, "corpus-id")]


def test_training_set_smaller_than_a_batch(toy_triplets, toy_beir, tokenizer_dir, caplog):
    dm = make(toy_triplets, toy_beir, tokenizer_dir, num_negatives=3, batch_size=2)
    with caplog.at_level(logging.INFO), pytest.raises(ConfigError, match="0 usable"):
        dm.setup("fit")
    assert [r.levelno for r in caplog.records if "skipped 8 training record" in r.getMessage()] == [logging.INFO]
    with pytest.raises(ConfigError, match="--data.init_args.train: required to fit"):
        RetrievalDataModule(tokenizer=tokenizer_dir).setup("fit")


def test_tokenizer_is_an_explicit_argument(toy_triplets, toy_beir, tokenizer_dir):
    dm = make(toy_triplets, toy_beir, tokenizer_dir, tokenizer=None)
    dm.trainer = SimpleNamespace(lightning_module=SimpleNamespace(tokenizer_name_or_path=tokenizer_dir),
                                 world_size=2, global_rank=1, current_epoch=3)
    with pytest.raises(ConfigError, match=r"--data.init_args.tokenizer: not set; `splade-lightning fit` fills it from "
                                          r"the model \(model.tokenizer_name_or_path\)"):
        dm.setup("fit")  # never taken from the trainer's module
    dm.tokenizer = tokenizer_dir
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert (loader.batch_sampler.num_replicas, loader.batch_sampler.rank, dm.train_dataset.epoch) == (2, 1, 3)
    assert len(loader) == 1 and next(iter(loader)).batch_size == 4


def test_source_and_beir_sets_from_yaml_via_jsonargparse(toy_triplets, toy_beir, tokenizer_dir):
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(RetrievalDataModule, "data")
    train = {"class_path": "splade_lightning.data.TextTriplets",
             "init_args": {"files": [str(toy_triplets)], "negative_columns": ["neg"], "sampling": "first"}}
    config = json.dumps({"data": {"train": train, "tokenizer": tokenizer_dir,
                                  "val_sets": [{"path": str(toy_beir), "split": "test", "min_relevance": 2,
                                                "max_queries": 2}]}})
    dm = parser.instantiate_classes(parser.parse_string(config)).data
    assert isinstance(dm.train, TextTriplets) and dm.train.sampling == "first" and dm.train.files == [str(toy_triplets)]
    assert isinstance(dm.sets["validate"][0], BeirSet) and dm.eval_set_names("validate") == ["toy_beir"]
    assert dm.eval_data("validate", 0).min_relevance == 2 and len(dm.eval_data("validate", 0).queries) == 2
    with pytest.raises(Exception, match="sampling"):  # Literal choices are checked by the parser
        parser.parse_string(json.dumps({"data": {"train": {**train, "init_args": {"files": ["x"], "sampling": "x"}}}}))


class _Recorder:
    """A minimal LightningModule recording what the loops hand it (built lazily: lightning is heavy)."""

    @staticmethod
    def build(tokenizer_dir):
        import lightning.pytorch as pl

        class Recorder(pl.LightningModule):
            tokenizer_name_or_path = tokenizer_dir

            def __init__(self):
                super().__init__()
                self.weight = torch.nn.Parameter(torch.zeros(1))
                self.train_queries, self.eval_ids = [], {}

            def training_step(self, batch, batch_idx):
                assert isinstance(batch, TrainBatch)
                self.train_queries.append((self.current_epoch, batch.query_input_ids[:, 1].tolist()))
                return self.weight.sum() * 0 + batch.doc_input_ids.float().mean() * 0

            def validation_step(self, batch, batch_idx, dataloader_idx=0):
                self.eval_ids.setdefault((self.current_epoch, dataloader_idx), []).extend(batch.ids)

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

        return Recorder()


def test_real_trainer_fit_sets_epochs(toy_triplets, toy_beir, tokenizer_dir):
    import lightning.pytorch as pl

    module = _Recorder.build(tokenizer_dir)
    dm = make(toy_triplets, toy_beir, tokenizer_dir)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=dm)
    epochs = [e for e, _ in module.train_queries]
    assert epochs == [0, 0, 1, 1]
    assert module.train_queries[:2] != module.train_queries[2:]  # a new order in epoch 1: set_epoch reached us
    data = dm.eval_data("validate", 0)
    assert sorted(module.eval_ids[(0, 0)]) == sorted([*data.queries, *data.corpus])


@pytest.mark.skipif(not (SHARED / "hotpotqa-distractor-500" / "train.jsonl").is_file(), reason="no shared data")
def test_real_hotpotqa_smoke(tokenizer_dir, caplog):
    train = TextTriplets([str(SHARED / "hotpotqa-distractor-500" / "train.jsonl")], positive_column="pos",
                         negative_columns=["neg"], num_negatives=1)
    dm = RetrievalDataModule(train, tokenizer=tokenizer_dir, batch_size=16, max_doc_length=64)
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
    assert any("skipped 7 training record" in r.getMessage() for r in caplog.records)  # 7 have no mined negatives
    loader = dm.train_dataloader()
    assert len(loader) == 493 // 16
    batch = next(iter(loader))
    assert batch.doc_input_ids.shape == (32, 64) and batch.num_negatives == 1


def test_router_mapping_stamps_routes_on_batches(toy_triplets, toy_beir, tokenizer_dir):
    default = make(toy_triplets, toy_beir, tokenizer_dir)
    default.setup("fit")
    batch = next(iter(default.train_dataloader()))
    assert (batch.query_route, batch.doc_route) == ("query", "document")
    swapped = make(toy_triplets, toy_beir, tokenizer_dir,
                   router_mapping={"query": "document", "pos": "document", "neg": "document"})
    swapped.setup("fit")
    batch = next(iter(swapped.train_dataloader()))
    assert (batch.query_route, batch.doc_route) == ("document", "document")


@pytest.mark.parametrize(("mapping", "message"), [
    ({"query": "query", "pos": "document"}, r"no route for column\(s\) \['neg'\]"),
    ({"query": "query", "pos": "document", "neg": "document", "title": "document"}, "'title' is not a training"),
    ({"query": "query", "pos": " ", "neg": " "}, r"router_mapping.pos: route ' ': expected a route name"),
    ({"query": "query", "pos": "document", "neg": "query"}, "go to different routes"),
])
def test_bad_router_mapping_is_named(toy_triplets, toy_beir, tokenizer_dir, mapping, message):
    with pytest.raises(ConfigError, match=message):
        make(toy_triplets, toy_beir, tokenizer_dir, router_mapping=mapping)


def test_evaluation_query_length_is_its_own(toy_triplets, toy_beir, tokenizer_dir, tmp_path):
    """``eval_max_query_length`` truncates evaluation queries (training ones keep ``max_query_length``) and is the
    query length of the exported model; unset, both are ``max_query_length``."""
    from splade_lightning.serialization.checkpoint import inference_lengths

    long_beir = tmp_path / "long"
    (long_beir / "qrels").mkdir(parents=True)
    (long_beir / "corpus.jsonl").write_text('{"_id": "d", "title": "", "text": "a document"}\n')
    (long_beir / "queries.jsonl").write_text('{"_id": "q", "text": "' + " ".join(["word"] * 40) + '"}\n')
    (long_beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\td\t1\n")
    widths = {}
    for eval_length in (None, 24):
        dm = make(toy_triplets, toy_beir, tokenizer_dir, val_sets=[BeirSet(str(long_beir))],
                  eval_max_query_length=eval_length)
        dm.setup("fit")
        widths[eval_length] = [b.input_ids.shape[1] for b in dm.val_dataloader()[0] if b.kind == "query"][0]
        assert max(b.query_input_ids.shape[1] for b in dm.train_dataloader()) <= 8
        assert inference_lengths(dm) == {"max_query_length": eval_length or 8, "max_doc_length": 16}
    assert widths == {None: 8, 24: 24}
    with pytest.raises(ConfigError, match="eval_max_query_length"):
        make(toy_triplets, toy_beir, tokenizer_dir, eval_max_query_length=0)


def test_pad_to_multiple_of_reaches_the_batches_and_is_checked(toy_triplets, toy_beir, tokenizer_dir):
    shapes = {}
    for multiple in (None, 4):
        dm = make(toy_triplets, toy_beir, tokenizer_dir, pad_to_multiple_of=multiple, max_query_length=32,
                  max_doc_length=32)
        dm.setup("fit")
        shapes[multiple] = [(b.query_input_ids.shape[1], b.doc_input_ids.shape[1]) for b in dm.train_dataloader()]
    assert all(q % 4 == 0 and d % 4 == 0 for q, d in shapes[4])
    assert [(-(-q // 4) * 4, -(-d // 4) * 4) for q, d in shapes[None]] == shapes[4]
    assert any(q % 4 or d % 4 for q, d in shapes[None])  # the toy data does need the padding
    with pytest.raises(ConfigError, match=r"--data.init_args.pad_to_multiple_of: must be an int > 0, got -8"):
        make(toy_triplets, toy_beir, tokenizer_dir, pad_to_multiple_of=-8)
