"""Routers: texts through one of several encoders that share one vocabulary space (QueryDocRouter: a query and a
document encoder; Router: any named routes)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import torch
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.models.base import SparseEncoderBase
from splade_lightning.types import ROUTES

_ROUTE_NAME = re.compile(r"[A-Za-z0-9_-]+")


class QueryDocRouter(SparseEncoderBase):
    """Route queries to ``query_encoder`` and documents to ``doc_encoder`` (the sentence-transformers ``Router``
    for inference-free SPLADE; Geng et al., arXiv:2411.04403).

    Both encoders map (B, L) token ids of ONE shared tokenizer to (B, V) vectors in the same vocabulary space, so a
    query-document score is a dot product. The constructor checks this: equal output widths, and identical
    vocabularies when the two name different tokenizers.

    Optionally the score is IDF-aware (arXiv:2411.04403, §3): ``s(q, d) = Σ_v idf(v)·q_v·d_v`` with a fixed IDF
    table. The factor is applied to the query vector, so training, evaluation and the exported model all score
    alike; an export folds it into the query weights.

    Args:
        doc_encoder: the document side, e.g. ``splade_lightning.models.SpladeEncoder``.
        query_encoder: the query side, e.g. ``splade_lightning.models.StaticSparseEncoder``; default: a trainable
            static encoder initialised at 1 over ``doc_encoder``'s tokenizer and width.
        score_idf: IDF table (OpenSearch ``idf.json``) for IDF-aware scoring; ``None`` for plain dot products.
            Tokens it does not list get 1; negative values are clamped to 0.
    """

    def __init__(self, doc_encoder: SparseEncoderBase, query_encoder: SparseEncoderBase | None = None,
                 score_idf: str | None = None):
        super().__init__()
        from splade_lightning.models.static import StaticSparseEncoder

        if query_encoder is None:
            query_encoder = StaticSparseEncoder(doc_encoder.tokenizer_name_or_path, vocab_size=doc_encoder.vocab_size)
        _check_compatible(query_encoder, doc_encoder)
        self.query_encoder = query_encoder
        self.doc_encoder = doc_encoder
        self.register_buffer("score_weights", _score_weights(score_idf, doc_encoder), persistent=True)

    @property
    def vocab_size(self) -> int:
        """Output width V (shared by both routes)."""
        return self.doc_encoder.vocab_size

    @property
    def tokenizer_name_or_path(self) -> str:
        """The shared tokenizer (the document encoder's)."""
        return self.doc_encoder.tokenizer_name_or_path

    @property
    def routes(self) -> dict[str, SparseEncoderBase]:
        """Route name -> encoder."""
        return {"query": self.query_encoder, "document": self.doc_encoder}

    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Query route: (B, L) -> (B, V), times the IDF-aware score weights when configured."""
        reps = self.query_encoder.encode_query(input_ids, attention_mask)
        return reps * self.score_weights.to(reps.dtype)  # all ones (exact) without score_idf

    def encode_doc(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Document route: (B, L) -> (B, V)."""
        return self.doc_encoder.encode_doc(input_ids, attention_mask)

    def encode(self, route: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encode through ``route`` (``"query"`` or ``"document"``)."""
        return encode_route(self, route, input_ids, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Texts without a route are documents (the sentence-transformers default route): (B, L) -> (B, V)."""
        return self.encode_doc(input_ids, attention_mask)

    def query_term_weights(self) -> torch.Tensor | None:
        """(V,) effective query weight per term (IDF-aware factor included) for a static query side, else None."""
        if not hasattr(self.query_encoder, "term_weights"):
            return None
        return self.query_encoder.term_weights() * self.score_weights

    def export_config(self) -> dict:
        """Settings needed to rebuild this router (see ``models/serialization.py``)."""
        return {"architecture": "inference_free", "doc": self.doc_encoder.export_config(),
                "query": self.query_encoder.export_config()}


class Router(SparseEncoderBase):
    """Named routes, each an encoder into one shared vocabulary space: the sentence-transformers ``Router``
    (sentence-transformers 6.2, ``base/modules/router.py``) for text, e.g. an asymmetric SPLADE with a query MLM and
    a document MLM, or an inference-free model with a static route.

    A text goes through one route, resolved from a name as sentence-transformers resolves a ``task``: the route
    ``task_routes[name]`` when listed, else the route called ``name``. The training data's ``router_mapping`` names
    one per column; ``encode_query`` resolves ``"query"``, ``encode_doc`` ``"document"``; texts without a name
    (``forward``) go to ``default_route``.

    Args:
        routes: route name -> encoder (e.g. ``SpladeEncoder``, ``StaticSparseEncoder``), all with the same output
            width and tokenizer vocabulary. Names use letters, digits, ``_`` and ``-``.
        default_route: the route of texts without a name; ``None``: the first route (sentence-transformers'
            ``allow_empty_key``).
        task_routes: name -> route for names that are not routes (sentence-transformers' ``route_mappings`` entries
            ``(task, None)``), e.g. ``{query: q_mlm, document: d_mlm}``. ``"query"`` and ``"document"`` must each
            resolve to a route: evaluation encodes both.
    """

    def __init__(self, routes: dict[str, SparseEncoderBase], default_route: str | None = None,
                 task_routes: dict[str, str] | None = None):
        super().__init__()
        self._setup(routes, default_route, task_routes, check_vocab=True)

    @classmethod
    def restore(cls, routes: dict[str, SparseEncoderBase], default_route: str | None,
                task_routes: dict[str, str] | None) -> Router:
        """Rebuild a router that was checked when first built (from a checkpoint or a saved directory): the
        tokenizer vocabularies are not compared again (the tokenizer directories it named may be gone)."""
        router = cls.__new__(cls)
        SparseEncoderBase.__init__(router)
        router._setup(routes, default_route, task_routes, check_vocab=False)
        return router

    def _setup(self, routes, default_route, task_routes, check_vocab: bool) -> None:
        routes, task_routes = dict(routes or {}), dict(task_routes or {})
        problems = route_name_problems(routes, default_route, task_routes)
        if problems:
            raise ConfigError("Router: " + "; ".join(problems))
        names = list(routes)
        for name in names[1:]:
            _check_compatible(routes[name], routes[names[0]], (f"routes.{name}", f"routes.{names[0]}"), check_vocab)
        self.routes = nn.ModuleDict(routes)
        self.default_route = default_route if default_route is not None else names[0]
        self.task_routes = task_routes

    @property
    def vocab_size(self) -> int:
        """Output width V (shared by every route)."""
        return self.routes[self.default_route].vocab_size

    @property
    def tokenizer_name_or_path(self) -> str:
        """The shared tokenizer (the default route's)."""
        return self.routes[self.default_route].tokenizer_name_or_path

    @property
    def route_names(self) -> tuple[str, ...]:
        """Every name :meth:`encode` accepts: the routes and the keys of ``task_routes``."""
        return (*self.routes, *(n for n in self.task_routes if n not in self.routes))

    def resolve(self, name: str) -> str:
        """The route a name goes to (``task_routes`` first, then the route of that name)."""
        if name in self.task_routes:
            return self.task_routes[name]
        if name in self.routes:
            return name
        raise ConfigError(f"Router: no route for {name!r}; the routes are {list(self.routes)}"
                          + (f" and task_routes maps {sorted(self.task_routes)}" if self.task_routes else ""))

    def encode(self, route: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encode (B, L) ids through the route ``route`` resolves to (:meth:`resolve`) -> (B, V)."""
        return self.routes[self.resolve(route)](input_ids, attention_mask)

    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Queries: the route of ``"query"``, (B, L) -> (B, V)."""
        return self.encode("query", input_ids, attention_mask)

    def encode_doc(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Documents: the route of ``"document"``, (B, L) -> (B, V)."""
        return self.encode("document", input_ids, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Texts without a route name go to ``default_route``: (B, L) -> (B, V)."""
        return self.routes[self.default_route](input_ids, attention_mask)

    def export_config(self) -> dict:
        """Settings needed to rebuild this router: every route's own settings, the default route, task_routes."""
        return {"architecture": "router", "routes": {n: e.export_config() for n, e in self.routes.items()},
                "default_route": self.default_route, "task_routes": dict(self.task_routes)}


def route_name_problems(routes: dict, default_route: str | None, task_routes: dict[str, str]) -> list[str]:
    """Every problem with a router's route names (empty: none)."""
    if not routes:
        return ["routes: expected at least one route, got none"]
    problems = [f"routes: route name {n!r} must be letters, digits, '_' or '-'" for n in routes
                if not isinstance(n, str) or not _ROUTE_NAME.fullmatch(n)]
    if default_route is not None and default_route not in routes:
        problems.append(f"default_route={default_route!r}: expected one of the routes {list(routes)}")
    problems += [f"task_routes.{t}={r!r}: expected one of the routes {list(routes)}"
                 for t, r in task_routes.items() if r not in routes]
    problems += [f"no route for {t!r}: name a route {t!r} or add task_routes: {{{t}: <route>}}" for t in ROUTES
                 if t not in routes and t not in task_routes]
    return problems


def route_problems(encoder: SparseEncoderBase, names: Sequence[str], flag: str) -> list[str]:
    """The names of ``names`` (e.g. the training data's routes) that ``encoder`` cannot encode through; ``flag``
    names where they were set."""
    known = tuple(getattr(encoder, "route_names", ROUTES))
    return [f"{flag}: route {n!r} is not a route of the model's {type(encoder).__name__}; expected one of "
            f"{list(known)}" for n in dict.fromkeys(names) if n not in known]


def encode_route(encoder: SparseEncoderBase, route: str, input_ids: torch.Tensor,
                 attention_mask: torch.Tensor) -> torch.Tensor:
    """Encode (B, L) ids through ``route``: a :class:`Router`'s named route; otherwise ``"query"`` ->
    ``encoder.encode_query``, ``"document"`` -> ``encoder.encode_doc`` (one function for a single SPLADE encoder,
    two encoders for a query/document router) -> (B, V)."""
    if isinstance(encoder, Router):
        return encoder.encode(route, input_ids, attention_mask)
    if route == "query":
        return encoder.encode_query(input_ids, attention_mask)
    if route == "document":
        return encoder.encode_doc(input_ids, attention_mask)
    raise ConfigError(f"{type(encoder).__name__}: unknown route {route!r}; available routes: {list(ROUTES)}")


def _check_compatible(query_encoder: SparseEncoderBase, doc_encoder: SparseEncoderBase,
                      names: tuple[str, str] = ("query_encoder", "doc_encoder"), check_vocab: bool = True) -> None:
    """One vocabulary space: equal output widths and the same tokenizer vocabulary on both routes."""
    owner = "QueryDocRouter" if names == ("query_encoder", "doc_encoder") else "Router"
    for side, encoder in zip(names, (query_encoder, doc_encoder), strict=True):
        missing = [a for a in ("vocab_size", "tokenizer_name_or_path", "encode_query", "encode_doc")
                   if not hasattr(encoder, a)]
        if missing:
            raise ConfigError(f"{owner}: {side} ({type(encoder).__name__}) lacks {missing}; expected an "
                              "encoder such as SpladeEncoder or StaticSparseEncoder")
    if query_encoder.vocab_size != doc_encoder.vocab_size:
        sides = ("the query route", "the document route") if owner == "QueryDocRouter" else names
        raise ConfigError(
            f"{owner}: {sides[0]} has {query_encoder.vocab_size} dimensions but {sides[1]} has "
            f"{doc_encoder.vocab_size}; every route must share one vocabulary space (for a StaticSparseEncoder set "
            f"vocab_size: {doc_encoder.vocab_size})")
    q_name, d_name = str(query_encoder.tokenizer_name_or_path), str(doc_encoder.tokenizer_name_or_path)
    if check_vocab and q_name != d_name and _vocab(q_name) != _vocab(d_name):
        raise ConfigError(f"{owner}: the tokenizers of {names[0]} ({q_name!r}) and {names[1]} ({d_name!r}) "
                          "have different vocabularies; every route must use one tokenizer")


def _vocab(name: str) -> dict[str, int]:
    from splade_lightning.hub import load_tokenizer

    return load_tokenizer(name).get_vocab()


def _score_weights(score_idf: str | os.PathLike | None, doc_encoder: SparseEncoderBase) -> torch.Tensor:
    """(V,) IDF-aware scoring factors relu(idf) (1 for unlisted tokens), or ones."""
    if score_idf is None:
        return torch.ones(doc_encoder.vocab_size)
    from splade_lightning.formats.idf_json import read_idf_table
    from splade_lightning.hub import load_tokenizer

    table = read_idf_table(score_idf, load_tokenizer(doc_encoder.tokenizer_name_or_path), doc_encoder.vocab_size)
    return torch.relu(table.weights.float())
