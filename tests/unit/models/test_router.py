"""Router with any route names (splade_lightning.models.Router): validation, route resolution as
sentence-transformers' Router (task_routes before route names, default route), the training-route check, and
WiSE-FT interpolation over every route."""

from __future__ import annotations

import copy

import pytest
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.models import Router, SpladeEncoder, StaticSparseEncoder
from splade_lightning.models.interpolation import check_same_settings, interpolate_modules
from splade_lightning.models.router import encode_route, route_problems


@pytest.fixture(scope="module")
def batch(tokenizer_dir):
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(tokenizer_dir)(["the cat sat", "python language"], padding=True,
                                                        return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


@pytest.fixture(scope="module")
def two_mlms(tiny_bert_dir):
    torch.manual_seed(0)
    doc = SpladeEncoder(tiny_bert_dir)
    query = SpladeEncoder(tiny_bert_dir)
    with torch.no_grad():
        for p in query.parameters():
            p.add_(torch.randn_like(p) * 0.5)  # another MLM of the same shape
    return query.eval(), doc.eval()  # no dropout: outputs compared exactly


def test_routes_resolve_like_sentence_transformers(tiny_bert_dir, batch, two_mlms):
    query, doc = two_mlms
    lookup = StaticSparseEncoder(tiny_bert_dir)
    router = Router({"q": query, "d": doc, "lookup": lookup}, default_route="d",
                    task_routes={"query": "q", "document": "d", "lookup": "d"})
    ids, mask = batch
    assert torch.equal(router.encode_query(ids, mask), query(ids, mask))
    assert torch.equal(router.encode_doc(ids, mask), doc(ids, mask))
    assert torch.equal(router(ids, mask), doc(ids, mask))  # no name: the default route
    assert torch.equal(router.encode("q", ids, mask), query(ids, mask))  # a route by its own name
    assert torch.equal(router.encode("lookup", ids, mask), doc(ids, mask))  # task_routes first, as ST's mappings
    assert torch.equal(encode_route(router, "query", ids, mask), query(ids, mask))
    assert not torch.allclose(router.encode_query(ids, mask), router.encode_doc(ids, mask))
    assert router.route_names == ("q", "d", "lookup", "query", "document")
    with pytest.raises(ConfigError, match=r"no route for 'passage'; the routes are \['q', 'd', 'lookup'\]"):
        router.encode("passage", ids, mask)
    assert Router({"query": query, "document": doc}).default_route == "query"  # ST allow_empty_key: the first


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"routes": {}}, "expected at least one route"),
    ({"default_route": "doc"}, r"default_route='doc': expected one of the routes \['query', 'document'\]"),
    ({"task_routes": {"query": "qq"}}, r"task_routes.query='qq': expected one of the routes"),
    ({"routes": "only_query"}, r"no route for 'document': name a route 'document' or add task_routes"),
    ({"routes": "dotted"}, r"route name 'a.b' must be letters, digits"),
])
def test_bad_router_arguments_are_named(two_mlms, kwargs, message):
    query, doc = two_mlms
    routes = {"query": query, "document": doc}
    if kwargs.get("routes") == "only_query":
        kwargs = {"routes": {"query": query}}
    elif kwargs.get("routes") == "dotted":
        kwargs = {"routes": {"a.b": query, **routes}}
    with pytest.raises(ConfigError, match=message):
        Router(**{"routes": routes, **kwargs})


def test_routes_must_share_one_space(tiny_bert_dir, two_mlms):
    query, doc = two_mlms
    with pytest.raises(ConfigError, match="Router: routes.query has 30530 dimensions but routes.document has 30522"):
        Router({"document": doc, "query": StaticSparseEncoder(tiny_bert_dir, vocab_size=30530)})


def test_training_routes_are_checked_against_the_model(two_mlms):
    query, doc = two_mlms
    router = Router({"q": query, "d": doc}, task_routes={"query": "q", "document": "d"})
    assert route_problems(router, ["q", "document"], "--flag") == []
    problems = route_problems(router, ["q", "passage"], "--flag")
    assert problems == ["--flag: route 'passage' is not a route of the model's Router; expected one of "
                        "['q', 'd', 'query', 'document']"]
    assert route_problems(doc, ["query", "document"], "--flag") == []  # any encoder: the two task names
    assert "'q' is not a route of the model's SpladeEncoder" in route_problems(doc, ["q"], "--flag")[0]


def test_interpolation_covers_every_route(two_mlms):
    query, doc = two_mlms
    zero = Router({"query": query, "document": doc})
    tuned = copy.deepcopy(zero)
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(1.0)
    check_same_settings(zero.export_config(), tuned.export_config(), ("a", "b"))
    mixed = interpolate_modules(zero, tuned, 0.25)
    for name in ("query", "document"):
        a = zero.routes[name].mlm.cls.predictions.bias
        b = tuned.routes[name].mlm.cls.predictions.bias
        torch.testing.assert_close(mixed.routes[name].mlm.cls.predictions.bias, 0.75 * a + 0.25 * b)
    other = Router({"query": query, "document": doc}, default_route="document")
    with pytest.raises(ConfigError, match="differ in setting 'default_route'"):
        check_same_settings(zero.export_config(), other.export_config(), ("a", "b"))


def test_onnx_refuses_a_router_with_a_neural_query_route(two_mlms):
    from splade_lightning.serialization.onnx_dir import document_encoder

    query, doc = two_mlms
    with pytest.raises(ConfigError, match="--format onnx"):
        document_encoder(Router({"query": query, "document": doc}))
