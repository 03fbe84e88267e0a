"""Plain-text training records (query, positives, negatives): reading them (:mod:`.records`), the per-epoch
dataset (:mod:`.dataset`) and the training source :class:`~splade_lightning.data.text.source.TextTriplets`."""
