"""``python -m splade_lightning export``: checked arguments, format/architecture compatibility, faithful output."""

import json

import pytest
import torch

import splade_lightning
from splade_lightning.api import SparseModel
from splade_lightning.models import DenseEncoder, SparseAutoEncoder, SpladeEncoder
from splade_lightning.models.csr_encoder import CSREncoder
from splade_lightning.tools.main import main

TEXTS = ["what is the capital of france", "dogs bark at cats"]


@pytest.fixture(scope="module")
def csr_dir(tmp_path_factory, tiny_encoder_dir) -> str:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    sae = SparseAutoEncoder(32, hidden_dim=64, k=4, k_aux=8)
    sae.stats_last_nonzero.fill_(7)
    model = SparseModel(CSREncoder(DenseEncoder(tiny_encoder_dir), sae), tokenizer, 16, 32)
    return str(model.save(tmp_path_factory.mktemp("csr") / "model"))


@pytest.fixture(scope="module")
def splade_dir(tmp_path_factory, tiny_bert_dir, tokenizer_dir) -> str:
    from transformers import AutoTokenizer

    model = SparseModel(SpladeEncoder(tiny_bert_dir), AutoTokenizer.from_pretrained(tokenizer_dir), 16, 32)
    return str(model.save(tmp_path_factory.mktemp("splade") / "model"))


def run(args):
    exit_info = main(["export", *args])
    return exit_info


def same_vectors(a, b) -> None:
    for encode in ("encode_query", "encode_document"):
        torch.testing.assert_close(getattr(a, encode)(TEXTS).to_dense(), getattr(b, encode)(TEXTS).to_dense(),
                                   rtol=0, atol=0)


def test_csr_export_to_sentence_transformers(csr_dir, tmp_path):
    out = tmp_path / "st"
    assert run(["--model", csr_dir, "--format", "sentence-transformers", "--output", str(out)]) == 0
    assert json.loads((out / "config_sentence_transformers.json").read_text())["model_type"] == "SparseEncoder"
    exported, original = splade_lightning.load(out), splade_lightning.load(csr_dir)
    same_vectors(exported, original)
    assert torch.equal(exported.encoder.autoencoder.stats_last_nonzero, original.encoder.autoencoder.stats_last_nonzero)


def test_splade_export_to_both_formats(splade_dir, tmp_path):
    for fmt in ("sentence-transformers", "opensearch"):
        out = tmp_path / fmt
        assert run(["--model", splade_dir, "--format", fmt, "--output", str(out)]) == 0
        assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
        same_vectors(splade_lightning.load(out), splade_lightning.load(splade_dir))


def test_format_that_cannot_hold_the_architecture(csr_dir, tmp_path, capsys):
    assert run(["--model", csr_dir, "--format", "opensearch", "--output", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "opensearch" in err and "'csr'" in err and "sentence-transformers" in err
    assert not (tmp_path / "x").exists()


def test_foreign_output_is_refused_even_with_overwrite(csr_dir, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    for extra in ([], ["--overwrite"]):
        assert run(["--model", csr_dir, "--format", "sentence-transformers", "--output", str(out), *extra]) == 2
        assert "keep.txt" in capsys.readouterr().err and (out / "keep.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]  # no temporary directory left either


def test_own_output_is_replaced_only_with_overwrite(csr_dir, tmp_path, capsys):
    out = tmp_path / "st"
    assert run(["--model", csr_dir, "--format", "sentence-transformers", "--output", str(out)]) == 0
    assert run(["--model", csr_dir, "--format", "sentence-transformers", "--output", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert run(["--model", csr_dir, "--format", "opensearch", "--output", str(out), "--overwrite"]) == 2  # csr
    assert run(["--model", csr_dir, "--format", "anserini", "--output", str(out), "--overwrite", "--corpus",
                str(tmp_path / "none.jsonl")]) == 2
    assert (out / "modules.json").is_file()


def test_missing_model_and_bad_format(tmp_path, capsys):
    assert run(["--model", str(tmp_path / "nope"), "--format", "opensearch", "--output", str(tmp_path / "o")]) == 2
    assert "nope" in capsys.readouterr().err
    assert run(["--model", "x", "--format", "lucene", "--output", str(tmp_path / "o")]) == 2  # argparse: exit 2
    assert "--format lucene: expected one of 'sentence-transformers'" in capsys.readouterr().err
