"""STS sets of the data module (val_sts_sets / test_sts_sets): checked before any file is read, loaded into one
document-only loader per set after the BEIR sets' loaders; the mean over sets keeps the two kinds apart."""

import json

import pytest

from splade_lightning.data.arguments import DATA
from splade_lightning.data.sts_arguments import as_sts_sets
from splade_lightning.errors import ConfigError
from splade_lightning.formats.sts import StsData, StsSet
from splade_lightning.systems.eval_buffer import mean_by_kind

PAIRS = [{"sentence1": "a cat sits", "sentence2": "a cat is sitting", "score": 4.8},
         {"sentence1": "dogs bark", "sentence2": "the stock market fell", "score": 0.2},
         {"sentence1": "a man plays guitar", "sentence2": "a man plays an instrument", "score": 3.5}]


@pytest.fixture()
def sts_file(tmp_path):
    path = tmp_path / "sts" / "pairs.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    return path


def test_entries_are_checked_and_named(sts_file):
    problems = []
    sets = as_sts_sets([{"path": str(sts_file), "similarity": "cosine"}, StsSet(str(sts_file), name="again")],
                       "val_sts_sets", problems, DATA, taken=["toy"])
    assert problems == [] and [type(s) for s in sets] == [StsSet, StsSet]
    assert [s.display_name for s in sets] == ["sts-pairs", "again"] and sets[0].similarity == "cosine"


def test_bad_entries_name_the_flag(tmp_path, sts_file, toy_beir):
    problems = []
    as_sts_sets([{"path": str(sts_file), "split": "dev"},
                 {"path": str(sts_file), "similarity": "euclid", "name": "a/b"},
                 {"path": str(sts_file), "score_column": "sentence1"},
                 {"path": str(tmp_path / "nope.jsonl")},
                 {"path": str(toy_beir)}], "val_sts_sets", problems, DATA)
    text = "\n".join(problems)
    assert "--data.init_args.val_sts_sets[0]:" in text and "'split'" in text and "expected keys path, name" in text
    assert "--data.init_args.val_sts_sets[1].similarity: must be one of ['dot', 'cosine'], got 'euclid'" in text
    assert "--data.init_args.val_sts_sets[1].name: must be a non-empty string without '/'" in text
    assert "--data.init_args.val_sts_sets[2]: sentence1_column, sentence2_column and score_column must differ" in text
    assert "--data.init_args.val_sts_sets[3].path:" in text and "STS file not found" in text
    assert "--data.init_args.val_sts_sets[4].path:" in text and "is a directory" in text


def test_duplicate_names_across_kinds(sts_file):
    problems = []
    as_sts_sets([{"path": str(sts_file), "name": "x"}], "test_sts_sets", problems, DATA, taken=["x"])
    assert problems and "set names must be unique across the stage's BEIR and STS sets, got duplicates ['x']" in \
        problems[0]


def test_datamodule_builds_a_document_loader_per_sts_set(toy_beir, sts_file, tokenizer_dir):
    from splade_lightning.data import RetrievalDataModule

    dm = RetrievalDataModule(val_sets=[{"path": str(toy_beir), "name": "toy"}],
                             val_sts_sets=[{"path": str(sts_file), "name": "pairs"}],
                             tokenizer=tokenizer_dir, eval_batch_size=4, eval_max_doc_length=8)
    dm.setup("validate")
    assert dm.eval_set_names("validate") == ["toy", "pairs"]
    beir_loader, sts_loader = dm.val_dataloader()
    batches = list(sts_loader)
    assert [len(b.ids) for b in batches] == [4, 2] and {b.kind for b in batches} == {"doc"}
    assert all(isinstance(b.eval_set, StsData) and b.eval_set.name == "pairs" for b in batches)
    assert sorted(i for b in batches for i in b.ids) == ["1:0", "1:1", "1:2", "2:0", "2:1", "2:2"]
    assert max(b.input_ids.shape[1] for b in batches) <= 8
    assert {b.kind for b in beir_loader} == {"query", "doc"}


def test_bad_sts_rows_fail_setup_with_file_line_or_are_skipped(tmp_path, tokenizer_dir, sts_file):
    from splade_lightning.data import RetrievalDataModule
    from splade_lightning.errors import DataErrors

    with sts_file.open("a") as f:
        f.write('{"sentence1": "x", "sentence2": "y", "score": "high"}\n')
    dm = RetrievalDataModule(val_sts_sets=[{"path": str(sts_file)}], tokenizer=tokenizer_dir)
    with pytest.raises(DataErrors, match=f"{sts_file}:4: field 'score': expected a number"):
        dm.setup("validate")
    dm = RetrievalDataModule(val_sts_sets=[{"path": str(sts_file)}], tokenizer=tokenizer_dir,
                             on_bad_record="skip")
    dm.setup("validate")
    assert len(dm.eval_datasets("validate")[0].scores) == 3 and dm.skipped_records.total == 1


def test_bad_entry_raises_before_reading(tmp_path):
    from splade_lightning.data import RetrievalDataModule

    with pytest.raises(ConfigError, match=r"test_sts_sets\[0\]\.path: .*STS file not found"):
        RetrievalDataModule(test_sts_sets=[{"path": str(tmp_path / "missing.jsonl")}])


def test_mean_by_kind_keeps_retrieval_and_sts_apart():
    results = {"a": {"ndcg@10": 0.2, "active_dims_doc": 10.0}, "b": {"ndcg@10": 0.4, "active_dims_doc": 30.0},
               "s": {"spearman": 0.5, "pearson": 0.6, "active_dims": 7.0, "sparsity_ratio": 0.9}}
    mean = mean_by_kind(results)
    assert mean == pytest.approx({"ndcg@10": 0.3, "active_dims_doc": 20.0, "spearman": 0.5, "pearson": 0.6,
                                  "active_dims": 7.0, "sparsity_ratio": 0.9})
    assert mean_by_kind({"a": results["a"]}) == results["a"]
