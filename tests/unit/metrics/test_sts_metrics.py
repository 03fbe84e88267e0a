"""STS metrics: Spearman / Pearson of the pairs' similarity, as scipy computes them; the encoded-id path; and parity
with sentence-transformers 6.2's SparseEmbeddingSimilarityEvaluator on the bundled SPLADE-tiny."""

from pathlib import Path

import pytest
import torch
from scipy.stats import pearsonr, spearmanr

from splade_lightning.formats.sts import StsData, load_sts, text_id
from splade_lightning.metrics.sts import pairwise_similarity, score_encoded_sts, sts_metrics

REPO = Path(__file__).resolve().parents[3]


def random_reps(n, v=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    reps = torch.rand(n, v, generator=gen)
    return reps * (reps > 0.7)  # sparse, nonnegative


def test_metrics_equal_scipy_for_dot_and_cosine():
    a, b = random_reps(12, seed=1), random_reps(12, seed=2)
    gold = [float(x) for x in torch.linspace(0, 5, 12)]
    dot = (a * b).sum(1)
    cosine = dot / (a.norm(dim=1) * b.norm(dim=1))
    for similarity, predicted in (("dot", dot), ("cosine", cosine)):
        got = sts_metrics(a, b, gold, similarity)
        assert got["spearman"] == pytest.approx(spearmanr(gold, predicted.numpy())[0], abs=1e-9)
        assert got["pearson"] == pytest.approx(pearsonr(gold, predicted.numpy())[0], abs=1e-6)
    active = ((a != 0).sum() + (b != 0).sum()).item() / 24
    assert got["active_dims"] == pytest.approx(active) and got["sparsity_ratio"] == pytest.approx(1 - active / 40)


def test_sparse_layouts_give_the_dense_result():
    a, b = random_reps(6, seed=3), random_reps(6, seed=4)
    for layout in ("to_sparse_coo", "to_sparse_csr"):
        for similarity in ("dot", "cosine"):
            got = pairwise_similarity(getattr(a, layout)(), getattr(b, layout)(), similarity)
            assert torch.allclose(got, pairwise_similarity(a, b, similarity), atol=1e-6)


def test_zero_vector_has_cosine_zero_and_constant_similarity_is_nan():
    a, b = random_reps(3, seed=5), torch.zeros(3, 40)
    assert pairwise_similarity(a, b, "cosine").tolist() == [0.0, 0.0, 0.0]
    got = sts_metrics(a, b, [0.0, 1.0, 2.0])
    assert got["spearman"] != got["spearman"] and got["pearson"] != got["pearson"]  # NaN, as scipy returns


def test_encoded_in_any_order_under_text_ids():
    a, b = random_reps(5, seed=6), random_reps(5, seed=7)
    data = StsData("toy", [""] * 5, [""] * 5, [0.0, 1.0, 4.0, 2.0, 3.0])
    order = [(2, 3), (1, 0), (1, 4), (2, 0), (1, 2), (2, 1), (1, 1), (2, 4), (2, 2), (1, 3)]
    dense = torch.stack([(a if column == 1 else b)[row] for column, row in order])
    got = score_encoded_sts(data, [text_id(column, row) for column, row in order], dense.to_sparse_csr())
    assert got == pytest.approx(sts_metrics(a, b, data.scores))
    assert score_encoded_sts(data, [text_id(c, r) for c, r in order[:-1]], dense[:-1]) is None


def test_parity_with_sentence_transformers_on_splade_tiny():
    """Same model (the bundled SPLADE-tiny), same 32 STSb pairs: our Spearman / Pearson (dot and cosine) and active
    dims equal SparseEmbeddingSimilarityEvaluator's ``spearman_<sim>`` / ``pearson_<sim>`` / ``active_dims``."""
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.evaluation import SparseEmbeddingSimilarityEvaluator

    import splade_lightning
    from splade_lightning.hub import alias_dir
    from splade_lightning.metrics.sts import evaluate_sts

    full = load_sts(REPO / "data" / "stsb-cc" / "dev.jsonl")
    rows = range(0, 625, 20)  # 32 pairs from all three sources
    data = StsData("dev32", [full.sentences1[i] for i in rows], [full.sentences2[i] for i in rows],
                   [full.scores[i] for i in rows])
    st = SparseEncoder(str(alias_dir("splade-tiny")), device="cpu")
    evaluator = SparseEmbeddingSimilarityEvaluator(data.sentences1, data.sentences2, data.scores, batch_size=32,
                                                   similarity_fn_names=["dot", "cosine"], name="d", write_csv=False)
    expected = evaluator(st)
    ours = splade_lightning.load("splade-tiny", device="cpu")
    ours.max_doc_length = st.max_seq_length  # sentence-transformers truncates every text to max_seq_length
    got, _ = evaluate_sts(ours, data, batch_size=32, progress=False)
    reps = [ours.encode_document(texts, 32) for texts in (data.sentences1, data.sentences2)]
    cosine = sts_metrics(*reps, data.scores, "cosine")
    for similarity, metrics in (("dot", got), ("cosine", cosine)):
        assert metrics["spearman"] == pytest.approx(expected[f"d_spearman_{similarity}"], abs=1e-6)
        assert metrics["pearson"] == pytest.approx(expected[f"d_pearson_{similarity}"], abs=1e-6)
    assert got["active_dims"] == pytest.approx(expected["d_active_dims"], abs=1e-4)
    assert got["sparsity_ratio"] == pytest.approx(expected["d_sparsity_ratio"], abs=1e-6)
    assert 0.3 < got["spearman"] < 1.0  # a real model correlates with the gold scores
