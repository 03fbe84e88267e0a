"""Suites end to end: ``evaluate --suite`` on two tiny sets with different splits and ``min_relevance`` (each row
equals evaluating that set alone; the mean is their average), bad suites exit 2, and a suite as ``val_sets`` in a
short fit logs ``val/<suite>/mean/...``."""

import json
import shutil

import pytest

from splade_lightning.tools.main import main

ARGS = ["--measures", "ndcg@10,mrr@10", "--k", "10", "--max_query_length", "16", "--max_doc_length", "32",
        "--no_progress"]


@pytest.fixture()
def two_set_suite(tmp_path, toy_beir):
    """``suites/two.yaml`` over ``dev_set`` (the toy set with its qrels as split dev) and ``toy_beir`` (test,
    min_relevance 2)."""
    dev = tmp_path / "dev_set"
    shutil.copytree(toy_beir, dev)
    (dev / "qrels" / "test.tsv").rename(dev / "qrels" / "dev.tsv")
    (dev / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td4\t1\nq2\td5\t1\nq3\td2\t1\n")
    suite = tmp_path / "suites" / "two.yaml"
    suite.parent.mkdir()
    suite.write_text("name: two\nsets:\n  - {path: ../dev_set, split: dev}\n"
                     "  - {path: ../toy_beir, split: test, min_relevance: 2, name: graded}\n")
    return suite


def test_evaluate_suite_rows_equal_single_runs_and_mean(two_set_suite, tiny_bert_dir, tmp_path, capsys):
    out = tmp_path / "suite.json"
    assert main(["evaluate", "--model", tiny_bert_dir, "--suite", str(two_set_suite), *ARGS, "--output", str(out),
                 "--run_output", str(tmp_path / "runs")]) == 0
    got = json.loads(out.read_text())
    assert got["suite"] == "two" and got["suite_file"] == str(two_set_suite) and set(got["datasets"]) == {"dev_set",
                                                                                                          "graded"}
    assert (got["datasets"]["dev_set"]["split"], got["datasets"]["graded"]["min_relevance"]) == ("dev", 2)
    singles = {}
    for name, data, extra in (("dev_set", tmp_path / "dev_set", ["--split", "dev"]),
                              ("graded", tmp_path / "toy_beir", ["--min_relevance", "2"])):
        single = tmp_path / f"{name}.json"
        assert main(["evaluate", "--model", tiny_bert_dir, "--data", str(data), *extra, *ARGS,
                     "--output", str(single)]) == 0
        singles[name] = json.loads(single.read_text())
    for key in ("ndcg@10", "mrr@10", "active_dims_doc"):
        for name in singles:
            assert got["datasets"][name][key] == pytest.approx(singles[name][key]), (name, key)
        assert got["mean"][key] == pytest.approx((singles["dev_set"][key] + singles["graded"][key]) / 2)
    # different qrels and min_relevance really give different rows (else the test could not tell them apart)
    assert got["datasets"]["dev_set"]["mrr@10"] != pytest.approx(got["datasets"]["graded"]["mrr@10"])
    assert (tmp_path / "runs" / "dev_set.trec").is_file() and (tmp_path / "runs" / "graded.trec").is_file()
    table = capsys.readouterr().out
    assert "| dev_set |" in table and "| graded |" in table and "| mean |" in table


@pytest.mark.parametrize("extra, expected", [
    (["--data", "x"], "--suite and --data are exclusive"),
    (["--split", "dev"], "do not apply with --suite"),
    (["--suite", "no-such-preset"], "not a preset suite"),
])
def test_bad_suite_arguments_exit_2(two_set_suite, tiny_bert_dir, capsys, extra, expected):
    suite = [] if "--suite" in extra else ["--suite", str(two_set_suite)]
    assert main(["evaluate", "--model", tiny_bert_dir, *suite, *extra, "--no_progress"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_bad_suite_entry_names_file_and_line(two_set_suite, tiny_bert_dir, capsys):
    two_set_suite.write_text(two_set_suite.read_text() + "  - {path: ../absent, split: test}\n")
    assert main(["evaluate", "--model", tiny_bert_dir, "--suite", str(two_set_suite), "--no_progress"]) == 2
    err = capsys.readouterr().err
    assert f"{two_set_suite}:5: sets[2]" in err and "absent" in err and "Traceback" not in err


def test_fit_with_a_suite_as_val_sets_logs_its_mean(two_set_suite, tiny_bert_dir, toy_triplets, toy_beir, tmp_path):
    from tests.integration.test_fit import tiny_args

    args = tiny_args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--trainer.max_steps=1",
                     "--trainer.max_epochs=-1", "--eval_before_fit=false",
                     f"--data.init_args.val_sets=[{{suite: {two_set_suite}}}, {{path: {toy_beir}, name: plain}}]")
    main(["fit", *args])
    header = next(tmp_path.rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    for key in ("val/dev_set/ndcg@10", "val/graded/mrr@10", "val/plain/ndcg@10", "val/two/mean/ndcg@10",
                "val/two/mean/mrr@10", "val/ndcg@10"):
        assert key in header, key
    assert "val/plain/mean/ndcg@10" not in header
    # the report has a row for the suite's mean (the average of its sets), and the overall mean stays over the sets
    import json

    report = json.loads(next(tmp_path.rglob("report.json")).read_text())["fine_tuned"]
    assert list(report) == ["dev_set", "graded", "plain", "two/mean", "mean"]
    for key in ("ndcg@10", "mrr@10"):
        assert report["two/mean"][key] == pytest.approx((report["dev_set"][key] + report["graded"][key]) / 2)
        assert report["mean"][key] == pytest.approx(sum(report[s][key] for s in ("dev_set", "graded", "plain")) / 3)
    assert "| two/mean " in next(tmp_path.rglob("report.md")).read_text()
