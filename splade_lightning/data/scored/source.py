"""``ScoredGroups``: the training source of text-inline scored groups ``{query, pos, neg, pos_scores, neg_scores}``."""

from __future__ import annotations

from splade_lightning.data.arguments import TRAIN, check_choice, check_counts, check_score_range, check_train_files
from splade_lightning.data.negatives import NegativeSampling
from splade_lightning.data.scored.dataset import ScoredTextDataset
from splade_lightning.data.scored.records import ScoredLayout
from splade_lightning.data.source import TrainSource
from splade_lightning.problems import OnBadRecord, SkippedRecords
from splade_lightning.types import Route


class ScoredGroups(TrainSource):
    """Text-inline scored training groups (the FlagEmbedding distillation layout): one record per query,
    ``{query, pos, neg, pos_scores, neg_scores}``, ``pos``/``neg`` a text or a list of texts and each ``*_scores``
    the teacher's score of each of them.

    Each epoch a group yields its query, one positive (random among ``pos``) and ``num_negatives`` negatives, every
    example carrying the teacher scores of its documents (positive first). Negatives equal to a positive and repeated
    negatives are dropped. A group with no negative at all is an error; groups with fewer than ``num_negatives``
    usable negatives are left out (an info line names them). Batches never repeat a text.

    Args:
        files: JSONL, ``.parquet`` or saved HF ``datasets`` files of scored groups.
        num_negatives: negatives per query and epoch (0 for scored (query, positive) pairs).
        negative_sampling: ``random`` (seeded per epoch) or ``top`` (the highest teacher scores).
        score_range: ``[min, max]``: only negatives whose teacher score lies in it are candidates (positives are kept
            whatever their score); ``None`` for all.
        router_mapping: which route (encoder) of a query/document router the queries and the documents go through:
            ``{query: <route>, pos: <route>}`` (``{query: ..., docs: ...}`` with ``layout: docs``; negatives follow
            the positive); ``None`` for ``{query: query, pos: document}``.
        layout: ``pos_neg``: records ``{query, pos, neg, pos_scores, neg_scores}``; ``docs``: records ``{query,
            docs: [...], scores: [...]}`` (sentence-transformers' distillation columns: a query, its documents and
            their teacher scores), the first document being the positive and the others its negatives.
    """

    batch_fields = frozenset({"teacher_scores"})

    def __init__(self, files: list[str], num_negatives: int = 1, negative_sampling: NegativeSampling = "random",
                 score_range: list[float] | None = None, router_mapping: dict[str, Route] | None = None,
                 layout: ScoredLayout = "pos_neg"):
        self.files = [str(f) for f in files] if isinstance(files, (list, tuple)) else files
        self.num_negatives, self.negative_sampling = num_negatives, negative_sampling
        self.score_range = list(score_range) if score_range is not None else None
        self.router_mapping = dict(router_mapping) if router_mapping is not None else None
        self.layout = layout

    @property
    def route_keys(self) -> tuple[str, ...]:
        """The query field, then the documents' (``pos``, or ``docs`` with ``layout: docs``)."""
        return ("query", "docs") if self.layout == "docs" else ("query", "pos")

    def problems(self) -> list[str]:
        """See :meth:`TrainSource.problems`."""
        problems = check_train_files(self.files) + check_counts({}, {"num_negatives": self.num_negatives}, TRAIN)
        problems += check_choice("negative_sampling", self.negative_sampling, ("random", "top"))
        problems += check_score_range(self.score_range, True, "")
        problems += check_choice("layout", self.layout, ("pos_neg", "docs"))
        return problems + super().problems()

    def load(self, seed: int, on_bad_record: OnBadRecord, skipped: SkippedRecords) -> ScoredTextDataset:
        """Read the groups (:func:`~splade_lightning.data.scored.records.read_scored_records`) into a
        :class:`~splade_lightning.data.scored.dataset.ScoredTextDataset`."""
        return ScoredTextDataset.from_files(self.files, self.num_negatives, self.score_range, self.negative_sampling,
                                            seed, on_bad_record, skipped, self.layout)
