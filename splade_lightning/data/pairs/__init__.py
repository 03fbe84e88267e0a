"""Labelled text pairs ``(text1, text2, score | label)``: reading them (:mod:`.records`) and the training source
:class:`~splade_lightning.data.pairs.source.TextPairs` with its dataset (:mod:`.source`)."""
