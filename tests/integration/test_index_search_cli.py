"""``index`` -> ``search`` through the real CLI: runs match in-memory evaluation, resume, argument errors, seismic."""

import json

import pytest
import torch

import splade_lightning
from splade_lightning.errors import DataError
from splade_lightning.formats.beir import load_beir
from splade_lightning.formats.index_store import load_index, shard_files
from splade_lightning.retrieval.evaluation import evaluate_retrieval
from splade_lightning.retrieval.exact import exact_search, to_run
from splade_lightning.tools.main import main


def cli(*args):
    exit_info = main(list(args))
    return exit_info


def read_run(path):
    run = {}
    for line in path.read_text().splitlines():
        qid, _, did, _, score, _ = line.split()
        run.setdefault(qid, {})[did] = float(score)
    return run


def index_args(model, corpus, output, *extra):
    return ("index", "--model", model, "--corpus", str(corpus), "--output", str(output), "--max_doc_length", "32",
            "--batch_size", "4", "--no_progress", *extra)


def search_args(model, index, queries, output, *extra):
    return ("search", "--index", str(index), "--queries", str(queries), "--model", model, "--output", str(output),
            "--max_query_length", "16", "--k", "10", "--no_progress", *extra)


def assert_same_run(actual, expected):
    assert actual.keys() == expected.keys()
    for qid in expected:
        assert actual[qid].keys() == expected[qid].keys()
        for did, score in expected[qid].items():
            assert actual[qid][did] == pytest.approx(score, rel=1e-4, abs=1e-5)


def test_index_then_exact_search_matches_in_memory_retrieval(tmp_path, tiny_bert_dir, toy_beir):
    index, run_file = tmp_path / "idx", tmp_path / "run.trec"
    assert cli(*index_args(tiny_bert_dir, toy_beir, index, "--shard_size", "4")) == 0
    assert json.loads((index / "index.json").read_text())["complete"]
    assert cli(*search_args(tiny_bert_dir, index, toy_beir, run_file)) == 0

    model = splade_lightning.load(tiny_bert_dir)
    model.max_query_length, model.max_doc_length = 16, 32
    data = load_beir(toy_beir)
    query_reps = model.encode_query(list(data.queries.values()))
    doc_reps = model.encode_document(list(data.corpus.values()))
    result = evaluate_retrieval(list(data.queries), query_reps, list(data.corpus), doc_reps, data.qrels, k=10,
                                measures=("ndcg@10",))
    scores, indices = exact_search(query_reps, doc_reps, 10)
    direct = to_run(list(data.queries), list(data.corpus), scores, indices)
    actual = read_run(run_file)
    assert_same_run(actual, result.run)
    assert_same_run(actual, direct)
    stored = load_index(index)
    assert stored.ids == list(data.corpus)
    torch.testing.assert_close(stored.to_torch().to_dense(), doc_reps.to_dense(), rtol=1e-4, atol=1e-5)


def test_interrupted_index_completes_without_recomputing_finished_shards(tmp_path, tiny_bert_dir, toy_beir):
    index = tmp_path / "idx"
    assert cli(*index_args(tiny_bert_dir, toy_beir, index, "--shard_size", "2")) == 0
    kept = shard_files(index, 0)["values"].stat().st_mtime_ns
    for path in shard_files(index, 1).values():
        path.unlink()
    values = shard_files(index, 2)["values"]
    values.write_bytes(values.read_bytes()[:-3])
    with pytest.raises(DataError, match="missing or corrupt"):
        load_index(index)
    assert cli(*index_args(tiny_bert_dir, toy_beir, index, "--shard_size", "2")) == 0
    assert shard_files(index, 0)["values"].stat().st_mtime_ns == kept
    assert len(load_index(index).ids) == 6


def test_other_settings_need_overwrite(tmp_path, tiny_bert_dir, toy_beir, capsys):
    index = tmp_path / "idx"
    assert cli(*index_args(tiny_bert_dir, toy_beir, index)) == 0
    assert cli(*index_args(tiny_bert_dir, toy_beir, index, "--top_k_prune", "5")) == 2
    assert "top_k_prune: None -> 5" in capsys.readouterr().err
    assert cli(*index_args(tiny_bert_dir, toy_beir, index, "--top_k_prune", "5", "--overwrite")) == 0
    stored = load_index(index)
    assert (stored.indptr[1:] - stored.indptr[:-1]).max() <= 5


@pytest.mark.parametrize("args, message", [
    (("--batch_size", "0"), "--batch_size must be >= 1"),
    (("--top_k_prune", "-1"), "--top_k_prune must be >= 1"),
])
def test_bad_index_args_exit_2(tmp_path, tiny_bert_dir, toy_beir, capsys, args, message):
    assert cli(*index_args(tiny_bert_dir, toy_beir, tmp_path / "idx", *args)) == 2
    assert message in capsys.readouterr().err


