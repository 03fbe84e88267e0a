"""The Qdrant export files are the REST bodies Qdrant takes: they parse as qdrant-client's request models and hold
the model's vectors (a fake model with hand-written vectors)."""

import json

import pytest
import torch

from splade_lightning.serialization.qdrant import (
    VECTOR_NAME,
    export_corpus,
    export_queries,
    load_commands,
    sparse_rows,
    write_info,
)

models = pytest.importorskip("qdrant_client.models")

DOCS = [("d1", "alpha"), ("d2", "beta"), ("d3", "gamma"), ("d4", "")]


class FakeModel:
    """Vectors over 5 dimensions from the text: dimension 0 (0.3) and 1 + len % 4 (0.1 x len) for a text
    other than "" or "-", none otherwise."""

    def _encode(self, texts, batch_size=32):
        reps = torch.zeros(len(texts), 5)
        for row, text in enumerate(texts):
            if text.strip("-"):
                reps[row, 0] = 0.3
                reps[row, 1 + len(text) % 4] = 0.1 * len(text)
        return reps.to_sparse()

    encode_document = encode_query = _encode


@pytest.fixture()
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in DOCS))
    return path


def test_sparse_rows_sorted_nonzero_float32_shortest():
    reps = torch.tensor([[0.0, 2.0, 0.0, 0.3], [0.0, 0.0, 0.0, 0.0], [1e-5, 0.0, 7.0, 0.0]])
    expected = [{"indices": [1, 3], "values": [2.0, 0.3]}, {"indices": [], "values": []},
                {"indices": [0, 2], "values": [1e-5, 7.0]}]
    assert sparse_rows(reps) == expected
    assert sparse_rows(reps.to_sparse()) == expected and sparse_rows(reps.to_sparse_csr()) == expected
    assert json.dumps(sparse_rows(reps)[0]) == '{"indices": [1, 3], "values": [2.0, 0.3]}'  # not 0.30000001192...


def test_corpus_files_are_qdrant_request_bodies(corpus, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert export_corpus(FakeModel(), corpus, out, batch_size=3, points_per_file=3, progress=False) == (4, 2)
    body = models.CreateCollection.model_validate_json((out / "collection.json").read_text())
    assert body.vectors is None and list(body.sparse_vectors) == [VECTOR_NAME]
    assert body.sparse_vectors[VECTOR_NAME].modifier == models.Modifier.NONE
    files = sorted((out / "points").iterdir())
    assert [f.name for f in files] == ["000000.json", "000001.json"]
    points = [p for f in files for p in models.PointsList.model_validate_json(f.read_text()).points]
    assert [p.id for p in points] == [0, 1, 2, 3]
    assert [p.payload for p in points] == [{"_id": i} for i, _ in DOCS]
    vectors = [p.vector[VECTOR_NAME] for p in points]
    assert all(isinstance(v, models.SparseVector) for v in vectors)
    assert [(v.indices, v.values) for v in vectors] == [([0, 2], [0.3, 0.5]), ([0, 1], [0.3, 0.4]),
                                                        ([0, 2], [0.3, 0.5]), ([], [])]


def test_queries_and_info(corpus, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": "q1", "text": "abc"}\n{"_id": "q2", "text": "-"}\n')
    out = tmp_path / "out"
    out.mkdir()
    assert export_queries(FakeModel(), queries, out, batch_size=1) == 2
    rows = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert rows == [{"_id": "q1", "indices": [0, 4], "values": [0.3, 0.3]}, {"_id": "q2", "indices": [], "values": []}]
    models.SparseVector(indices=rows[0]["indices"], values=rows[0]["values"])

    write_info(out, tmp_path / "final", "m", 4, 2, 2)
    info = json.loads((out / "export_info.json").read_text())
    assert (info["vector_name"], info["documents"], info["points_files"], info["queries"]) == (VECTOR_NAME, 4, 2, 2)
    assert info["load_commands"] == load_commands(tmp_path / "final")
    assert f"@{tmp_path / 'final' / 'collection.json'}" in info["load_commands"][0]
