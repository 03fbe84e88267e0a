"""Token expansions: the heaviest terms a model gives a text, split into terms of the text and expansion terms.

A SPLADE representation weights vocabulary terms; those that do not occur among the text's own tokens are its
*expansion* (Formal et al., "SPLADE v2", 2021, https://arxiv.org/abs/2109.10086, Section 4.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from splade_lightning.analysis.model_io import SparseModelLike, dimension_names, to_coo
from splade_lightning.errors import ConfigError
from splade_lightning.metrics.term_stats import row_top_terms as top_terms  # the analysis API's name for it

__all__ = ["Expansion", "TermWeight", "compare_expansions", "expand_texts", "expansion_rows", "top_terms"]


@dataclass(frozen=True)
class TermWeight:
    """One weighted term of a representation.

    Attributes:
        term: the term's name (a tokenizer token such as ``"##ing"``, or ``latent_<j>`` for CSR).
        term_id: its dimension index in ``[0, V)``.
        weight: its weight (> 0 for SPLADE reps).
        in_text: whether the term is one of the text's own tokens (False: an expansion term).
    """

    term: str
    term_id: int
    weight: float
    in_text: bool


@dataclass
class Expansion:
    """The representation of one text, heaviest terms first.

    Attributes:
        text: the encoded text.
        kind: ``"query"`` or ``"doc"``.
        active_dims: number of nonzero dimensions of the full representation.
        terms: the ``top_k`` heaviest :class:`TermWeight`, by decreasing weight (ties: lower id first).
    """

    text: str
    kind: str
    active_dims: int
    terms: list[TermWeight] = field(default_factory=list)

    @property
    def expansion_terms(self) -> list[TermWeight]:
        """The listed terms that are not tokens of the text."""
        return [t for t in self.terms if not t.in_text]


def _text_token_ids(model: SparseModelLike, text: str) -> set[int]:
    """Vocabulary ids of the text's own tokens (empty for models whose dimensions are not tokens, e.g. CSR)."""
    if getattr(model.encoder, "dimension_names", None) is not None:
        return set()
    return set(model.tokenizer(text, add_special_tokens=False)["input_ids"])


def expand_texts(model: SparseModelLike, texts: Sequence[str], kind: Literal["query", "doc"] = "doc",
                 top_k: int | None = 20) -> list[Expansion]:
    """Encode texts and list the heaviest terms of each.

    Args:
        model: a loaded model (``splade_lightning.load``).
        texts: the texts to encode.
        kind: encode them as queries (``encode_query``) or documents (``encode_document``).
        top_k: terms listed per text (None: every active term).

    Returns:
        One :class:`Expansion` per text, in input order.

    Raises:
        ConfigError: on an unknown ``kind``, a bad ``top_k`` or texts that are not a list of strings.
    """
    if kind not in ("query", "doc"):
        raise ConfigError(f"kind must be 'query' or 'doc', got {kind!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"top_k must be a positive integer or None, got {top_k!r}")
    if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
        raise ConfigError(f"texts must be a non-empty list of strings, got {texts!r:.80}")
    encode = model.encode_query if kind == "query" else model.encode_document
    reps = to_coo(encode(list(texts))).to_dense()
    out = []
    for text, row in zip(texts, reps):
        ids, weights = top_terms(row, top_k)
        own = _text_token_ids(model, text)
        terms = [TermWeight(name, i, w, i in own) for name, i, w in zip(dimension_names(model, ids), ids, weights)]
        out.append(Expansion(text, kind, int((row != 0).sum()), terms))
    return out


def _clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def expansion_rows(expansions: Sequence[Expansion], top_k: int = 10, max_chars: int = 80) -> list[dict[str, object]]:
    """A table (one dict per text) of expansions: the text (clipped to ``max_chars``), its active dims, its heaviest
    terms and its heaviest expansion terms, each as ``"term:weight"`` strings (``top_k`` of each)."""
    def show(terms: list[TermWeight]) -> str:
        return " ".join(f"{t.term}:{t.weight:.2f}" for t in terms[:top_k])

    return [{"kind": e.kind, "text": _clip(e.text, max_chars), "active_dims": e.active_dims, "top_terms": show(e.terms),
             "expansion_terms": show(e.expansion_terms)} for e in expansions]


def compare_expansions(expansions_a: Sequence[Expansion], expansions_b: Sequence[Expansion], max_terms: int = 10,
                       max_chars: int = 80) -> list[dict[str, object]]:
    """Per-text comparison of the listed (top-k) terms of the same texts under two models, as table rows.

    Args:
        expansions_a: :func:`expand_texts` of some texts by model A.
        expansions_b: :func:`expand_texts` of the same texts (same order) by model B.
        max_terms: terms shown in each of the ``only_a`` / ``only_b`` columns (heaviest first).
        max_chars: texts are clipped to this many characters.

    Returns:
        One dict per text: ``kind``, ``text``, ``overlap`` (Jaccard of the two listed term sets, 1.0 when both are
        empty), ``only_a`` (listed terms A has and B lacks) and ``only_b`` (the reverse), space separated.

    Raises:
        ConfigError: when the two lists do not hold the same texts in the same order.
    """
    if [(e.kind, e.text) for e in expansions_a] != [(e.kind, e.text) for e in expansions_b]:
        raise ConfigError("compare_expansions: expected expansions of the same texts, in the same order, by A and B")
    rows = []
    for exp_a, exp_b in zip(expansions_a, expansions_b):
        ids_a, ids_b = {t.term_id for t in exp_a.terms}, {t.term_id for t in exp_b.terms}
        union = ids_a | ids_b
        overlap = len(ids_a & ids_b) / len(union) if union else 1.0
        rows.append({"kind": exp_a.kind, "text": _clip(exp_a.text, max_chars), "overlap": overlap,
                     "only_a": " ".join([t.term for t in exp_a.terms if t.term_id not in ids_b][:max_terms]),
                     "only_b": " ".join([t.term for t in exp_b.terms if t.term_id not in ids_a][:max_terms])})
    return rows
