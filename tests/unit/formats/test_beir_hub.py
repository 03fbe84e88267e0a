"""Hub evaluation sets (``hf://<owner>/<name>``, :mod:`splade_lightning.formats.beir_hub`), offline: the real
``datasets.load_dataset`` reads local copies laid out like the BEIR hub repositories (``<id>`` with ``corpus`` and
``queries`` configs, ``<id>-qrels`` with one TSV per split); only the id -> location step is redirected."""

import json

import pytest

from splade_lightning.data.arguments import as_beir_sets, check_eval_paths
from splade_lightning.errors import ConfigError, DataError
from splade_lightning.formats import beir_hub
from splade_lightning.formats.beir import BeirSet, load_beir, load_beir_set
from splade_lightning.formats.suite import SuiteEntry
from splade_lightning.problems import SkippedRecords

CONFIGS = """---
configs:
- config_name: corpus
  data_files:
  - split: corpus
    path: corpus.jsonl
- config_name: queries
  data_files:
  - split: queries
    path: queries.jsonl
---
"""


@pytest.fixture()
def hub_copy(tmp_path, toy_beir, monkeypatch):
    """``hf://toy/set`` as a local copy of the BEIR hub layout, made from ``toy_beir``; datasets caches under tmp."""
    repo, qrels = tmp_path / "hub" / "set", tmp_path / "hub" / "set-qrels"
    repo.mkdir(parents=True)
    qrels.mkdir()
    (repo / "README.md").write_text(CONFIGS)
    for name in ("corpus.jsonl", "queries.jsonl"):
        (repo / name).write_text((toy_beir / name).read_text())
    (qrels / "test.tsv").write_text((toy_beir / "qrels" / "test.tsv").read_text())
    (qrels / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq2\td3\t1\n")
    locations = {"toy/set": str(repo), "toy/set-qrels": str(qrels)}
    monkeypatch.setattr(beir_hub, "hub_source", lambda repo_id: locations.get(repo_id, repo_id))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", str(tmp_path / "cache"))
    return repo


def test_hub_set_equals_the_directory_it_was_made_from(hub_copy, toy_beir):
    data = load_beir_set(SuiteEntry("hf://toy/set", "test", None, 2, suite="s"))
    expected = load_beir(toy_beir)
    assert (data.corpus, data.queries, data.qrels) == (expected.corpus, expected.queries, expected.qrels)
    assert (data.name, data.path, data.split, data.min_relevance, data.suite) == ("set", "hf://toy/set", "test", 2, "s")
    dev = load_beir_set(BeirSet("hf://toy/set", "dev", "toy-dev"))
    assert dev.name == "toy-dev" and dev.qrels == {"q2": {"d3": 1}} and list(dev.queries) == ["q2"]


def test_bad_rows_are_named_by_dataset_and_row(hub_copy):
    rows = [json.loads(line) for line in (hub_copy / "corpus.jsonl").read_text().splitlines()]
    rows = [{**r, "_id": ""} if r["_id"] == "d6" else r for r in rows if r["_id"] != "d2"]  # d2 judged for q3
    (hub_copy / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as info:
        load_beir_set(BeirSet("hf://toy/set"))
    message = str(info.value)
    assert "hf://toy/set/corpus:5: field '_id': empty id" in message
    assert "hf://toy/set/qrels/test:5: field 'corpus-id': corpus id 'd2' is not in corpus.jsonl" in message
    skipped = SkippedRecords()
    data = load_beir_set(BeirSet("hf://toy/set"), "skip", skipped)  # on_bad_record: skip drops them and counts
    assert "q3" not in data.qrels and skipped.total == 2 and len(data.corpus) == 4


def test_unreachable_hub_is_a_clear_error(hub_copy):
    with pytest.raises(DataError) as info:
        load_beir_set(BeirSet("hf://nobody/not-cached"))
    message = str(info.value)
    assert "'nobody/not-cached'" in message and "hub is unreachable" in message and "BEIR directory" in message
    with pytest.raises(DataError, match=r"'toy/set-qrels' has no qrels split 'train'; its splits are \['test', "
                                        r"'validation'\]"):
        load_beir_set(BeirSet("hf://toy/set", "train"))


def test_hub_paths_are_checked_for_form_only(hub_copy):
    problems: list[str] = []
    sets = as_beir_sets([{"path": "hf://toy/set"}, {"path": "hf://not-an-id", "name": "x"}], "val_sets", problems)
    assert problems == []
    found = check_eval_paths([("val_sets", sets)])
    assert found == ["--data.init_args.val_sets[1]: 'hf://not-an-id': expected a hub dataset id of the form "
                     "hf://<owner>/<name>, e.g. hf://BeIR/scifact"]
    with pytest.raises(ConfigError):
        beir_hub.hub_repo_id("hf://a/b/c")
