"""IR metrics: hand-computed values, relevance threshold, missing queries, trec_eval ties, pytrec_eval consistency."""

from __future__ import annotations

import csv
import json
import random
from math import log2
from pathlib import Path

import ir_measures
import pytest
import pytrec_eval

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.formats.trec import trec_order
from splade_lightning.metrics import parse_measure, per_query_metrics, retrieval_metrics

MSMARCO = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "msmarco-trecdl-5k"

QRELS = {
    "q1": {"d1": 3, "d2": 1, "d3": 2, "d4": 0},
    "q2": {"d5": 1},
    "q3": {"d6": 2},  # missing from the run: scores 0
    "q4": {"d7": 0},  # no relevant document: not averaged
}
RUN = {
    "q1": {"d4": 0.9, "d2": 0.8, "d1": 0.7, "dx": 0.6, "d3": 0.5},  # ranks: d4 1, d2 2, d1 3, dx 4, d3 5
    "q2": {"dx": 0.9, "d5": 0.3},
    "q4": {"d7": 1.0},
    "q9": {"d1": 1.0},  # not in the qrels: ignored
}
MEASURES = ("ndcg@10", "mrr@10", "mrr@2", "recall@3", "p@2", "map", "map@3")


def test_hand_computed_values_min_relevance_1():
    ndcg_q1 = (1 / log2(3) + 3 / log2(4) + 2 / log2(6)) / (3 / log2(2) + 2 / log2(3) + 1 / log2(4))
    expected = {
        "ndcg@10": {"q1": ndcg_q1, "q2": 1 / log2(3), "q3": 0.0},
        "mrr@10": {"q1": 1 / 2, "q2": 1 / 2, "q3": 0.0},
        "mrr@2": {"q1": 1 / 2, "q2": 1 / 2, "q3": 0.0},
        "recall@3": {"q1": 2 / 3, "q2": 1.0, "q3": 0.0},
        "p@2": {"q1": 1 / 2, "q2": 1 / 2, "q3": 0.0},
        "map": {"q1": (1 / 2 + 2 / 3 + 3 / 5) / 3, "q2": 1 / 2, "q3": 0.0},
        "map@3": {"q1": (1 / 2 + 2 / 3) / 3, "q2": 1 / 2, "q3": 0.0},  # trec_eval divides by all 3 relevant docs
    }
    per_query = per_query_metrics(RUN, QRELS, min_relevance=1, measures=MEASURES)
    assert per_query.keys() == expected.keys()
    for name, values in expected.items():
        assert per_query[name] == pytest.approx(values), name
    means = retrieval_metrics(RUN, QRELS, min_relevance=1, measures=MEASURES)
    assert means == pytest.approx({name: sum(v.values()) / 3 for name, v in expected.items()})


def test_min_relevance_2_changes_binary_measures_and_their_query_set_but_not_ndcg():
    per_query = per_query_metrics(RUN, QRELS, min_relevance=2, measures=MEASURES)
    assert set(per_query["ndcg@10"]) == {"q1", "q2", "q3"}  # nDCG: any grade > 0
    for name in MEASURES[1:]:
        assert set(per_query[name]) == {"q1", "q3"}, name  # q2 has no grade >= 2
    assert per_query["mrr@10"] == pytest.approx({"q1": 1 / 3, "q3": 0.0})  # first grade >= 2 is d1 at rank 3
    assert per_query["mrr@2"] == pytest.approx({"q1": 0.0, "q3": 0.0})
    assert per_query["recall@3"] == pytest.approx({"q1": 1 / 2, "q3": 0.0})
    assert per_query["map"] == pytest.approx({"q1": (1 / 3 + 2 / 5) / 2, "q3": 0.0})
    assert per_query["ndcg@10"] == per_query_metrics(RUN, QRELS, 1, ["ndcg@10"])["ndcg@10"]


def test_missing_and_empty_queries_count_as_zero_unlike_plain_pytrec_eval():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    run = {"q1": {"a": 1.0}, "q3": {}}
    plain = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)
    assert "q2" not in plain  # pytrec_eval silently drops qrels queries that are not in the run
    assert per_query_metrics(run, qrels, measures=["mrr@10"]) == {"mrr@10": {"q1": 1.0, "q2": 0.0, "q3": 0.0}}
    assert retrieval_metrics(run, qrels, measures=["mrr@10", "ndcg@10"]) == pytest.approx(
        {"mrr@10": 1 / 3, "ndcg@10": 1 / 3})


def test_queries_without_relevant_documents_are_not_averaged_though_trec_eval_would():
    qrels = {"q1": {"a": 1}, "q2": {"b": 0}}
    run = {"q1": {"a": 1.0}, "q2": {"b": 1.0}}
    plain = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank", "num_q"}).evaluate(run)
    assert plain["q2"]["recip_rank"] == 0.0  # trec_eval evaluates it as 0 and counts it in num_q
    assert retrieval_metrics(run, qrels, measures=["mrr@10"]) == {"mrr@10": 1.0}
    with pytest.raises(DataError, match="no qrels query has a relevant document for 'mrr@10'"):
        retrieval_metrics(run, qrels, min_relevance=2, measures=["mrr@10"])


