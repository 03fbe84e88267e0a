"""``splade-lightning interpolate`` (WiSE-FT) end to end on toy data with tiny models of every architecture: the
output files, the exported model (it loads and encodes as the in-memory interpolation does), and refusals (bad
alpha before any loading, mismatching models, a foreign or earlier --output)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import write_jsonl

import splade_lightning
from splade_lightning.api import SparseModel
from splade_lightning.models import DenseEncoder, QueryDocRouter, SparseAutoEncoder, SpladeEncoder, StaticSparseEncoder
from splade_lightning.models.csr_encoder import CSREncoder
from splade_lightning.models.interpolation import interpolate_modules
from splade_lightning.tools.main import main

QUERIES = ["cat on a mat", "python language", "a"]
DOCS = ["the cat sat on the mat", "dogs bark at the postman " * 5, "a python is a large snake"]
FILES = ("interpolation.json", "interpolation.md", "interpolation.png", "model/config.json",
         "splade_lightning.manifest.json")


def _moved(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn(tensor.shape, generator=gen) * 0.05)
    return module


def _encoder(kind: str, bert: str, dense: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "splade":
        return _moved(SpladeEncoder(bert), seed)
    if kind == "inference_free":
        return _moved(QueryDocRouter(SpladeEncoder(bert), StaticSparseEncoder(bert)), seed)
    sae = _moved(SparseAutoEncoder(32, hidden_dim=64, k=4, k_aux=8), seed)
    return CSREncoder(DenseEncoder(dense, pooling="mean", normalize=True), sae)


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_bert_dir, tiny_encoder_dir) -> Path:
    """A toy BEIR folder and, per architecture, a zero-shot and a fine-tuned model directory."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("wise")
    beir = root / "beir"
    docs = [("d1", "the cat sat on the mat"), ("d2", "dogs bark at the postman"), ("d3", "python is a language"),
            ("d4", "the mat was red"), ("d5", "a python is a snake")]
    write_jsonl(beir / "corpus.jsonl", [{"_id": i, "title": "", "text": t} for i, t in docs])
    write_jsonl(beir / "queries.jsonl", [{"_id": "q1", "text": "cat on a mat"}, {"_id": "q2", "text": "python"}])
    (beir / "qrels").mkdir()
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td4\t1\nq2\td3\t1\n")
    for kind in ("splade", "inference_free", "csr"):
        source = tiny_encoder_dir if kind == "csr" else tiny_bert_dir
        tokenizer = AutoTokenizer.from_pretrained(source)
        for name, seed in (("zero_shot", 0), ("fine_tuned", 1)):
            encoder = _encoder(kind, tiny_bert_dir, tiny_encoder_dir, seed)
            SparseModel(encoder, tokenizer, 16, 32).save(root / kind / name)
    return root


def run(world: Path, kind: str, output: Path, *extra: str, fine_tuned: str | None = None) -> int:
    return main(["interpolate", "--zero_shot", str(world / kind / "zero_shot"), "--fine_tuned",
                 fine_tuned or str(world / kind / "fine_tuned"), "--output", str(output), "--alphas", "0", "0.5", "1",
                 "--k", "10", "--measures", "ndcg@10", "mrr@10", "--device", "cpu", "--no_progress", *extra])


def _dense(reps: torch.Tensor) -> torch.Tensor:
    return reps.to_dense()


@pytest.mark.parametrize("kind", ["splade", "inference_free", "csr"])
def test_end_to_end_exports_the_selected_alpha(world, kind, tmp_path, capsys):
    sets = ["--data", str(world / "beir")] if kind != "inference_free" else \
        ["--sets", f"{{path: {world / 'beir'}, name: toy, min_relevance: 2}}"]
    assert run(world, kind, tmp_path / "out", *sets, "--select", "0.5") == 0, capsys.readouterr().err[-3000:]
    out = tmp_path / "out"
    assert all((out / name).is_file() for name in FILES)
    report = json.loads((out / "interpolation.json").read_text())
    name = "toy" if kind == "inference_free" else "beir"
    assert report["alphas"] == [0.0, 0.5, 1.0] and report["selected_alpha"] == 0.5
    assert [row["alpha"] for row in report["results"]] == [0.0, 0.5, 1.0]
    for row in report["results"]:
        assert set(row["sets"][name]) == {"ndcg@10", "mrr@10", "active_dims_query", "active_dims_doc", "flops"}
    assert report["sets"][0]["min_relevance"] == (2 if kind == "inference_free" else 1)
    assert "| 0.5 |" in (out / "interpolation.md").read_text()

    exported = splade_lightning.load(out / "model")
    zero_shot, fine_tuned = (splade_lightning.load(world / kind / n) for n in ("zero_shot", "fine_tuned"))
    expected = SparseModel(interpolate_modules(zero_shot.encoder, fine_tuned.encoder, 0.5), fine_tuned.tokenizer,
                           fine_tuned.max_query_length, fine_tuned.max_doc_length)
    assert type(exported.encoder) is type(expected.encoder)
    for encode in ("encode_query", "encode_document"):
        texts = QUERIES if encode == "encode_query" else DOCS
        got, want = _dense(getattr(exported, encode)(texts)), _dense(getattr(expected, encode)(texts))
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
        assert not torch.equal(want, _dense(getattr(fine_tuned, encode)(texts)))


