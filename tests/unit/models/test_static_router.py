"""StaticSparseEncoder (inference-free query side) and QueryDocRouter, incl. parity with sentence-transformers 6.x
``SparseStaticEmbedding.from_json`` on OpenSearch's idf.json."""

import json
import math

import pytest
import torch

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.models import QueryDocRouter, SpladeEncoder, StaticSparseEncoder
from tests.conftest import SHARED_DATA, write_jsonl

OS_IDF = SHARED_DATA / "opensearch-idf" / "idf.json"
QUERIES = ["what is the capital of france", "the cat the cat sat", "how do python snakes hunt", "a"]


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def tokenize(tokenizer, texts, **kwargs):
    enc = tokenizer(texts, padding=True, return_tensors="pt", **kwargs)
    return enc["input_ids"], enc["attention_mask"]


def test_binary_bag_of_unique_non_special_tokens(tokenizer_dir, tokenizer):
    encoder = StaticSparseEncoder(tokenizer_dir)
    ids, mask = tokenize(tokenizer, QUERIES)
    reps = encoder(ids, mask)
    assert reps.shape == (4, len(tokenizer)) == (4, encoder.vocab_size)
    cat = tokenizer.convert_tokens_to_ids("cat")
    assert reps[1, cat] == 1.0  # "cat" twice counts once
    assert set(reps[1].nonzero().flatten().tolist()) == set(tokenizer.convert_tokens_to_ids(["the", "cat", "sat"]))
    for special in tokenizer.all_special_ids:  # [CLS], [SEP], [PAD] (row 3 is padded), [UNK], [MASK]
        assert (reps[:, special] == 0).all()


def test_weights_are_clamped_trainable_or_frozen(tokenizer_dir, tokenizer):
    ids, mask = tokenize(tokenizer, QUERIES[:2])
    encoder = StaticSparseEncoder(tokenizer_dir)
    with torch.no_grad():
        encoder.weight[tokenizer.convert_tokens_to_ids("cat")] = -3.0
        encoder.weight[tokenizer.convert_tokens_to_ids("the")] = 2.5
    reps = encoder(ids, mask)
    cat, the = tokenizer.convert_tokens_to_ids(["cat", "the"])
    assert reps[1, cat] == 0.0 and reps[1, the] == 2.5
    reps.sum().backward()
    the, france = tokenizer.convert_tokens_to_ids(["the", "france"])
    assert encoder.weight.grad[the] == 2.0 and encoder.weight.grad[france] == 1.0  # one per query containing it
    assert encoder.weight.grad[tokenizer.cls_token_id] == 0.0
    frozen = StaticSparseEncoder(tokenizer_dir, frozen=True)
    assert frozen.frozen and not frozen(ids, mask).requires_grad


def test_init_from_idf_file_and_missing_tokens(tokenizer_dir, tokenizer, tmp_path):
    table = tmp_path / "idf.json"
    table.write_text(json.dumps({"the": 0.5, "cat": 7.25, "[CLS]": 9.0}))
    encoder = StaticSparseEncoder(tokenizer_dir, idf_file=str(table), missing_weight=2.0)
    the, cat, sat = tokenizer.convert_tokens_to_ids(["the", "cat", "sat"])
    assert encoder.weight[the] == 0.5 and encoder.weight[cat] == 7.25 and encoder.weight[sat] == 2.0
    ids, mask = tokenize(tokenizer, ["the cat sat"])
    reps = encoder(ids, mask)[0]
    assert reps[tokenizer.cls_token_id] == 0.0  # specials are zeroed even when the table lists them
    assert reps[the] == 0.5 and reps[cat] == 7.25 and reps[sat] == 2.0


def test_init_from_a_precomputed_corpus_idf_table(tokenizer_dir, tokenizer, tmp_path):
    """The model reads no corpus: the table is computed beforehand (what ``splade_lightning idf --corpus`` writes) and
    handed in as ``idf_file``."""
    from splade_lightning.formats.idf_json import write_idf_json
    from splade_lightning.idf.corpus import corpus_idf

    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "1", "text": "cat sat"}, {"_id": "2", "text": "cat cat"},
                                                      {"_id": "3", "title": "dog", "text": "ran"}])
    table, _, _ = corpus_idf(corpus, tokenizer, progress=False)
    encoder = StaticSparseEncoder(tokenizer_dir, idf_file=str(write_idf_json(table, None, tmp_path / "idf.json")))
    cat, dog, sat, zebra = tokenizer.convert_tokens_to_ids(["cat", "dog", "sat", "zebra"])
    n = 3
    assert encoder.weight[cat].item() == pytest.approx(math.log((n + 1) / (2 + 1)) + 1, rel=1e-6)
    assert encoder.weight[sat].item() == pytest.approx(math.log((n + 1) / (1 + 1)) + 1, rel=1e-6)
    assert encoder.weight[dog].item() == pytest.approx(math.log((n + 1) / (1 + 1)) + 1, rel=1e-6)  # title counts
    assert encoder.weight[zebra].item() == pytest.approx(math.log(n + 1) + 1, rel=1e-6)  # unseen: df = 0


def test_bad_arguments(tokenizer_dir, tmp_path):
    with pytest.raises(TypeError, match="idf_corpus"):  # removed: the model reads no corpus at construction
        StaticSparseEncoder(tokenizer_dir, idf_corpus="b")
    with pytest.raises(ConfigError, match="vocab_size=10 is smaller"):
        StaticSparseEncoder(tokenizer_dir, vocab_size=10)
    with pytest.raises(DataError, match="nope.json"):
        StaticSparseEncoder(tokenizer_dir, idf_file=str(tmp_path / "nope.json"))


