"""idf.json tables: strict parsing, mapping onto token ids (no silent [UNK]), exact write/read round trip."""

import json
import warnings

import pytest
import torch
from conftest import SHARED_DATA

from splade_lightning.errors import DataError, DataErrors
from splade_lightning.formats.idf_json import idf_dict, idf_weights, read_idf_json, read_idf_table, write_idf_json

OPENSEARCH_IDF = SHARED_DATA / "opensearch-idf" / "idf.json"
V = 30522


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def write(tmp_path, text: str):
    path = tmp_path / "idf.json"
    path.write_text(text)
    return path


def test_read_idf_json_ok(tmp_path):
    path = write(tmp_path, '{"the": 0.5, "##ing": 2, "cat": -1.5e0, "[PAD]": 0}')
    table = read_idf_json(path)
    assert table == {"the": 0.5, "##ing": 2.0, "cat": -1.5, "[PAD]": 0.0}
    assert all(type(v) is float for v in table.values())


def test_read_idf_json_not_json_names_line(tmp_path):
    path = write(tmp_path, '{\n"the": 0.5,\n"cat" 1.0\n}')
    with pytest.raises(DataError, match=r"not valid JSON: .*\(column 7\); expected one JSON object") as info:
        read_idf_json(path)
    assert (info.value.path, info.value.line) == (str(path), 3)
    assert f"{path}:3:" in str(info.value)


@pytest.mark.parametrize("text, got", [('["the", 1.0]', "list"), ('"the"', "string"), ("3", "number")])
def test_read_idf_json_top_level_not_object(tmp_path, text, got):
    with pytest.raises(DataError, match=f"expected one JSON object mapping token strings to numbers, got {got}$"):
        read_idf_json(write(tmp_path, text))


@pytest.mark.parametrize("value, shown", [('"1.0"', "string '1.0'"), ("true", "boolean true"), ("null", "null"),
                                          ("[1.0]", "list [1.0]"), ('{"x": 1}', "an object")])
def test_read_idf_json_non_number_names_token(tmp_path, value, shown):
    with pytest.raises(DataErrors) as info:
        read_idf_json(write(tmp_path, f'{{"the": 1.0, "cat": {value}}}'))
    (err,) = info.value.errors
    assert err.field == "cat" and err.reason == f"expected a number, got {shown}"


def test_read_idf_json_non_finite_and_duplicates_collected(tmp_path):
    text = '{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e999, "the": 1.0, "the": 2.0, "ok": 3}'
    with pytest.raises(DataErrors) as info:
        read_idf_json(write(tmp_path, text))
    errors = {e.field: e.reason for e in info.value.errors}
    assert errors == {
        "a": "expected a finite number, got NaN",
        "b": "expected a finite number, got Infinity",
        "c": "expected a finite number, got -Infinity",
        "d": "expected a finite number, got number inf",
        "the": "duplicate token 'the' (JSON keys must be unique)",
    }
    assert "5 problem(s)" in str(info.value)


def test_read_idf_json_empty_and_missing(tmp_path):
    with pytest.raises(DataError, match="empty IDF table"):
        read_idf_json(write(tmp_path, " {} "))
    with pytest.raises(DataError, match="IDF table not found") as info:
        read_idf_json(tmp_path / "nope.json")
    assert info.value.path == str(tmp_path / "nope.json")


def test_idf_weights_maps_ids_and_fills_missing(tok):
    table = {"the": 0.25, "cat": 3.0, "[PAD]": 0.0, "dog": -2.0}
    out = idf_weights(table, tok, V, missing_weight=7.0)
    ids = tok.convert_tokens_to_ids
    assert out.weights.dtype == torch.float32 and out.weights.shape == (V,)
    assert [out.weights[ids(t)].item() for t in table] == [0.25, 3.0, 0.0, -2.0]
    assert out.weights[ids("zebra")].item() == 7.0
    assert (out.matched, out.unknown, out.negative, out.missing) == (4, [], ["dog"], V - 4)
    assert int((out.weights == 7.0).sum()) == V - 4


def test_idf_weights_padded_vocab(tok):
    out = idf_weights({"the": 0.5}, tok, V + 6, missing_weight=2.0)
    assert out.weights.shape == (V + 6,)
    assert out.weights[V:].tolist() == [2.0] * 6
    assert out.missing == V - 1  # ids >= len(tokenizer) are not counted as missing


