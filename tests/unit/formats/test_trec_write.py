"""to_run / trec_order / write_trec_run."""

from __future__ import annotations

import ir_measures
import pytest
import torch

from splade_lightning.errors import DataError
from splade_lightning.formats.trec import trec_order, write_trec_run
from splade_lightning.retrieval.exact import to_run


def test_to_run_maps_rows_and_indices_to_ids():
    scores = torch.tensor([[3.0, 1.0], [2.5, 2.5]])
    indices = torch.tensor([[2, 0], [1, 2]])
    run = to_run(["q1", "q2"], ["d0", "d1", "d2"], scores, indices)
    assert run == {"q1": {"d2": 3.0, "d0": 1.0}, "q2": {"d1": 2.5, "d2": 2.5}}
    assert list(run["q1"]) == ["d2", "d0"]


def test_to_run_keeps_float32_scores_exactly():
    score = torch.tensor([[0.1]], dtype=torch.float32)
    run = to_run(["q"], ["d"], score, torch.zeros(1, 1, dtype=torch.int64))
    assert run["q"]["d"] == float(score[0, 0]) and torch.tensor(run["q"]["d"], dtype=torch.float32) == score[0, 0]


@pytest.mark.parametrize(
    ("query_ids", "doc_ids", "indices", "match"),
    [
        (["q1"], ["d0", "d1"], torch.tensor([[0], [1]]), "query_ids has 1 ids but the tensors have 2 rows"),
        (["q1", "q1"], ["d0", "d1"], torch.tensor([[0], [1]]), "duplicate id 'q1'"),
        (["q1", "q2"], ["d0", "d0"], torch.tensor([[0], [1]]), "duplicate id 'd0'"),
        (["q1", "q2"], ["d0", "d1"], torch.tensor([[0], [2]]), r"indices must lie in \[0, 2\)"),
        ("q1", ["d0"], torch.tensor([[0]]), "sequence of string ids"),
    ],
)
def test_to_run_rejects_inconsistent_inputs(query_ids, doc_ids, indices, match):
    with pytest.raises(DataError, match=match):
        to_run(query_ids, doc_ids, torch.zeros(indices.shape), indices)


def test_trec_order_is_score_descending_then_doc_id_descending():
    ranking = {"a": 1.0, "10": 1.0, "9": 1.0, "b": 1.0, "z": 0.5, "c": 2.0}
    assert [doc for doc, _ in trec_order(ranking)] == ["c", "b", "a", "9", "10", "z"]


def test_write_trec_run_round_trips_atomically(tmp_path):
    run = {"q2": {"d1": 0.5, "d3": 2.0}, "q1": {"a": 1.0, "b": 1.0, "c": 0.30000001192092896}}
    path = write_trec_run(run, tmp_path / "runs" / "dev.trec", tag="splade")
    assert path.read_text().splitlines() == [
        "q1 Q0 b 1 1.0 splade",
        "q1 Q0 a 2 1.0 splade",
        "q1 Q0 c 3 0.30000001192092896 splade",
        "q2 Q0 d3 1 2.0 splade",
        "q2 Q0 d1 2 0.5 splade",
    ]
    read = {}
    for row in ir_measures.read_trec_run(str(path)):
        read.setdefault(row.query_id, {})[row.doc_id] = row.score
    assert read == run
    assert [p.name for p in path.parent.iterdir()] == ["dev.trec"]  # no temporary file left behind


def test_write_trec_run_failure_keeps_the_previous_file(tmp_path):
    path = write_trec_run({"q": {"d": 1.0}}, tmp_path / "run.trec", tag="old")
    with pytest.raises(DataError, match="doc id of query 'q'"):
        write_trec_run({"q": {"bad id": 1.0}}, path, tag="new")
    with pytest.raises(DataError, match="tag must be a non-empty string without whitespace"):
        write_trec_run({"q": {"d": 1.0}}, path, tag="my run")
    assert path.read_text() == "q Q0 d 1 1.0 old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run.trec"]
