"""Vectors from SparseModel can be used by later code (search, metrics) outside any inference context."""

import torch

from splade_lightning.api import SparseModel
from splade_lightning.models import SpladeEncoder
from splade_lightning.retrieval.evaluation import evaluate_retrieval


def test_encoded_vectors_feed_evaluate_retrieval(tiny_bert_dir, tokenizer_dir):
    from transformers import AutoTokenizer

    model = SparseModel(SpladeEncoder(tiny_bert_dir), AutoTokenizer.from_pretrained(tokenizer_dir), 8, 16)
    queries, docs = model.encode_query(["a cat", "a dog"]), model.encode_document(["cats", "dogs", "fish"])
    assert not queries.is_inference() and not docs.is_inference()
    result = evaluate_retrieval(["q1", "q2"], queries, ["d1", "d2", "d3"], docs, {"q1": {"d1": 1}, "q2": {"d2": 1}},
                                k=3, measures=("ndcg@3",))
    assert 0.0 <= result.metrics["ndcg@3"] <= 1.0 and set(result.run) == {"q1", "q2"}
    torch.testing.assert_close(model.encode_query("a cat").to_dense(), queries.to_dense()[0])
