"""splade_lightning.analysis: sparsity profiles, expansions, model comparison, subsets, tables and plots."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import splade_lightning
from splade_lightning import analysis as an
from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir import load_beir

REPS = torch.tensor([[0.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 1.0, 0.0]])


@pytest.fixture(scope="module")
def model(tiny_bert_dir):
    return splade_lightning.load(tiny_bert_dir)


@pytest.mark.parametrize("layout", ["dense", "coo", "csr"])
def test_active_dims_and_document_frequency(layout):
    reps = {"dense": REPS, "coo": REPS.to_sparse_coo(), "csr": REPS.to_sparse_csr()}[layout]
    assert an.active_dims(reps).tolist() == [2, 0, 2]
    assert an.document_frequency(reps).tolist() == [1, 1, 2, 0]


def test_explicit_zeros_are_not_active():
    reps = torch.sparse_coo_tensor(torch.tensor([[0, 0, 1], [0, 2, 1]]), torch.tensor([1.0, 0.0, 5.0]), (2, 3),
                                   check_invariants=True)
    assert an.active_dims(reps).tolist() == [1, 1]
    assert an.document_frequency(reps).tolist() == [1, 1, 0]


def test_summarize_counts():
    summary = an.summarize_counts([1, 2, 3, 4])
    assert summary["mean"] == 2.5 and summary["median"] == 2.5 and summary["min"] == 1 and summary["max"] == 4
    assert summary["p10"] == pytest.approx(1.3) and summary["p90"] == pytest.approx(3.7)
    with pytest.raises(ConfigError, match="non-empty"):
        an.summarize_counts([])


def test_df_profile_values_and_errors():
    profile = an.df_profile(np.array([5, 0, 2, 2, 1]), n_docs=5, names=["a", "b", "c", "d", "e"], top_n=3)
    assert profile["used_terms"] == 4 and profile["postings"] == 10
    assert profile["sorted_df"].tolist() == [5, 2, 2, 1]
    assert profile["top_terms"] == [("a", 5, 1.0), ("c", 2, 0.4), ("d", 2, 0.4)]  # ties by id
    assert profile["top1pct_postings_share"] == 0.5  # the single most frequent term holds 5 of 10 postings
    assert profile["half_docs_terms"] == 1
    rows = an.df_profile_rows({"A": profile})
    assert rows == [{"model": "A", "n_docs": 5, "used_terms": 4, "postings": 10, "top1pct_postings_share": 0.5,
                     "half_docs_terms": 1}]
    top = an.top_df_terms_rows({"A": profile}, top_n=4)
    assert [r["A: term (df share)"] for r in top] == ["a (1.00)", "c (0.40)", "d (0.40)", ""]
    with pytest.raises(ConfigError, match="n_docs"):
        an.df_profile(np.array([5, 1]), n_docs=4)
    with pytest.raises(ConfigError, match="names"):
        an.df_profile(np.array([5, 1]), n_docs=5, names=["a"])


def test_term_overlap():
    a = torch.tensor([[3.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    b = torch.tensor([[3.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_allclose(an.term_overlap(a, b), [1 / 3, 1.0, 0.0])
    np.testing.assert_allclose(an.term_overlap(a.to_sparse_coo(), b.to_sparse_csr(), top_k=1), [1.0, 1.0, 0.0])
    with pytest.raises(ConfigError, match="shape"):
        an.term_overlap(a, b[:2])
    with pytest.raises(ConfigError, match="top_k"):
        an.term_overlap(a, b, top_k=0)


def test_weight_changes_lists_only_changed_terms():
    a = torch.tensor([[1.0, 0.0, 2.0], [1.0, 0.0, 0.0]])
    b = torch.tensor([[1.0, 2.0, 0.0], [1.0, 0.0, 0.0]])
    changes = an.weight_changes(a, b, ["x", "y", "z"])
    assert changes == {"gained": [("y", 0.0, 1.0, 1.0)], "lost": [("z", 1.0, 0.0, -1.0)]}
    np.testing.assert_allclose(an.mean_term_weights(a), [1.0, 0.0, 1.0])
    with pytest.raises(ConfigError, match="names"):
        an.weight_changes(a, b, ["x"])


def test_retrieval_table_perfect_and_wrong_rankings(toy_beir):
    data = load_beir(toy_beir)
    doc_ids = list(data.corpus)
    docs = torch.eye(6)
    col = {d: i for i, d in enumerate(doc_ids)}

    def queries(assign):
        reps = torch.zeros(3, 6)
        for row, weights in enumerate(assign):
            for doc, w in weights.items():
                reps[row, col[doc]] = w
        return reps.to_sparse_coo()

    good = queries([{"d1": 2.0, "d4": 1.0}, {"d3": 2.0, "d5": 1.0}, {"d2": 1.0}])
    bad = queries([{"d6": 1.0}, {"d6": 1.0}, {"d6": 1.0}])
    ids = ["q1", "q2", "q3"]
    rows = an.retrieval_table({"good": an.EncodedSet(ids, good, doc_ids, docs),
                               "bad": an.EncodedSet(ids, bad, doc_ids, docs)}, data.qrels)
    assert [r["model"] for r in rows] == ["good", "bad"]
    assert rows[0]["ndcg@10"] == pytest.approx(1.0) and rows[0]["mrr@10"] == pytest.approx(1.0)
    assert rows[1]["mrr@10"] < 0.5 and rows[1]["ndcg@10"] < rows[0]["ndcg@10"]
    assert rows[0]["active_dims_query"] == pytest.approx(5 / 3) and rows[0]["active_dims_doc"] == 1.0
    assert an.dict_table(rows).splitlines()[2].startswith("| good | 1.0000 | 1.0000 |")


def test_markdown_table():
    text = an.dict_table([{"a": 1, "b": 0.5, "c": "x|y"}], digits=2)
    assert text == "| a | b | c |\n|---|---|---|\n| 1 | 0.50 | x\\|y |\n"
    with pytest.raises(ConfigError, match="columns"):
        an.dict_table([{"a": 1}, {"b": 2}])


def test_expand_texts_matches_model(model):
    texts = ["python language", "the cat sat on the mat"]
    expansions = an.expand_texts(model, texts, kind="doc", top_k=8)
    reps = model.encode_document(texts).to_dense()
    for exp, row, text in zip(expansions, reps, texts):
        assert exp.text == text and exp.kind == "doc" and exp.active_dims == int((row > 0).sum())
        decoded = model.decode(row, top_k=8)
        assert [t.term for t in exp.terms] == [term for term, _ in decoded]
        assert [t.weight for t in exp.terms] == pytest.approx([w for _, w in decoded])
        own = set(model.tokenizer(text, add_special_tokens=False)["input_ids"])
        assert all(t.in_text == (t.term_id in own) for t in exp.terms)
        assert exp.expansion_terms == [t for t in exp.terms if not t.in_text]
    every = an.expand_texts(model, ["python language"], kind="query", top_k=None)[0]
    assert len(every.terms) == every.active_dims == int((model.encode_query("python language").to_dense() > 0).sum())
    in_text = {t.term for t in every.terms if t.in_text}
    assert in_text <= {"python", "language"}
    rows = an.expansion_rows(expansions, top_k=2)
    assert rows[0]["top_terms"].count(":") == 2 and rows[1]["text"] == texts[1]
    assert an.expansion_rows(expansions, max_chars=10)[1]["text"] == "the cat..."


@pytest.mark.parametrize("bad", [{"kind": "passage"}, {"top_k": 0}, {"texts": "one string"}])
def test_expand_texts_rejects_bad_arguments(model, bad):
    args = {"texts": ["x"], "kind": "doc", "top_k": 3} | bad
    with pytest.raises(ConfigError):
        an.expand_texts(model, args["texts"], kind=args["kind"], top_k=args["top_k"])


def test_encode_set_and_vocabulary_check(model, toy_beir):
    data = load_beir(toy_beir)
    enc = an.encode_set(model, data.queries, data.corpus, batch_size=4)
    assert enc.doc_ids == list(data.corpus) and enc.query_reps.shape == (3, model.vocab_size)
    expected = model.encode_document(list(data.corpus.values())).to_dense()
    torch.testing.assert_close(enc.doc_reps.to_dense(), expected)
    an.check_same_vocabulary(model, model)
    other = SimpleNamespace(vocab_size=model.vocab_size + 1, tokenizer=model.tokenizer)
    with pytest.raises(ConfigError, match="output widths"):
        an.check_same_vocabulary(model, other)
    with pytest.raises(ConfigError, match="non-empty"):
        an.encode_set(model, {}, data.corpus)


def test_dimension_names():
    tokenizer = SimpleNamespace(convert_ids_to_tokens=lambda ids: ["a" if i == 0 else None for i in ids])
    plain = SimpleNamespace(encoder=SimpleNamespace(), tokenizer=tokenizer)
    assert an.dimension_names(plain, [0, 7]) == ["a", "[7]"]
    csr = SimpleNamespace(encoder=SimpleNamespace(dimension_names=lambda ids: [f"latent_{i}" for i in ids]))
    assert an.dimension_names(csr, [3]) == ["latent_3"]


def test_locate(tmp_path):
    for version in (2, 10):
        (tmp_path / "csv" / f"version_{version}" / "model").mkdir(parents=True)
        (tmp_path / "csv" / f"version_{version}" / "model" / "config.json").write_text("{}")
    assert an.latest_exported_model(tmp_path) == tmp_path / "csv" / "version_10" / "model"
    assert an.latest_exported_model(tmp_path / "missing") is None
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    assert an.find_repo_root(tmp_path / "notebooks") == tmp_path.resolve()
    assert an.resolve_model_name("csv/version_2/model", tmp_path) == str(tmp_path / "csv" / "version_2" / "model")
    assert an.resolve_model_name("splade-tiny", tmp_path) == "splade-tiny"


def test_plots_write_png_files_atomically(tmp_path):
    pytest.importorskip("matplotlib")
    from splade_lightning.analysis import plots

    counts = {"A": np.array([1, 5, 9]), "B": np.array([2, 2, 3])}
    exp = an.Expansion("a text", "doc", 2, [an.TermWeight("a", 1, 2.0, True), an.TermWeight("b", 2, 1.0, False)])
    written = [
        plots.plot_active_dims(counts, counts, tmp_path / "active.png"),
        plots.plot_df_profile({"A": np.array([5, 2, 1])}, {"A": 5}, tmp_path / "df.png"),
        plots.plot_expansions([exp, exp], tmp_path / "exp.png"),
        plots.plot_overlap({"queries": np.array([0.1, 0.9])}, tmp_path / "overlap.png"),
        plots.plot_paired_counts(counts["A"], counts["B"], ("A", "B"), tmp_path / "paired.png"),
        plots.plot_weight_changes({"gained": [("y", 0.0, 1.0, 1.0)], "lost": [("z", 1.0, 0.0, -1.0)]},
                                  tmp_path / "changes.png"),
    ]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)  # no temporary files left
    with pytest.raises(ConfigError, match=".png"):
        plots.plot_overlap({"q": np.array([0.5])}, tmp_path / "overlap.jpg")
    with pytest.raises(ConfigError, match="no term changed"):
        plots.plot_weight_changes({"gained": [], "lost": []}, tmp_path / "none.png")


def test_compare_expansions():
    def exp(text, terms):
        return an.Expansion(text, "query", len(terms), [an.TermWeight(t, i, 1.0, False) for t, i in terms])

    a = [exp("t1", [("x", 1), ("y", 2)]), exp("t2", [])]
    b = [exp("t1", [("y", 2), ("z", 3), ("w", 4)]), exp("t2", [])]
    rows = an.compare_expansions(a, b)
    assert rows[0] == {"kind": "query", "text": "t1", "overlap": 0.25, "only_a": "x", "only_b": "z w"}
    assert rows[1]["overlap"] == 1.0 and rows[1]["only_a"] == ""
    assert an.compare_expansions(a, b, max_terms=1)[0]["only_b"] == "z"
    with pytest.raises(ConfigError, match="same texts"):
        an.compare_expansions(a, b[:1])
