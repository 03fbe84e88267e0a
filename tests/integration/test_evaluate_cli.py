"""``python -m splade_lightning evaluate``: model mode, suite mode and run mode through the real CLI entry point."""

import json
import shutil

import pytest
import torch

import splade_lightning
from splade_lightning.formats.beir import load_beir
from splade_lightning.metrics.ir import retrieval_metrics
from splade_lightning.retrieval.evaluation import evaluate_retrieval
from splade_lightning.tools.main import main

MEASURES = ["ndcg@10", "mrr@10", "recall@100", "map"]


def run(args, capsys=None):
    exit_info = main(["evaluate", *args])
    return exit_info


def test_model_mode_equals_evaluate_retrieval(toy_beir, tiny_bert_dir, tmp_path, capsys):
    out, trec = tmp_path / "eval.json", tmp_path / "run.trec"
    assert run(["--model", tiny_bert_dir, "--data", str(toy_beir), "--measures", ",".join(MEASURES),
                "--max_query_length", "16", "--max_doc_length", "32", "--batch_size", "4", "--no_progress",
                "--output", str(out), "--run_output", str(trec)]) == 0
    got = json.loads(out.read_text())
    model = splade_lightning.load(tiny_bert_dir)
    model.max_query_length, model.max_doc_length = 16, 32
    data = load_beir(toy_beir)
    with torch.inference_mode():
        expected = evaluate_retrieval(list(data.queries), model.encode_query(list(data.queries.values())),
                                      list(data.corpus), model.encode_document(list(data.corpus.values())),
                                      data.qrels, 1, 1000, MEASURES)
    for key in [*MEASURES, "active_dims_query", "active_dims_doc", "flops"]:
        assert got[key] == pytest.approx(expected.metrics[key], rel=1e-6), key
    assert got["dataset"] == "toy_beir" and got["split"] == "test" and got["model"] == tiny_bert_dir
    assert set(got["timings"]) >= {"encode_queries", "encode_docs", "search", "total"}
    assert "| toy_beir |" in capsys.readouterr().out
    # the written run scores the same through run mode
    assert run(["--run", str(trec), "--qrels", str(toy_beir / "qrels" / "test.tsv"), "--measures",
                ",".join(MEASURES), "--output", str(out)]) == 2  # an existing file needs --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert run(["--run", str(trec), "--qrels", str(toy_beir / "qrels" / "test.tsv"), "--measures",
                ",".join(MEASURES), "--output", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["runs"][str(trec)]["ndcg@10"] == pytest.approx(expected.metrics["ndcg@10"])


def test_suite_mode_mean_equals_each(toy_beir, tiny_bert_dir, tmp_path, capsys):
    suite = tmp_path / "suite"
    for name in ("alpha", "beta"):
        shutil.copytree(toy_beir, suite / name)
    out = tmp_path / "suite.json"
    assert run(["--model", tiny_bert_dir, "--data", str(suite), "--measures", "ndcg@10,mrr@10", "--k", "10",
                "--no_progress", "--output", str(out), "--run_output", str(tmp_path / "runs")]) == 0
    got = json.loads(out.read_text())
    assert set(got["datasets"]) == {"alpha", "beta"}
    for key in ("ndcg@10", "mrr@10", "active_dims_doc", "flops"):
        assert got["mean"][key] == pytest.approx(got["datasets"]["alpha"][key])
        assert got["mean"][key] == pytest.approx(got["datasets"]["beta"][key])
    assert (tmp_path / "runs" / "alpha.trec").is_file() and (tmp_path / "runs" / "beta.trec").is_file()
    table = capsys.readouterr().out
    assert "| alpha |" in table and "| beta |" in table and "| mean |" in table


def _write_run(path, run):
    lines = [f"{q} Q0 {d} {rank} {s} t\n" for q, docs in run.items()
             for rank, (d, s) in enumerate(sorted(docs.items(), key=lambda x: -x[1]), start=1)]
    path.write_text("".join(lines))
    return path


RUN_A = {"q1": {"d1": 3.0, "d2": 2.0, "d4": 1.0}, "q2": {"d5": 2.0, "d3": 1.0}, "q3": {"d6": 1.0, "d2": 0.5}}
RUN_B = {"q1": {"d4": 3.0, "d1": 2.0}, "q2": {"d3": 2.0, "d5": 1.0}, "q3": {"d2": 1.0}}


