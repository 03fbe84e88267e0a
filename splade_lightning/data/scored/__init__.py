"""Text-inline scored training groups ``{query, pos, neg, pos_scores, neg_scores}``: reading them (:mod:`.records`),
the in-memory dataset (:mod:`.dataset`) and the training source
:class:`~splade_lightning.data.scored.source.ScoredGroups`."""
