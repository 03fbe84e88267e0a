"""Our filters and selection against sentence-transformers 6.2's own ``mine_hard_negatives`` on the same scores.

A stub model gives every text a fixed random vector (dot-product similarity, scores of both signs), so ST and we see
identical candidate scores; the negatives chosen with sampling_strategy="top" must then be identical.
"""

import numpy as np
import pytest
import torch

from splade_lightning.mining.filters import MiningRule, default_range_max, mine_negatives, widens_range

datasets = pytest.importorskip("datasets")
hard_negatives = pytest.importorskip("sentence_transformers.util.hard_negatives")


class StubModel:
    """The parts of a SentenceTransformer that ``mine_hard_negatives`` calls, backed by a text -> vector table."""

    device = torch.device("cpu")

    def __init__(self, table: dict[str, np.ndarray]):
        self.table = table

    def _encode(self, texts, **kwargs):
        return np.stack([self.table[t] for t in texts]).astype(np.float32)

    encode_query = encode_document = _encode

    def similarity(self, a, b):
        return torch.as_tensor(a) @ torch.as_tensor(b).T

    def similarity_pairwise(self, a, b):
        return (torch.as_tensor(a) * torch.as_tensor(b)).sum(-1)


def _problem(seed: int, n_queries=12, n_docs=60, dim=8, max_pos=2):
    rng = np.random.default_rng(seed)
    queries = [f"query {i}" for i in range(n_queries)]
    corpus = [f"doc {j}" for j in range(n_docs)]
    table = {t: rng.normal(size=dim) for t in queries + corpus}
    positives = [rng.choice(n_docs, size=1 + (i % max_pos), replace=False).tolist() for i in range(n_queries)]
    return queries, corpus, table, positives


def _ours(queries, corpus, table, positives, rule_kwargs, range_max):
    q = torch.as_tensor(np.stack([table[t] for t in queries]).astype(np.float32))
    d = torch.as_tensor(np.stack([table[t] for t in corpus]).astype(np.float32))
    scores = (q @ d.T).numpy()
    max_positives = max(len(p) for p in positives)
    widened = widens_range(rule_kwargs.get("absolute_margin"), rule_kwargs.get("relative_margin"),
                           rule_kwargs.get("max_score"))
    if range_max is None:
        range_max = default_range_max(rule_kwargs.get("range_min", 0), rule_kwargs["num_negatives"], max_positives,
                                      widened)
    k = min(range_max + max_positives, len(corpus))
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    pad = range_max + max_positives - k
    cand_rows = np.pad(order, ((0, 0), (0, pad)), constant_values=-1)
    cand_scores = np.pad(np.take_along_axis(scores, order, 1), ((0, 0), (0, pad)), constant_values=-np.inf)
    pos_scores = [(q[i : i + 1] * d[p]).sum(-1).numpy() for i, p in enumerate(positives)]
    rule = MiningRule(range_max=range_max, **rule_kwargs)
    mined = mine_negatives(cand_scores, cand_rows, positives, pos_scores, rule)
    return {queries[i]: ([corpus[r] for r in rows], s) for i, (rows, s) in enumerate(zip(mined.rows, mined.scores))}


def _st(queries, corpus, table, positives, rule_kwargs, range_max):
    anchors = [queries[i] for i, p in enumerate(positives) for _ in p]
    pos_texts = [corpus[j] for p in positives for j in p]
    dataset = datasets.Dataset.from_dict({"query": anchors, "positive": pos_texts})
    out = hard_negatives.mine_hard_negatives(dataset, StubModel(table), corpus=corpus, range_max=range_max,
                                             output_format="labeled-list", output_scores=True, verbose=False,
                                             **rule_kwargs)
    result = {}
    for row in out:
        # labeled-list: [positive, negatives...] with scores [pos, neg...]; one row per (query, positive)
        result[row["query"]] = (row["positive"][1:], np.array(row["scores"][1:]))
    return result


CASES = [
    {"num_negatives": 3},
    {"num_negatives": 4, "range_min": 2},
    {"num_negatives": 3, "absolute_margin": 0.5},
    {"num_negatives": 3, "absolute_margin": 0.0, "range_min": 1},
    {"num_negatives": 5, "relative_margin": 0.05},
    {"num_negatives": 3, "relative_margin": 0.3, "max_score": 1.0},
    {"num_negatives": 3, "max_score": 0.5, "min_score": -1.0},
    {"num_negatives": 2, "min_score": 0.0},
]


@pytest.mark.parametrize("range_max", [None, 12])
@pytest.mark.parametrize("rule_kwargs", CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_top_negatives_match_sentence_transformers(rule_kwargs, range_max):
    queries, corpus, table, positives = _problem(seed=len(str(rule_kwargs)) + (range_max or 0))
    if range_max is not None and rule_kwargs["num_negatives"] > range_max - rule_kwargs.get("range_min", 0):
        pytest.skip("ST rejects this combination")
    ours = _ours(queries, corpus, table, positives, rule_kwargs, range_max)
    st = _st(queries, corpus, table, positives, rule_kwargs, range_max)
    assert set(st) == {q for q, (rows, _) in ours.items() if len(rows)}  # ST drops rows without any negative
    for query, (texts, scores) in st.items():
        assert ours[query][0] == texts, query
        np.testing.assert_allclose(ours[query][1], scores, rtol=1e-5, atol=1e-5)


def test_parity_cases_exercise_the_filters():
    """The random problems are not trivial: filters remove candidates and some queries get fewer negatives."""
    queries, corpus, table, positives = _problem(seed=3)
    kwargs = {"num_negatives": 5, "relative_margin": 0.05}
    ours = _ours(queries, corpus, table, positives, kwargs, None)
    counts = [len(rows) for rows, _ in ours.values()]
    assert min(counts) < 5 and max(counts) == 5