@pytest.mark.skipif(not OS_IDF.is_file(), reason="needs ../shared/data/opensearch-idf")
def test_parity_with_sentence_transformers_from_json(tokenizer_dir, tokenizer):
    """Frozen OpenSearch table: our query vectors equal ST's ``SparseStaticEmbedding.from_json`` for every token.

    ST tokenises without [CLS]/[SEP]; we tokenise with them and zero every special token (as OpenSearch does), so the
    vectors agree whenever the query has no [UNK] (see the next test for the intended differences)."""
    from sentence_transformers.sparse_encoder.models import SparseStaticEmbedding

    st = SparseStaticEmbedding.from_json(str(OS_IDF), tokenizer=tokenizer, frozen=True)
    features = st.tokenize(QUERIES)
    expected = st(features)["sentence_embedding"]
    ours = StaticSparseEncoder(tokenizer_dir, idf_file=str(OS_IDF), frozen=True)
    ids, mask = tokenize(tokenizer, QUERIES)
    torch.testing.assert_close(ours(ids, mask), expected, rtol=0, atol=0)


@pytest.mark.skipif(not OS_IDF.is_file(), reason="needs ../shared/data/opensearch-idf")
def test_documented_differences_from_sentence_transformers(tokenizer_dir, tokenizer, tmp_path):
    """Missing tokens: ST 0, ours ``missing_weight`` (OpenSearch 1.0); negative weights: ST keeps them, we clamp at 0
    (OpenSearch relu); [UNK]: ST scores it, we zero it with the other special tokens (OpenSearch)."""
    from sentence_transformers.sparse_encoder.models import SparseStaticEmbedding

    table = json.loads(OS_IDF.read_text())
    del table["cat"]
    table["sat"] = -1.5
    path = tmp_path / "idf.json"
    path.write_text(json.dumps(table))
    text = ["the cat sat on \u2603"]  # a snowman is [UNK] in BERT-uncased
    st = SparseStaticEmbedding.from_json(str(path), tokenizer=tokenizer, frozen=True)
    expected = st(st.tokenize(text))["sentence_embedding"][0]
    ids, mask = tokenize(tokenizer, text)
    cat, sat, unk = tokenizer.convert_tokens_to_ids(["cat", "sat", "[UNK]"])
    assert unk in ids[0].tolist()
    ours = StaticSparseEncoder(tokenizer_dir, idf_file=str(path), frozen=True)(ids, mask)[0]
    assert expected[cat] == 0.0 and ours[cat] == 1.0
    assert expected[sat] == -1.5 and ours[sat] == 0.0
    assert expected[unk] == table["[UNK]"] and ours[unk] == 0.0
    same = torch.ones_like(ours, dtype=torch.bool)
    same[[cat, sat, unk]] = False
    torch.testing.assert_close(ours[same], expected[same], rtol=0, atol=0)
    st_like = StaticSparseEncoder(tokenizer_dir, idf_file=str(path), frozen=True, missing_weight=0.0)(ids, mask)[0]
    assert st_like[cat] == 0.0  # missing_weight=0 reproduces ST's treatment of missing tokens


def test_router_routes_and_scores(tiny_bert_dir, tokenizer, tmp_path):
    doc = SpladeEncoder(tiny_bert_dir).eval()
    router = QueryDocRouter(doc)  # default query side: trainable ones over the same tokenizer and width
    ids, mask = tokenize(tokenizer, QUERIES)
    torch.testing.assert_close(router.encode_query(ids, mask), router.query_encoder(ids, mask))
    torch.testing.assert_close(router.encode_doc(ids, mask), doc(ids, mask))
    torch.testing.assert_close(router.encode("document", ids, mask), router(ids, mask))
    with pytest.raises(ConfigError, match="available routes"):
        router.encode("passage", ids, mask)

    table = tmp_path / "idf.json"
    table.write_text(json.dumps({"capital": 4.0, "france": -2.0}))
    aware = QueryDocRouter(doc, StaticSparseEncoder(tiny_bert_dir), score_idf=str(table))
    q = aware.encode_query(ids, mask)
    capital, france, what = tokenizer.convert_tokens_to_ids(["capital", "france", "what"])
    assert q[0, capital] == 4.0 and q[0, france] == 0.0 and q[0, what] == 1.0  # relu(idf), unlisted tokens 1
    assert aware.query_term_weights()[capital] == 4.0


def test_router_rejects_mismatched_spaces(tiny_bert_dir, tmp_path):
    from transformers import BertTokenizerFast

    doc = SpladeEncoder(tiny_bert_dir)
    with pytest.raises(ConfigError, match="30530 dimensions but the document route has 30522"):
        QueryDocRouter(doc, StaticSparseEncoder(tiny_bert_dir, vocab_size=30530))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cat", "dog"]) + "\n")
    other = tmp_path / "other_tok"
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(other)
    with pytest.raises(ConfigError, match="different vocabularies"):
        QueryDocRouter(doc, StaticSparseEncoder(str(other), vocab_size=30522))
    with pytest.raises(ConfigError, match="lacks"):
        QueryDocRouter(doc, torch.nn.Linear(2, 2))
