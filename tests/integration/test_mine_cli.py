"""``python -m splade_lightning mine`` end to end: output layout, positives never negatives, resume after an
interruption gives the same file as an uninterrupted run, argument errors, and the bundled hotpotqa-500 set."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, write_jsonl

import splade_lightning
from splade_lightning.tools.main import main

DOCS = {
    "d01": "cats sleep on warm mats", "d02": "the cat chased a mouse across the mat",
    "d03": "a cat and a dog share a mat", "d04": "mats for cats and dogs",
    "d05": "python is a programming language", "d06": "the python snake is large",
    "d07": "programming in python with numpy", "d08": "snakes and pythons in the jungle",
    "d09": "rain and wind in the storm", "d10": "storm clouds bring heavy rain",
    "d11": "sunny weather without rain", "d12": "wind turbines in a storm",
    "d13": "piano music for beginners", "d14": "learning the piano and guitar",
    "d15": "guitar music concerts", "d16": "music theory for piano players",
    "d17": "cats sleep on warm mats",  # the same text as d01, a positive of q1: never a negative of q1
}
QUERIES = {"q1": "where do cats sleep on mats", "q2": "python programming language", "q3": "storm with rain and wind",
           "q4": "piano music lessons", "q5": "zebra", "q6": "guitar"}
QRELS = [("q1", "d01", 1), ("q2", "d05", 2), ("q2", "d07", 1), ("q3", "d09", 1), ("q4", "d13", 1),
         ("q4", "d16", 1), ("q5", "d02", 1), ("q6", "d14", 0)]


@pytest.fixture()
def beir(tmp_path) -> Path:
    root = tmp_path / "mine_beir"
    write_jsonl(root / "corpus.jsonl", [{"_id": k, "title": "", "text": v} for k, v in DOCS.items()])
    write_jsonl(root / "queries.jsonl", [{"_id": k, "text": v} for k, v in QUERIES.items()])
    (root / "qrels").mkdir()
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                               + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in QRELS))
    return root


def mine(capsys, *args) -> tuple[int, str, str]:
    exc = main(["mine", *map(str, args), "--no_progress"])
    captured = capsys.readouterr()
    return exc, captured.out, captured.err


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_bm25_output_layout(beir, tmp_path, capsys):
    out = tmp_path / "hn.jsonl"
    code, stdout, _ = mine(capsys, "--data", beir, "--output", out, "--num_negatives", 2, "--output_scores")
    assert code == 0
    rows = records(out)
    assert [r["qid"] for r in rows] == ["q1", "q2", "q3", "q4"]  # q5: no negative; q6: only a grade-0 row
    assert "1 queries have no negative left after the filters, skipped" in stdout and "q5" in stdout
    positives = {q: {d for q2, d, g in QRELS if q2 == q and g >= 1} for q in QUERIES}
    for r in rows:
        assert set(r) == {"qid", "pos", "neg", "scores"} and list(r["neg"]) == ["bm25"]
        negs = r["neg"]["bm25"]
        assert set(r["pos"]) == positives[r["qid"]] and 1 <= len(negs) <= 2 and len(set(negs)) == len(negs)
        assert not set(negs) & set(r["pos"])
        assert not {DOCS[n] for n in negs} & {DOCS[p] for p in r["pos"]}  # nor a text identical to a positive
        assert len(r["scores"]["pos"]) == len(r["pos"]) and len(r["scores"]["bm25"]) == len(negs)
        assert r["scores"]["bm25"] == sorted(r["scores"]["bm25"], reverse=True)
    assert "d17" not in rows[0]["neg"]["bm25"]


def test_keep_empty_and_filters(beir, tmp_path, capsys):
    out = tmp_path / "hn.jsonl"
    code, stdout, _ = mine(capsys, "--data", beir, "--output", out, "--max_score", 1e-6, "--keep_empty")
    assert code == 0
    rows = records(out)
    assert [r["qid"] for r in rows] == ["q1", "q2", "q3", "q4", "q5"]
    assert all(r["neg"]["bm25"] == [] for r in rows)
    assert "written with an empty list" in stdout and "max_score" in stdout


def _resume_cases(out: Path) -> list:
    """Ways an interruption can leave the output: cut in the middle of a line, or the last half of lines lost."""
    data = out.read_bytes()
    lines = data.splitlines(keepends=True)
    return [data[: len(data) // 2], b"".join(lines[: len(lines) // 2]), data[:-1], b""]


@pytest.mark.parametrize("extra", [[], ["--sampling_strategy", "random", "--range_max", 12, "--seed", 5]])
def test_bm25_resume_gives_the_uninterrupted_file(beir, tmp_path, capsys, extra):
    out = tmp_path / "hn.jsonl"
    args = ["--data", beir, "--output", out, "--chunk_size", 2, "--output_scores", *extra]
    assert mine(capsys, *args)[0] == 0
    reference = out.read_bytes()
    for cut in _resume_cases(out):
        out.write_bytes(cut)
        code, stdout, _ = mine(capsys, *args)
        assert code == 0 and out.read_bytes() == reference
        if cut:
            assert "resuming" in stdout
    code, stdout, _ = mine(capsys, *args)
    assert code == 0 and "is complete" in stdout  # q5, skipped for want of negatives, is not mined again


def test_resume_refuses_other_settings(beir, tmp_path, capsys):
    out = tmp_path / "hn.jsonl"
    assert mine(capsys, "--data", beir, "--output", out, "--num_negatives", 2)[0] == 0
    code, _, err = mine(capsys, "--data", beir, "--output", out, "--num_negatives", 3)
    assert code == 2 and "num_negatives: 2 -> 3" in err and "--overwrite" in err
    code, _, _ = mine(capsys, "--data", beir, "--output", out, "--num_negatives", 3, "--overwrite")
    assert code == 0 and all(len(r["neg"]["bm25"]) <= 3 for r in records(out))


def test_model_retriever_resume_and_shard_cache(beir, tmp_path, capsys, tiny_bert_dir):
    model = shutil.copytree(tiny_bert_dir, tmp_path / "tiny_model")
    out = tmp_path / "hn_model.jsonl"
    args = ["--data", beir, "--output", out, "--retriever", model, "--output_scores", "--chunk_size", 2,
            "--shard_size", 5, "--batch_size", 3, "--relative_margin", 0.01]
    code, stdout, _ = mine(capsys, *args)
    assert code == 0, stdout
    system = "tiny_model"
    rows = records(out)
    assert rows and all(list(r["neg"]) == [system] and not set(r["neg"][system]) & set(r["pos"]) for r in rows)
    assert all("d17" not in r["neg"][system] for r in rows if r["qid"] == "q1")
    shards = sorted((Path(f"{out}.cache") / "corpus").glob("shard_*.pt"))
    assert len(shards) == 4  # 16 distinct texts in shards of 5
    reference = out.read_bytes()
    mtimes = {p.name: p.stat().st_mtime_ns for p in shards}
    shards[-1].unlink()
    for cut in _resume_cases(out)[:2]:
        out.write_bytes(cut)
        assert mine(capsys, *args)[0] == 0
        assert out.read_bytes() == reference
    assert all(p.stat().st_mtime_ns == mtimes[p.name] for p in shards[:-1])  # finished shards were not re-encoded
    assert shards[-1].is_file()
    weights = next(model.glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # touched, same weights
    out.write_bytes(reference[: len(reference) // 2])
    assert mine(capsys, *args)[0] == 0 and out.read_bytes() == reference
    trained = splade_lightning.load(model)
    with torch.no_grad():
        trained.encoder.mlm.get_output_embeddings().bias.add_(0.5)
    shutil.rmtree(model)
    trained.save(model)  # other weights at the same path
    out.write_bytes(reference[: len(reference) // 2])
    code, _, err = mine(capsys, *args)
    assert code == 2 and "the model (weights, settings or tokenizer) changed" in err and "--overwrite" in err
    assert out.read_bytes() == reference[: len(reference) // 2]  # refused: nothing written


def test_model_name_from_alias_and_checkpoint_name():
    from splade_lightning.tools.main import tool_parser
    from splade_lightning.tools.mine_args import system_name

    parse = tool_parser("mine").parse_args
    assert system_name(parse(["--data", "x", "--output", "o", "--retriever", "splade-tiny"])) == "splade-tiny"
    assert system_name(parse(["--data", "x", "--output", "o", "--retriever", "runs/a/last.ckpt"])) == "last"
    assert system_name(parse(["--data", "x", "--output", "o", "--retriever", "runs/model/"])) == "model"
    assert system_name(parse(["--data", "x", "--output", "o"])) == "bm25"
    assert system_name(parse(["--data", "x", "--output", "o", "--system_name", "mine"])) == "mine"


BAD_ARGS = [
    (["--num_negatives", 0], "--num_negatives 0: expected an integer >= 1"),
    (["--range_min", -1], "--range_min -1: expected an integer >= 0"),
    (["--range_min", 5, "--range_max", 3], "--range_min 5: expected less than --range_max 3"),
    (["--range_max", 3, "--num_negatives", 4], "--num_negatives 4: expected at most --range_max - --range_min = 3"),
    (["--relative_margin", -0.1], "--relative_margin -0.1: expected a number >= 0"),
    (["--absolute_margin", "nan"], "--absolute_margin nan: expected a finite number"),
    (["--min_score", 2, "--max_score", 1], "--min_score 2.0: expected at most --max_score 1.0"),
    (["--chunk_size", 0], "--chunk_size 0"),
    (["--seed", -3], "--seed -3"),
    (["--split", "test"], "--split test: "),
    (["--bm25_k1", 1.2, "--retriever", "splade-tiny"], "--bm25_k1 1.2: only applies to --retriever bm25"),
    (["--batch_size", 8], "--batch_size 8: only applies to --retriever MODEL"),
    (["--bm25_b", 2], "--bm25_b 2.0: expected a number in [0, 1]"),
    (["--retriever", "./nowhere"], "--retriever ./nowhere: expected bm25, an existing model directory"),
    (["--retriever", "missing.ckpt"], "--retriever missing.ckpt: checkpoint file not found"),
    (["--system_name", "pos"], "--system_name 'pos'"),
    (["--retriever", "splade-tiny", "--device", "tpu0"], "--device tpu0"),
    (["--num_negatives", "abc"], "--num_negatives abc: expected an integer"),
    (["--sampling_strategy", "best"], "--sampling_strategy best: expected one of 'top', 'random'"),
    (["--num_negatives", 0, "--range_min", -1], "2 problems with the arguments"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_ARGS, ids=[m.split(":")[0] for _, m in BAD_ARGS])
def test_bad_arguments(beir, tmp_path, capsys, extra, message):
    out = tmp_path / "hn.jsonl"
    code, _, err = mine(capsys, "--data", beir, "--output", out, *extra)
    assert code == 2 and message in err, err
    assert not out.exists() and not Path(f"{out}.cache").exists()  # nothing was written


def test_bad_paths(beir, tmp_path, capsys):
    code, _, err = mine(capsys, "--data", tmp_path / "absent", "--output", tmp_path / "o.jsonl")
    assert code == 2 and "--data" in err and "expected an existing BEIR directory" in err
    code, _, err = mine(capsys, "--data", beir, "--output", tmp_path)
    assert code == 2 and "contains --data" in err
    (tmp_path / "a_dir").mkdir()
    code, _, err = mine(capsys, "--data", beir, "--output", tmp_path / "a_dir")
    assert code == 2 and "is a directory; expected the JSONL file" in err
    code, _, err = mine(capsys, "--data", beir, "--split", "dev", "--output", tmp_path / "o.jsonl")
    assert code == 2 and "splits present: ['train']" in err


HOTPOT = REPO / "data" / "hotpotqa-500"


@pytest.mark.skipif(not (HOTPOT / "qrels" / "train.tsv").is_file(), reason="data/hotpotqa-500 not present")
def test_hotpotqa_500_bm25(tmp_path, capsys):
    out = tmp_path / "hotpot_bm25.jsonl"
    start = time.perf_counter()
    code, stdout, _ = mine(capsys, "--data", HOTPOT, "--split", "train", "--output", out)
    seconds = time.perf_counter() - start
    assert code == 0 and seconds < 10, (seconds, stdout)
    rows = records(out)
    assert len(rows) == 400 and all(len(r["neg"]["bm25"]) == 3 and len(r["pos"]) == 2 for r in rows)
    assert all(not set(r["neg"]["bm25"]) & set(r["pos"]) for r in rows)
    shutil.rmtree(f"{out}.cache")