def test_run_mode_equals_retrieval_metrics(toy_beir, tmp_path):
    qrels_path = toy_beir / "qrels" / "test.tsv"
    path, out = _write_run(tmp_path / "a.trec", RUN_A), tmp_path / "a.json"
    assert run(["--run", str(path), "--qrels", str(qrels_path), "--min_relevance", "2", "--output",
                str(out)]) == 0
    qrels = load_beir(toy_beir).qrels
    expected = retrieval_metrics(RUN_A, qrels, 2, ["ndcg@10", "mrr@10", "recall@100", "recall@1000", "map"])
    assert json.loads(out.read_text())["runs"][str(path)] == pytest.approx(expected)
    # TREC-format qrels give the same numbers
    trec_qrels = tmp_path / "qrels.txt"
    trec_qrels.write_text("".join(f"{q} 0 {d} {g}\n" for q, docs in qrels.items() for d, g in docs.items()))
    assert run(["--run", str(path), "--qrels", str(trec_qrels), "--min_relevance", "2", "--output",
                str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["runs"][str(path)] == pytest.approx(expected)


def test_two_runs_significance(toy_beir, tmp_path, capsys):
    qrels_path = str(toy_beir / "qrels" / "test.tsv")
    a, b = _write_run(tmp_path / "a.trec", RUN_A), _write_run(tmp_path / "b.trec", RUN_B)
    copy = tmp_path / "a_copy.trec"
    shutil.copy(a, copy)
    out = tmp_path / "sig.json"
    assert run(["--run", str(a), str(copy), "--qrels", qrels_path, "--output", str(out)]) == 0
    same = json.loads(out.read_text())["significance"]["measures"]
    for row in same.values():
        assert row["delta"] == 0 and row["t_test_p"] == 1.0 and row["randomisation_p"] == 1.0
    assert run(["--run", str(a), str(b), "--qrels", qrels_path, "--alpha", "0.05", "--permutations", "100",
                "--output", str(out), "--overwrite"]) == 0
    rows = json.loads(out.read_text())["significance"]["measures"]
    assert set(rows["ndcg@10"]) >= {"mean_a", "mean_b", "delta", "t_test_p", "randomisation_p", "significant"}
    assert rows["ndcg@10"]["queries"] == 3 and rows["ndcg@10"]["significant"] is False
    assert "randomisation p" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--model", "splade-tiny", "--data", "{beir}", "--measures", "ndcg@10,bleu"], "unknown measure 'bleu'"),
    (["--model", "splade-tiny", "--data", "{beir}", "--k", "50"], "--k 50 is smaller than the cut-off of recall@100"),
    (["--model", "splade-tiny", "--data", "{tmp}/nope"], "not a directory"),
    (["--model", "{tmp}/missing_model", "--data", "{beir}"], "neither an existing path"),
    (["--model", "splade-tiny", "--run", "{tmp}/a.trec", "--data", "{beir}"], "not both"),
    (["--run", "{tmp}/a.trec", "--qrels", "{qrels}", "--k", "10"], "--k only applies with --model"),
    (["--run", "{tmp}/a.trec"], "--run needs --qrels"),
    (["--run", "{tmp}/a.trec", "--qrels", "{qrels}", "--alpha", "0.05"], "need two runs"),
    (["--run", "{tmp}/missing.trec", "--qrels", "{qrels}"], "is not a file"),
    (["--model", "splade-tiny", "--data", "{beir}", "--batch_size", "0", "--min_relevance", "0"],
     "--min_relevance must be >= 1, got 0; --batch_size must be >= 1"),
    (["--model", "splade-tiny", "--data", "{beir}", "--output", "{tmp}"], "contains --data"),
    (["--model", "splade-tiny", "--data", "{beir}", "--output", "{beir}/corpus.jsonl"],
     "which this command reads"),
    (["--model", "splade-tiny", "--data", "{beir}", "--output", "{beir}/qrels"], "which this command reads"),
    (["--model", "splade-tiny", "--data", "{beir}", "--output", "{tmp}/a.trec"], "exists; pass --overwrite"),
    (["--model", "splade-tiny", "--data", "{beir}", "--device", "cuda:7"], "--device cuda:7"),
])
def test_bad_arguments_exit_2_before_loading(toy_beir, tmp_path, capsys, monkeypatch, args, message):
    import splade_lightning.api

    monkeypatch.setattr(splade_lightning.api, "load", lambda *a, **k: pytest.fail("model loaded"))
    _write_run(tmp_path / "a.trec", RUN_A)
    fill = {"{beir}": str(toy_beir), "{tmp}": str(tmp_path), "{qrels}": str(toy_beir / "qrels" / "test.tsv")}
    for key, value in fill.items():
        args = [arg.replace(key, value) for arg in args]
    assert run(args) == 2
    assert message in capsys.readouterr().err


def test_malformed_files_exit_2_naming_file_and_line(toy_beir, tmp_path, capsys, tiny_bert_dir):
    qrels_path = toy_beir / "qrels" / "test.tsv"
    bad_run = tmp_path / "bad.trec"
    bad_run.write_text("q1 Q0 d1 1 1.0 t\nq1 Q0 d2 2 x t\n")
    assert run(["--run", str(bad_run), "--qrels", str(qrels_path)]) == 2
    assert f"{bad_run}:2" in capsys.readouterr().err
    bad_qrels = tmp_path / "qrels.tsv"
    bad_qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\thigh\n")
    assert run(["--run", str(_write_run(tmp_path / "a.trec", RUN_A)), "--qrels", str(bad_qrels)]) == 2
    assert f"{bad_qrels}:3" in capsys.readouterr().err
    corpus = toy_beir / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + "{not json\n")
    assert run(["--model", tiny_bert_dir, "--data", str(toy_beir), "--no_progress"]) == 2
    assert f"{corpus}:7" in capsys.readouterr().err


@pytest.mark.slow
def test_splade_tiny_on_msmarco_trecdl_matches_reference(tmp_path):
    """Zero-shot SPLADE-tiny on the bundled TREC DL sample (about 4 min on 2 CPU cores): README nDCG@10 0.8096."""
    from pathlib import Path

    data = Path(__file__).resolve().parents[2] / "data" / "msmarco-trecdl-5k"
    out = tmp_path / "dl.json"
    assert run(["--model", "splade-tiny", "--data", str(data), "--min_relevance", "2", "--max_query_length", "48",
                "--max_doc_length", "256", "--no_progress", "--output", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["ndcg@10"] == pytest.approx(0.8096, abs=0.0005)
    assert got["mrr@10"] == pytest.approx(0.9050, abs=0.001)
    assert got["recall@100"] == pytest.approx(0.8497, abs=0.001)
