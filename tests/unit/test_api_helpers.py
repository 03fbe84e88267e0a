"""SparseModel.similarity, encode_*(max_active_dims=k) and intersection equal sentence-transformers 6.2's
SparseEncoder on the same model and texts (the bundled SPLADE-tiny, and a CSR model saved here and loaded by both);
load() picks its device like SparseEncoder."""

import pytest
import torch

import splade_lightning
from splade_lightning.api import SparseModel
from splade_lightning.errors import ConfigError

QUERIES = ["what does splade do", "capital of france"]
DOCS = ["SPLADE expands documents with related terms.", "Paris is the capital and largest city of France.", "a"]


@pytest.fixture(scope="module")
def splade_pair():
    """(ours, sentence-transformers') SPLADE-tiny, both on the CPU."""
    from sentence_transformers import SparseEncoder

    from splade_lightning.hub import alias_dir

    return splade_lightning.load("splade-tiny", device="cpu"), SparseEncoder(str(alias_dir("splade-tiny")),
                                                                             device="cpu")


@pytest.fixture(scope="module")
def csr_pair(tiny_encoder_dir, tmp_path_factory):
    """(ours, sentence-transformers') CSR model over the tiny dense encoder: k = 4 of h = 64 latents."""
    from sentence_transformers import SparseEncoder
    from transformers import AutoTokenizer

    from splade_lightning.models import CSREncoder, DenseEncoder, SparseAutoEncoder

    sae = SparseAutoEncoder(32, hidden_dim=64, k=4, k_aux=8)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # as if trained: non-zero biases
        sae.latent_bias.copy_(torch.randn(64, generator=gen) * 0.1)
        sae.encoder.weight.copy_(torch.randn(sae.encoder.weight.shape, generator=gen))
    encoder = CSREncoder(DenseEncoder(tiny_encoder_dir, pooling="mean", normalize=True), sae)
    model = SparseModel(encoder, AutoTokenizer.from_pretrained(tiny_encoder_dir), 48, 48)
    path = model.save(tmp_path_factory.mktemp("csr") / "model")
    return splade_lightning.load(path, device="cpu"), SparseEncoder(str(path), device="cpu")


def _encode(model, kind: str, texts, **kwargs) -> torch.Tensor:
    if isinstance(model, SparseModel):
        return getattr(model, f"encode_{kind}")(texts, **kwargs)
    return getattr(model, f"encode_{kind}")(texts, convert_to_tensor=True, **kwargs)


@pytest.mark.parametrize("pair", ["splade_pair", "csr_pair"])
def test_similarity_matches_sentence_transformers(pair, request):
    ours, st = request.getfixturevalue(pair)
    assert ours.similarity_fn_name == st.similarity_fn_name == "dot"
    queries, docs = _encode(st, "query", QUERIES), _encode(st, "document", DOCS)  # sparse COO
    for a, b in [(queries, docs), (queries.to_dense(), docs), (queries[0], docs), (queries[1].to_dense(), docs[0]),
                 (list(queries), docs.to_dense())]:
        torch.testing.assert_close(ours.similarity(a, b), st.similarity(a, b), rtol=1e-6, atol=0)
    mine = ours.similarity(_encode(ours, "query", QUERIES), _encode(ours, "document", DOCS))
    assert mine.shape == (2, 3) and mine.layout == torch.strided
    torch.testing.assert_close(mine, st.similarity(queries, docs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [1, 7, 40, 100_000])
@pytest.mark.parametrize("kind", ["query", "document"])
def test_max_active_dims_matches_sentence_transformers_splade(splade_pair, kind, k):
    ours, st = splade_pair
    texts = QUERIES if kind == "query" else DOCS
    got = _encode(ours, kind, texts, max_active_dims=k).to_dense()
    expected = _encode(st, kind, texts, max_active_dims=k).to_dense()  # atol: float32 summation order (the bf16
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)  # screen recomputes entries in its own order)
    active = (_encode(ours, kind, texts).to_dense() != 0).sum(dim=1)
    assert (got != 0).sum(dim=1).tolist() == active.clamp(max=k).tolist()  # k kept, or all when fewer are active


