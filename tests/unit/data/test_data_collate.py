"""Collators: shapes, truncation, padding to the longest, column-major doc layout, one kind per eval batch."""

from __future__ import annotations

import pytest

from splade_lightning.data import EncodeCollator, EvalCollator, TrainCollator
from splade_lightning.data.collate import tokenize
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


def test_pad_to_multiple_of_rounds_up_within_max_length(tokenizer):
    texts = ["one", "one two three four five"]  # 3 and 7 tokens with [CLS]/[SEP]
    longest = TrainCollator(tokenizer, 9, 12)([(text, [text]) for text in texts])
    padded = TrainCollator(tokenizer, 9, 12, pad_to_multiple_of=4)([(text, [text]) for text in texts])
    assert longest.query_input_ids.shape == (2, 7) and padded.query_input_ids.shape == (2, 8)
    assert padded.doc_input_ids.shape == (2, 8)  # 12 allows 8
    capped = TrainCollator(tokenizer, 7, 12, pad_to_multiple_of=4)([(text, [text]) for text in texts])
    assert capped.query_input_ids.shape == (2, 7)  # the multiple (8) is past max_query_length: stop there
    for ids, mask, ref_ids, ref_mask in ((padded.query_input_ids, padded.query_attention_mask,
                                          longest.query_input_ids, longest.query_attention_mask),
                                         (padded.doc_input_ids, padded.doc_attention_mask,
                                          longest.doc_input_ids, longest.doc_attention_mask)):
        assert ids[:, :7].equal(ref_ids) and mask[:, :7].equal(ref_mask)
        assert (ids[:, 7:] == tokenizer.pad_token_id).all() and (mask[:, 7:] == 0).all()
    exact = TrainCollator(tokenizer, 9, 12, pad_to_multiple_of=7)([(text, [text]) for text in texts])
    assert exact.query_input_ids.shape == (2, 7)  # already a multiple: unchanged
    with pytest.raises(ConfigError, match="pad_to_multiple_of must be a positive int, got 0"):
        TrainCollator(tokenizer, pad_to_multiple_of=0)
    with pytest.raises(ConfigError, match="pad_to_multiple_of must be a positive int, got 0"):
        tokenize(tokenizer, texts, 9, pad_to_multiple_of=0)


def test_pad_to_multiple_of_appends_on_the_right_whatever_the_padding_side(tokenizer, tiny_bert_dir):
    """Columns added on the left would move every text's tokens to other absolute positions; on the right they
    leave a left-padding tokenizer's own layout, so the representations stay those without the extra padding."""
    import copy

    import torch

    from splade_lightning.models import SpladeEncoder

    left = copy.deepcopy(tokenizer)
    left.padding_side = "left"
    examples = [("one", ["one"]), ("one two three four five", ["x"])]
    batch = TrainCollator(left, 9, 12, pad_to_multiple_of=4)(examples)
    unpadded = TrainCollator(left, 9, 12)(examples)
    assert batch.query_input_ids.shape == (2, 8) and unpadded.query_input_ids.shape == (2, 7)
    assert batch.query_attention_mask[0].tolist() == [0] * 4 + [1] * 3 + [0]  # the tokenizer's left padding, then ours
    assert batch.query_attention_mask[1].tolist() == [1] * 7 + [0]
    assert batch.query_input_ids[:, :7].equal(unpadded.query_input_ids)
    assert (batch.query_input_ids[:, 7] == left.pad_token_id).all()
    encoder = SpladeEncoder(tiny_bert_dir).eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder(batch.query_input_ids, batch.query_attention_mask),
                                   encoder(unpadded.query_input_ids, unpadded.query_attention_mask),
                                   atol=1e-5, rtol=1e-5)


def test_pad_to_multiple_of_leaves_the_representations(tokenizer, tiny_bert_dir):
    """The extra padding is masked: SPLADE representations of a padded batch equal the longest-padded ones (float
    rounding of GEMMs of other shapes aside)."""
    import torch

    from splade_lightning.models import SpladeEncoder

    encoder = SpladeEncoder(tiny_bert_dir).eval()
    examples = [("what is a sparse retriever", ["a retriever of sparse vectors over the vocabulary"]),
                ("bm25", ["okapi best matching twenty five, a ranking function"])]
    reps = {}
    for multiple in (None, 16):
        batch = TrainCollator(tokenizer, 32, 64, pad_to_multiple_of=multiple)(examples)
        with torch.no_grad():
            reps[multiple] = (encoder(batch.query_input_ids, batch.query_attention_mask),
                              encoder(batch.doc_input_ids, batch.doc_attention_mask), batch.doc_input_ids.shape[1])
    assert reps[16][2] == 16 and reps[None][2] < 16
    for padded, longest in zip(reps[16][:2], reps[None][:2]):
        assert padded.shape == longest.shape and (padded > 0).sum() > 0
        torch.testing.assert_close(padded, longest, atol=1e-5, rtol=1e-5)