def test_trec_eval_breaks_ties_by_descending_doc_id_and_mrr_cutoff_follows_it():
    # trec_eval sorts by score, then strcmp(docno) descending: c, b, a.
    qrels, run = {"q": {"a": 1}}, {"q": {"a": 1.0, "b": 1.0, "c": 1.0}}
    plain = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)
    assert plain["q"]["recip_rank"] == pytest.approx(1 / 3)
    assert [doc for doc, _ in trec_order(run["q"])] == ["c", "b", "a"]
    got = retrieval_metrics(run, qrels, measures=["mrr@10", "mrr@2", "mrr@3", "p@1", "ndcg@2"])
    assert got == pytest.approx({"mrr@10": 1 / 3, "mrr@2": 0.0, "mrr@3": 1 / 3, "p@1": 0.0, "ndcg@2": 0.0})
    # String order, not numeric: "9" > "10".
    qrels, run = {"q": {"9": 1}}, {"q": {"10": 1.0, "9": 1.0}}
    assert pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)["q"]["recip_rank"] == 1.0
    assert retrieval_metrics(run, qrels, measures=["mrr@1"]) == {"mrr@1": 1.0}


def _reference_rr(ranking: dict[str, float], judged: dict[str, int], k: int, rel: int) -> float:
    for rank, (doc, _) in enumerate(trec_order(ranking)[:k], start=1):
        if judged.get(doc, 0) >= rel:
            return 1 / rank
    return 0.0


@pytest.mark.parametrize("seed", range(5))
def test_tie_heavy_random_runs_agree_with_pytrec_eval_and_a_reference_rr(seed):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(30)]
    qrels = {f"q{i}": {d: rng.randint(0, 3) for d in rng.sample(docs, 8)} for i in range(12)}
    run = {q: {d: float(rng.randint(0, 3)) for d in rng.sample(docs, 15)} for q in list(qrels)[:10]}
    for rel in (1, 2):
        got = per_query_metrics(run, qrels, rel, ["mrr@5", "ndcg@5", "recall@5", "p@5", "map"])
        plain = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_5", "recall_5", "P_5", "map"}, relevance_level=rel)
        plain = plain.evaluate(run)
        for name, key in (("ndcg@5", "ndcg_cut_5"), ("recall@5", "recall_5"), ("p@5", "P_5"), ("map", "map")):
            assert got[name] == pytest.approx({q: plain[q][key] if q in plain else 0.0 for q in got[name]}), name
        expected_rr = {q: _reference_rr(run.get(q, {}), qrels[q], 5, rel) for q in got["mrr@5"]}
        assert got["mrr@5"] == pytest.approx(expected_rr)


def _load_msmarco_qrels() -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(MSMARCO / "qrels" / "test.tsv", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return qrels


@pytest.mark.skipif(not MSMARCO.is_dir(), reason="shared msmarco-trecdl-5k data not available")
def test_random_run_on_msmarco_trecdl_matches_pytrec_eval():
    qrels = _load_msmarco_qrels()
    with open(MSMARCO / "corpus.jsonl") as handle:
        corpus = [json.loads(line)["_id"] for line in handle]
    rng = random.Random(0)
    run = {}
    for query_id in sorted(qrels)[3:]:  # the first three queries are missing from the run
        judged = sorted(qrels[query_id])
        candidates = rng.sample(judged, min(60, len(judged))) + rng.sample(corpus, 60)
        run[query_id] = {doc: rng.random() for doc in candidates}  # distinct scores: no ties
    measures = ["ndcg@10", "mrr@10", "recall@100", "p@10", "map", "map@100"]
    got = retrieval_metrics(run, qrels, min_relevance=2, measures=measures)
    plain = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recall_100", "P_10", "map", "map_cut_100"},
                                           relevance_level=2).evaluate(run)
    assert len(plain) == 40 and len(qrels) == 43  # pytrec_eval only sees the 40 queries in the run
    for name, key in (("ndcg@10", "ndcg_cut_10"), ("recall@100", "recall_100"), ("p@10", "P_10"), ("map", "map"),
                      ("map@100", "map_cut_100")):
        assert got[name] == pytest.approx(sum(v[key] for v in plain.values()) / 43), name
    # RR@10 from an independent implementation (ir_measures' default provider; no ties, so order is unambiguous).
    independent = ir_measures.calc_aggregate([ir_measures.RR(rel=2) @ 10], qrels, run)
    assert got["mrr@10"] == pytest.approx(independent[ir_measures.RR(rel=2) @ 10])
    assert 0.0 < got["ndcg@10"] < 1.0 and 0.0 < got["mrr@10"] <= 1.0


def test_parse_measure_and_unknown_names():
    assert parse_measure("ndcg@10").cutoff == 10 and parse_measure("map").cutoff is None
    assert parse_measure("recall@100").family == "recall"
    for bad in ("ndcg", "NDCG@10", "mrr@0", "recall@", "bpref", "p@10.5", "map@x"):
        with pytest.raises(ConfigError, match=r"supported: ndcg@k, mrr@k, recall@k, p@k, map, map@k"):
            retrieval_metrics(RUN, QRELS, measures=[bad])


def test_bad_arguments_are_rejected():
    with pytest.raises(ConfigError, match="min_relevance must be an integer >= 1"):
        retrieval_metrics(RUN, QRELS, min_relevance=0)
    with pytest.raises(ConfigError, match="measures must be a non-empty sequence"):
        retrieval_metrics(RUN, QRELS, measures="ndcg@10")
    with pytest.raises(DataError, match=r"qrels\['q'\]\['d'\] must be an integer grade"):
        retrieval_metrics(RUN, {"q": {"d": 1.5}})
    with pytest.raises(DataError, match="qrels must be a non-empty"):
        retrieval_metrics(RUN, {})
    with pytest.raises(DataError, match=r"run\['q1'\]\['d1'\] must be a finite number, got nan"):
        retrieval_metrics({"q1": {"d1": float("nan")}}, QRELS)
    with pytest.raises(DataError, match=r"run\['q1'\] must map doc ids to scores"):
        retrieval_metrics({"q1": ["d1"]}, QRELS)