@pytest.mark.parametrize("k", [2, 4, 9])
def test_max_active_dims_matches_sentence_transformers_csr(csr_pair, k):
    """A CSR model runs its TopK with k: below its own k = 4 it keeps fewer latents, above it activates more."""
    ours, st = csr_pair
    got = _encode(ours, "document", DOCS, max_active_dims=k).to_dense()
    expected = _encode(st, "document", DOCS, max_active_dims=k).to_dense()
    assert torch.equal(got != 0, expected != 0)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert ((got > 0).sum(dim=1) <= k).all() and (got > 0).sum(dim=1).max() == k


def test_csr_max_active_dims_above_the_latents_keeps_every_positive_one(csr_pair):
    ours, st = csr_pair
    with pytest.raises(RuntimeError):  # sentence-transformers: torch.topk with k > h; we clamp k to h instead
        _encode(st, "document", DOCS, max_active_dims=65)
    torch.testing.assert_close(_encode(ours, "document", DOCS, max_active_dims=65).to_dense(),
                               _encode(st, "document", DOCS, max_active_dims=64).to_dense(), rtol=0, atol=1e-5)


def test_intersection_matches_sentence_transformers(splade_pair):
    ours, st = splade_pair
    query, docs = ours.encode_query(QUERIES[1]), ours.encode_document(DOCS)
    shared = ours.intersection(query, docs)
    assert shared.is_sparse and shared.shape == docs.shape
    torch.testing.assert_close(shared.to_dense(), st.intersection(query, docs).to_dense(), rtol=0, atol=0)
    torch.testing.assert_close(ours.intersection(query.to_dense(), docs[1].to_dense()).to_dense(),
                               st.intersection(query, docs[1]).to_dense(), rtol=0, atol=0)
    torch.testing.assert_close(shared.to_dense().sum(dim=1), ours.similarity(query, docs)[0], rtol=1e-5, atol=1e-6)
    named, theirs = dict(ours.decode(shared[1])), dict(st.decode(st.intersection(query, docs)[1]))
    assert set(named) == set(theirs) and {"capital", "france"} <= set(named)
    with pytest.raises(ValueError):
        st.intersection(ours.encode_query(QUERIES), docs)
    with pytest.raises(ConfigError, match=r"intersection: query has shape \(2, 30522\); expected one vector"):
        ours.intersection(ours.encode_query(QUERIES), docs)


@pytest.mark.parametrize("bad", [0, -3, True, 2.5])
def test_bad_max_active_dims_is_named(splade_pair, bad):
    ours, st = splade_pair
    for kind in ("query", "document"):
        with pytest.raises(ConfigError, match=rf"encode_{kind}: max_active_dims={bad!r}; expected None \(no "
                                              r"limit\) or an integer >= 1"):
            _encode(ours, kind, QUERIES, max_active_dims=bad)
    if bad in (0, -3):
        with pytest.raises(ValueError, match="max_active_dims must be a positive integer"):  # theirs refuses too
            _encode(st, "query", QUERIES, max_active_dims=bad)


def test_load_defaults_to_auto(monkeypatch):
    moved = []
    monkeypatch.setattr(SparseModel, "to", lambda self, device: moved.append(str(device)) or self)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine
    splade_lightning.load("splade-tiny")
    splade_lightning.load("splade-tiny", device="cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    splade_lightning.load("splade-tiny")
    assert moved == ["cuda", "cpu", "cpu"]


def test_importing_the_api_stays_light():
    """The helpers live in retrieval/, whose evaluation pulls in torchmetrics and matplotlib: load() must not."""
    import subprocess
    import sys

    code = ("import sys, splade_lightning.api; print(sorted(m for m in ('torchmetrics', 'matplotlib', "
            "'splade_lightning.retrieval.evaluation') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
