"""The head benchmark compares like with like: same inputs give the same first loss on both sides (no timings)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


def test_same_first_loss_for_sentence_transformers_and_ours(tiny_bert_dir):
    import splade_head

    losses = {impl: splade_head.build_step(impl, tiny_bert_dir, batch=4, query_len=16, doc_len=32)()
              for impl in ("st", "ours", "plain")}
    assert losses["ours"] == pytest.approx(losses["st"], rel=1e-5)
    assert losses["plain"] == pytest.approx(losses["st"], rel=1e-5)
