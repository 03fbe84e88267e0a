"""Teacher spec parsing and the cheap pre-load checks of ``score``."""

import json

import pytest

from splade_lightning.errors import ConfigError
from splade_lightning.scoring import TeacherSpec, parse_teacher_spec
from splade_lightning.scoring.teachers import check_teacher_source, read_dense_layout


@pytest.mark.parametrize("text, kind, name", [
    ("sparse:splade-tiny", "sparse", "splade-tiny"),
    ("dense:/models/gte:large", "dense", "/models/gte:large"),  # only the first ':' separates the kind
    ("cross:cross-encoder/ms-marco-MiniLM-L-6-v2", "cross", "cross-encoder/ms-marco-MiniLM-L-6-v2"),
])
def test_parse_teacher_spec(text, kind, name):
    spec = parse_teacher_spec(text)
    assert spec == TeacherSpec(kind, name) and spec.label == text


@pytest.mark.parametrize("text, match", [
    ("splade-tiny", "expected KIND:NAME_OR_PATH"),
    ("remote:http://x", "unknown teacher kind 'remote'"),
    ("Dense:all-minilm-l6-v2", "unknown teacher kind 'Dense'"),
    ("cross:", "empty model name"),
    ("dense:  ", "empty model name"),
])
def test_parse_teacher_spec_errors(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_teacher_spec(text)


def test_check_teacher_source(tmp_path):
    check_teacher_source(TeacherSpec("sparse", "splade-tiny"))  # installed alias
    check_teacher_source(TeacherSpec("dense", str(tmp_path)))  # existing path
    check_teacher_source(TeacherSpec("cross", "owner/model"))  # hub id: checked when loaded
    for name in (str(tmp_path / "missing"), "./rel/missing", "runs/x/model", "missing.ckpt", "nothing"):
        with pytest.raises(ConfigError, match="does not exist"):
            check_teacher_source(TeacherSpec("sparse", name))


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def test_dense_layout_from_sentence_transformers_files(tmp_path):
    write(tmp_path / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    write(tmp_path / "1_Pooling" / "config.json", {"word_embedding_dimension": 32, "pooling_mode_cls_token": True,
                                                   "pooling_mode_mean_tokens": False})
    write(tmp_path / "sentence_bert_config.json", {"max_seq_length": 77})
    layout = read_dense_layout(tmp_path, "dense:x")
    assert (layout.backbone, layout.pooling, layout.normalize, layout.max_length) == (str(tmp_path), "cls", True, 77)


def test_dense_layout_plain_hf_dir_and_unsupported_modules(tmp_path):
    layout = read_dense_layout(tmp_path, "dense:x")
    assert (layout.pooling, layout.normalize, layout.max_length) == ("mean", True, None)
    write(tmp_path / "modules.json", [
        {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "path": "2_SAE", "type": "sentence_transformers.sparse_encoder.models.SparseAutoEncoder"}])
    with pytest.raises(ConfigError, match="CSR model: use sparse:"):
        read_dense_layout(tmp_path, "dense:x")
    write(tmp_path / "modules.json", [
        {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
    write(tmp_path / "1_Pooling" / "config.json", {"pooling_mode": "max"})
    with pytest.raises(ConfigError, match="pooling mode 'max'"):
        read_dense_layout(tmp_path, "dense:x")
