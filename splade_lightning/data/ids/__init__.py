"""Id-based training files over a BEIR corpus, at MS MARCO scale: memory-mapped text stores (:mod:`.text_store`,
:mod:`.strings`), cache locations (:mod:`.cache`), hard-negative and teacher-score records (:mod:`.parsing`,
:mod:`.arrays`, :mod:`.records`), the dataset (:mod:`.dataset`) and the training source
:class:`~splade_lightning.data.ids.source.IdGroups`."""