def test_select_best_and_the_end_points(world, tmp_path, capsys):
    assert run(world, "splade", tmp_path / "best", "--data", str(world / "beir"), "--select", "best:beir") == 0
    report = json.loads((tmp_path / "best" / "interpolation.json").read_text())
    scores = {row["alpha"]: row["sets"]["beir"]["ndcg@10"] for row in report["results"]}
    assert report["selected_alpha"] == min(a for a, s in scores.items() if s == max(scores.values()))
    assert run(world, "splade", tmp_path / "one", "--data", str(world / "beir"), "--select", "1") == 0
    exported = splade_lightning.load(tmp_path / "one" / "model").encoder.state_dict()
    fine_tuned = splade_lightning.load(world / "splade" / "fine_tuned").encoder.state_dict()
    assert all(torch.equal(value, fine_tuned[key]) for key, value in exported.items())


@pytest.mark.parametrize(("extra", "message"), [
    (["--alphas", "0", "1.5"], "--alphas 1.5: expected one or more numbers in [0, 1]"),
    (["--select", "0.3"], "alpha 0.3 is not among --alphas"),
    (["--select", "best:nope"], "no evaluation set is named 'nope'"),
    (["--select", "good"], "expected best (the mean over the sets)"),
    (["--k", "5", "--measures", "ndcg@10"], "--k 5 is smaller than the cut-off of ndcg@10"),
])
def test_bad_arguments_exit_2_before_any_loading(world, tmp_path, capsys, monkeypatch, extra, message):
    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("splade_lightning.api.load", no_loading)
    monkeypatch.setattr("splade_lightning.formats.beir.load_beir_set", no_loading)
    argv = ["interpolate", "--zero_shot", str(world / "splade" / "zero_shot"), "--fine_tuned",
            str(world / "splade" / "fine_tuned"), "--data", str(world / "beir"), "--output", str(tmp_path / "o"),
            "--no_progress", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


def test_evaluation_sets_are_required_and_split_needs_data(world, tmp_path, capsys):
    assert run(world, "splade", tmp_path / "o") == 2
    assert "expected evaluation sets" in capsys.readouterr().err
    assert run(world, "splade", tmp_path / "o", "--split", "dev", "--sets", f"{{path: {world / 'beir'}}}") == 2
    assert "--split and --min_relevance apply to --data" in capsys.readouterr().err
    assert run(world, "splade", tmp_path / "o", "--sets", f"{{path: {world / 'beir'}, splt: dev}}") == 2
    assert "--sets[0]" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("other", ["inference_free", "csr"])
def test_models_of_another_architecture_are_refused(world, tmp_path, capsys, other):
    zero_shot, fine_tuned = world / "splade" / "zero_shot", world / other / "fine_tuned"
    assert run(world, "splade", tmp_path / "o", "--data", str(world / "beir"), fine_tuned=str(fine_tuned)) == 2
    err = capsys.readouterr().err
    assert f"--zero_shot {zero_shot}" in err and f"--fine_tuned {fine_tuned}" in err, err
    assert f"'{other}' model" in err and not (tmp_path / "o").exists()


def test_a_foreign_or_earlier_output_is_refused(world, tmp_path, capsys):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine\n")
    assert run(world, "splade", foreign, "--data", str(world / "beir"), "--overwrite") == 2
    assert "not written by splade_lightning" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["todo.txt"]
    out = tmp_path / "out"
    assert run(world, "splade", out, "--data", str(world / "beir")) == 0
    before = (out / "interpolation.json").read_bytes()
    capsys.readouterr()
    assert run(world, "splade", out, "--data", str(world / "beir")) == 2
    assert "--overwrite" in capsys.readouterr().err and (out / "interpolation.json").read_bytes() == before
    assert run(world, "splade", out, "--data", str(world / "beir"), "--overwrite") == 0
    assert json.loads((out / "interpolation.json").read_text())["alphas"] == [0.0, 0.5, 1.0]
    shutil.rmtree(out)
