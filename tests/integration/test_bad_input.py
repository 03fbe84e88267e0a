"""Bad input is a one-paragraph error (exit 2 on the command line, ConfigError in the API), before any work: never a
traceback, never a silent wrong result. Covers model compatibility on load, unreadable checkpoints, devices this
machine lacks, and out-of-range sizes."""

from __future__ import annotations

import shutil

import pytest
import torch

import splade_lightning
from splade_lightning.errors import ConfigError
from splade_lightning.tools.main import main


def cli(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def model(tiny_bert_dir):
    return splade_lightning.load(tiny_bert_dir)


def test_a_dense_encoder_is_not_loaded_as_splade(capsys, toy_beir):
    with pytest.raises(ConfigError) as info:
        splade_lightning.load("all-minilm-l6-v2")
    message = str(info.value)
    assert "has no masked-language-model head" in message and "cls.predictions" in message
    assert "CSR" in message and "BertModel" in message  # what it can be loaded as, and what it is
    assert cli("evaluate", "--model", "all-minilm-l6-v2", "--data", toy_beir, "--no_progress") == 2
    err = capsys.readouterr().err
    assert "has no masked-language-model head" in err and "Traceback" not in err


@pytest.mark.parametrize("change", ["smaller", "larger"])
def test_tokenizer_that_does_not_match_the_vocabulary(model, tmp_path, change):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    path = model.save(tmp_path / "m")
    if change == "smaller":
        vocab = {f"w{i}": i for i in range(100)} | {"[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[PAD]": 103}
        backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", cls_token="[CLS]",
                                            sep_token="[SEP]", pad_token="[PAD]")
        expected = "its tokenizer has 104 tokens but the model has 30522"
    else:
        tokenizer = model.tokenizer.__class__.from_pretrained(path)
        tokenizer.add_tokens(["newtokenone", "newtokentwo"])
        expected = "its tokenizer has 30524 tokens but the model has 30522"
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (path / name).unlink(missing_ok=True)
    tokenizer.save_pretrained(path)
    with pytest.raises(ConfigError, match=expected):
        splade_lightning.load(path)


@pytest.mark.parametrize("tool", ["evaluate", "export", "index"])
def test_truncated_checkpoint_as_model(tool, tmp_path, toy_beir, capsys):
    ckpt = tmp_path / "broken.ckpt"
    ckpt.write_bytes(b"PK\x03\x04" + b"\0" * 100)  # a zip archive cut off after its first header
    args = {"evaluate": ["--data", toy_beir], "export": ["--format", "opensearch", "--output", tmp_path / "o"],
            "index": ["--corpus", toy_beir, "--output", tmp_path / "o"]}[tool]
    assert cli(tool, "--model", ckpt, *args, "--no_progress" if tool != "export" else "--overwrite") == 2
    err = capsys.readouterr().err
    assert f"checkpoint '{ckpt}' cannot be read" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match="cannot be read"):
        splade_lightning.load(ckpt)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_unavailable_device(tiny_bert_dir, toy_beir, capsys):
    assert cli("evaluate", "--model", tiny_bert_dir, "--data", toy_beir, "--device", "cuda") == 2
    assert "--device cuda: CUDA is not available on this machine" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="CUDA is not available"):
        splade_lightning.load(tiny_bert_dir, device="cuda")
    with pytest.raises(ConfigError, match="not a device"):
        splade_lightning.load(tiny_bert_dir, device="gpu7")


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_batch_size_must_be_positive(model, batch_size):
    for encode in (model.encode_query, model.encode_document):
        with pytest.raises(ConfigError, match=f"batch_size={batch_size!r}; expected an integer >= 1"):
            encode(["a text"], batch_size=batch_size)


def test_decode_top_k_must_not_be_negative(model):
    vector = model.encode_document("the cat sat on the mat")
    with pytest.raises(ConfigError, match="top_k=-1"):
        model.decode(vector, top_k=-1)
    assert model.decode(vector, top_k=0) == []


def test_current_directory_as_output(tiny_bert_dir, tmp_path, monkeypatch, capsys):
    model = shutil.copytree(tiny_bert_dir, tmp_path / "model")
    work = tmp_path / "empty"
    work.mkdir()
    monkeypatch.chdir(work)
    assert cli("export", "--model", model, "--format", "opensearch", "--output", ".", "--overwrite") == 2
    err = capsys.readouterr().err
    assert "is the current directory" in err and "Traceback" not in err
    monkeypatch.chdir(tmp_path)
    assert cli("export", "--model", model, "--format", "opensearch", "--output", ".", "--overwrite") == 2
    assert "contains --model" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "model"]