def test_idf_weights_smaller_vocab_marks_high_ids_unknown(tok):
    last = tok.convert_ids_to_tokens(V - 1)
    out = idf_weights({"the": 0.5, "cat": 1.0, last: 9.0}, tok, V - 1)
    assert out.unknown == [last] and out.matched == 2 and out.weights.shape == (V - 1,)


def test_idf_weights_wrong_vocabulary(tok, tmp_path):
    table = {f"made_up_{i}": 1.0 for i in range(6)} | {"the": 1.0, "cat": 1.0}
    with pytest.raises(DataError, match=r"6 of 8 tokens are not in the tokenizer's vocabulary \(e\.g\. \['made_up_0'"
                                        r".*different tokenizer") as info:
        idf_weights(table, tok, V, path=tmp_path / "x.json")
    assert info.value.path == str(tmp_path / "x.json")
    with pytest.raises(DataError, match="different tokenizer"):
        idf_weights({"The": 1.0}, tok, V)  # cased token for an uncased tokenizer: none matched


def test_read_idf_table_unknown_tokens_skipped_with_one_warning(tok, tmp_path):
    path = write(tmp_path, json.dumps({"the": 1.5, "cat": 2.0, "dog": -0.5, "Zebra": 4.0, "[unk_token]": 1.0}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = read_idf_table(path, tok, V)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "2 token(s) not in the tokenizer's vocabulary" in message and "'Zebra'" in message
    assert "1 token(s) have a negative IDF" in message and "'dog'" in message
    assert out.unknown == ["Zebra", "[unk_token]"] and out.negative == ["dog"] and out.matched == 3
    unk = tok.convert_tokens_to_ids("[UNK]")
    assert out.weights[unk].item() == 1.0  # unknown strings are not silently mapped to [UNK] (its value stays 1.0)
    assert out.weights[tok.convert_tokens_to_ids("dog")].item() == -0.5


def test_read_idf_table_clean_table_does_not_warn(tok, tmp_path):
    path = write(tmp_path, json.dumps({"the": 1.5}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_idf_table(path, tok, V).matched == 1


def test_round_trip_is_exact(tok, tmp_path):
    gen = torch.Generator().manual_seed(0)
    weights = torch.rand(V, generator=gen) * 10
    weights[::7] = 0.0
    weights[5] = -1.25
    path = write_idf_json(weights, tok, tmp_path / "sub" / "idf.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert len(raw) == V and list(raw)[:3] == ["[PAD]", "[unused0]", "[unused1]"]
    assert raw["[PAD]"] == 0.0 and "##ing" in raw and "the" in raw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the negative entry warns
        back = read_idf_table(path, tok, V, missing_weight=99.0)
    assert torch.equal(back.weights, weights)
    assert (back.matched, back.missing, back.unknown) == (V, 0, [])


def test_write_idf_json_dict_and_non_ascii(tmp_path):
    path = write_idf_json({"café": 1.5, "the": 0.0}, None, tmp_path / "idf.json")
    assert path.read_text(encoding="utf-8") == '{"café": 1.5, "the": 0.0}'
    with pytest.raises(ValueError, match="non-finite"):
        write_idf_json({"a": float("nan")}, None, tmp_path / "nan.json")
    with pytest.raises(ValueError, match="needs the tokenizer"):
        write_idf_json(torch.ones(3), None, tmp_path / "t.json")


def test_idf_dict_covers_min_of_lengths(tok):
    assert list(idf_dict(torch.arange(3.0), tok)) == ["[PAD]", "[unused0]", "[unused1]"]
    padded = idf_dict(torch.zeros(V + 10), tok)
    assert len(padded) == V and all(v == 0.0 for v in padded.values())


@pytest.mark.skipif(not OPENSEARCH_IDF.is_file(), reason="OpenSearch idf.json not available")
def test_real_opensearch_table(tok):
    raw = json.loads(OPENSEARCH_IDF.read_text(encoding="utf-8"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = read_idf_table(OPENSEARCH_IDF, tok, V)
    assert (out.matched, out.unknown, out.missing) == (V, [], 0)
    for token in ("the", "[PAD]", "##ing", "zebra"):
        assert out.weights[tok.convert_tokens_to_ids(token)].item() == pytest.approx(raw[token], rel=1e-6)
    assert out.weights[tok.convert_tokens_to_ids("the")].item() == torch.tensor(raw["the"]).item()