def test_bad_search_args_exit_2(tmp_path, tiny_bert_dir, toy_beir, capsys):
    assert cli(*search_args(tiny_bert_dir, tmp_path / "nothing", toy_beir, tmp_path / "r.trec")) == 2
    assert "--index" in capsys.readouterr().err
    index = tmp_path / "idx"
    assert cli(*index_args(tiny_bert_dir, toy_beir, index)) == 0
    assert cli(*search_args(tiny_bert_dir, index, toy_beir, tmp_path / "r.trec", "--k", "0")) == 2
    assert "--k must be >= 1" in capsys.readouterr().err
    assert cli(*search_args(tiny_bert_dir, index, tmp_path / "missing", tmp_path / "r.trec")) == 2
    assert "--queries" in capsys.readouterr().err
    assert cli(*search_args(tiny_bert_dir, index, toy_beir, tmp_path / "r.trec", "--method", "bm25")) == 2


def test_seismic_recall_against_exact(tmp_path, tiny_bert_dir, toy_beir):
    pytest.importorskip("seismic")
    index = tmp_path / "idx"
    # the random tiny model's vectors are ~90% dense; Seismic's summaries of dense vectors take minutes, so keep
    # each document's 64 largest weights (a trained SPLADE model's documents have about that many)
    assert cli(*index_args(tiny_bert_dir, toy_beir, index, "--top_k_prune", "64")) == 0
    assert cli(*search_args(tiny_bert_dir, index, toy_beir, tmp_path / "exact.trec")) == 0
    assert cli(*search_args(tiny_bert_dir, index, toy_beir, tmp_path / "s.trec", "--method", "seismic")) == 0
    assert (index / "seismic" / "key.json").is_file()
    assert cli(*search_args(tiny_bert_dir, index, toy_beir, tmp_path / "s2.trec", "--method", "seismic")) == 0
    exact, approx = read_run(tmp_path / "exact.trec"), read_run(tmp_path / "s.trec")
    hits = sum(len(set(exact[q]) & set(approx.get(q, {}))) for q in exact)
    assert hits / sum(len(exact[q]) for q in exact) >= 0.8
    assert read_run(tmp_path / "s2.trec") == approx


def test_index_reads_a_saved_hf_dataset(tmp_path, tiny_bert_dir, toy_beir):
    from datasets import Dataset

    data = load_beir(toy_beir)
    rows = [json.loads(line) for line in (toy_beir / "corpus.jsonl").read_text().splitlines()]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "hf_corpus"))
    assert cli(*index_args(tiny_bert_dir, tmp_path / "hf_corpus", tmp_path / "hf_idx")) == 0
    assert cli(*index_args(tiny_bert_dir, toy_beir, tmp_path / "jsonl_idx")) == 0
    from_hf, from_jsonl = load_index(tmp_path / "hf_idx"), load_index(tmp_path / "jsonl_idx")
    assert from_hf.ids == from_jsonl.ids == list(data.corpus)
    torch.testing.assert_close(from_hf.to_torch().to_dense(), from_jsonl.to_torch().to_dense())


def test_hf_dataset_without_text_column_is_an_error(tmp_path, tiny_bert_dir, capsys):
    from datasets import Dataset

    Dataset.from_list([{"_id": "d1", "body": "x"}]).save_to_disk(str(tmp_path / "bad"))
    assert cli(*index_args(tiny_bert_dir, tmp_path / "bad", tmp_path / "idx")) == 2
    assert "'text'" in capsys.readouterr().err


@pytest.mark.slow
def test_index_with_two_ddp_processes_equals_one_process(tmp_path, tiny_bert_dir, toy_beir):
    """`index --devices 2` (two CPU processes, gloo) writes the same documents, ids and vectors as one process."""
    import subprocess
    import sys

    def run(output, *extra):
        command = [sys.executable, "-m", "splade_lightning", *index_args(tiny_bert_dir, toy_beir, output)[:-1],
                   "--shard_size", "2", "--no_progress", *extra]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]

    run(tmp_path / "one")
    run(tmp_path / "two", "--devices", "2", "--accelerator", "cpu")
    one, two = load_index(tmp_path / "one"), load_index(tmp_path / "two")
    assert two.ids == one.ids and len(json.loads((tmp_path / "two" / "index.json").read_text())["shards"]) == 3
    torch.testing.assert_close(two.to_torch().to_dense(), one.to_torch().to_dense(), rtol=1e-4, atol=1e-5)
