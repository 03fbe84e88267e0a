"""Collators: shapes, truncation, padding to the longest, column-major doc layout, one kind per eval batch."""

from __future__ import annotations

import pytest

from splade_lightning.data import EncodeCollator, EvalCollator, TrainCollator
from splade_lightning.errors import ConfigError
from splade_lightning.types import EncodeBatch, TrainBatch


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from splade_lightning.hub import load_tokenizer

    return load_tokenizer(tokenizer_dir)


def test_train_collator_column_major(tokenizer):
    examples = [(f"query {i}", [f"positive {i}", f"first negative {i}", f"second negative {i}"]) for i in range(3)]
    batch = TrainCollator(tokenizer, max_query_length=8, max_doc_length=16)(examples)
    assert isinstance(batch, TrainBatch) and batch.num_negatives == 2 and batch.batch_size == 3
    assert batch.query_input_ids.shape[0] == 3 and batch.doc_input_ids.shape[0] == 9
    assert batch.doc_attention_mask.shape == batch.doc_input_ids.shape and not hasattr(batch, "token_type_ids")
    docs = tokenizer.batch_decode(batch.doc_input_ids, skip_special_tokens=True)
    assert docs == ["positive 0", "positive 1", "positive 2", "first negative 0", "first negative 1",
                    "first negative 2", "second negative 0", "second negative 1", "second negative 2"]
    assert tokenizer.batch_decode(batch.query_input_ids, skip_special_tokens=True) == ["query 0", "query 1", "query 2"]


def test_train_collator_pairs_truncation_and_padding(tokenizer):
    long = " ".join(["word"] * 100)
    batch = TrainCollator(tokenizer, 4, 10)([("a query that is rather long", [long]), ("q", ["short"])])
    assert batch.num_negatives == 0 and batch.query_input_ids.shape == (2, 4) and batch.doc_input_ids.shape == (2, 10)
    assert batch.doc_attention_mask[1].tolist() == [1, 1, 1] + [0] * 7  # [CLS] short [SEP] + padding
    assert batch.query_input_ids[0, -1].item() == tokenizer.sep_token_id
    with pytest.raises(ValueError, match="same number"):
        TrainCollator(tokenizer)([("q", ["a", "b"]), ("q", ["c"])])
    with pytest.raises(ConfigError, match="max_doc_length"):
        TrainCollator(tokenizer, 8, 0)


def test_encode_and_eval_collators(tokenizer):
    batch = EncodeCollator(tokenizer, 6, kind="doc", dataset="toy")([("d1", "a b c d e f g h"), ("d2", "")])
    assert isinstance(batch, EncodeBatch) and batch.ids == ["d1", "d2"] and batch.kind == "doc"
    assert batch.dataset == "toy" and batch.input_ids.shape == (2, 6) and batch.attention_mask[1].sum().item() == 2
    collate = EvalCollator(EncodeCollator(tokenizer, 3, "query", "toy"), EncodeCollator(tokenizer, 9, "doc", "toy"))
    queries = collate([("query", "q1", "one two three four"), ("query", "q2", "x")])
    assert queries.kind == "query" and queries.input_ids.shape == (2, 3) and queries.ids == ["q1", "q2"]
    assert collate([("doc", "d1", "one two three four")]).input_ids.shape == (1, 6)
    with pytest.raises(ValueError, match="one kind"):
        collate([("doc", "d1", "x"), ("query", "q1", "y")])
