"""ExpansionLogger: at each validation, a table of example texts with their top expanded terms and a histogram of the
document frequency of active terms over each validation corpus."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from splade_lightning.callbacks.logger_media import log_histogram, log_table
from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir import EvalData
from splade_lightning.metrics.term_stats import document_frequency, example_pairs, log10_df, top_terms
from splade_lightning.systems.eval_buffer import eval_set_of

COLUMNS = ("pair", "kind", "id", "text", "active_dims", "top_terms")


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"ExpansionLogger: {name}={value!r}: expected an integer >= 1")
    return value


def format_terms(terms: list[tuple[str, float]]) -> str:
    """``"splade:2.31 expand:1.87"``: names with weights to 3 significant digits (CSR codes are ~0.1), heaviest
    first."""
    return " ".join(f"{name}:{weight:.3g}" for name, weight in terms)


class _SetState:
    """What one validation set collected: the set, its example pairs, the examples' top terms, and df counts."""

    def __init__(self, data: EvalData, num_examples: int):
        self.data = data
        self.pairs = example_pairs(list(data.queries), data.qrels, data.corpus, num_examples, data.min_relevance)
        self.wanted = {"query": {q for q, _ in self.pairs}, "doc": {d for _, d in self.pairs if d is not None}}
        self.found: dict[tuple[str, str], tuple[int, list[tuple[int, float]]]] = {}
        self.df: torch.Tensor | None = None
        self.num_docs = 0

    def add(self, kind: str, ids: list[str], reps: torch.Tensor, top_k: int) -> None:
        if kind == "doc":
            df = document_frequency(reps)
            self.df = df if self.df is None else self.df + df
            self.num_docs += reps.shape[0]
        rows = [i for i, text_id in enumerate(ids) if text_id in self.wanted[kind]]
        if rows:
            picked = reps[rows]
            active = (picked != 0).sum(dim=1).tolist()
            for row, n_active, terms in zip(rows, active, top_terms(picked, top_k)):
                self.found[(kind, ids[row])] = (int(n_active), terms)


class ExpansionLogger(pl.Callback):
    """Log what the model expands texts into, at every validation (not the sanity check), per evaluation set:

    - ``val/<dataset>/expansions``: a table with the first ``num_examples`` queries of the set, each followed by its
      most relevant judged document, with columns ``pair, kind, id, text, active_dims, top_terms``; ``top_terms``
      lists the ``top_k`` heaviest dimensions as ``name:weight``. Names are tokenizer tokens (SPLADE,
      inference-free SPLADE) or the encoder's ``dimension_names`` (CSR: ``latent_<j>``). The same texts at every
      validation, so their expansions can be followed through training.
    - ``val/<dataset>/doc_df_log10``: a histogram, over the vocabulary dims active in at least one document of the
      validation corpus, of log10 of their document frequency (0 = active in one document, log10(N) = in all N).
      A mass near log10(N) means stop-word-like terms that every posting list shares (what FLOPS penalises).
    - ``val/<dataset>/vocab_active_doc``: the number of dims active in at least one document (a scalar, so every
      logger, CSV included, gets it).

    wandb gets a ``wandb.Table`` and a ``wandb.Histogram``, TensorBoard a text (Markdown) and a histogram, CSVLogger
    JSON/Markdown files under ``<log_dir>/media/val/<dataset>/`` (see :mod:`.logger_media`). Reads the (B, V) tensor
    returned by ``validation_step`` with ``batch.kind`` and ``batch.ids``, and the set's name, texts and qrels from
    ``batch.eval_set`` (a batch without one is a :class:`~splade_lightning.errors.ConfigError`); STS sets are left
    out. Under DDP the df counts are summed over processes; the table shows the examples that the global-zero
    process encoded.

    Args:
        num_examples: queries per evaluation set in the table (each with its most relevant document).
        top_k: expanded terms shown per text.
        max_text_chars: texts are cut to this many characters in the table.
        df_histogram: also log the document-frequency histogram and ``vocab_active_doc``.
    """

    def __init__(self, num_examples: int = 4, top_k: int = 12, max_text_chars: int = 200, df_histogram: bool = True):
        self.num_examples = _positive_int("num_examples", num_examples)
        self.top_k = _positive_int("top_k", top_k)
        self.max_text_chars = _positive_int("max_text_chars", max_text_chars)
        self.df_histogram = df_histogram
        self._sets: dict[int, _SetState] = {}
        self._tokenizer = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0):
        if trainer.sanity_checking or not isinstance(outputs, torch.Tensor):
            return
        eval_set = eval_set_of(batch, type(self).__name__)
        if not isinstance(eval_set, EvalData):
            return  # an STS set (sentence pairs, no queries or qrels): no table, no corpus df
        if dataloader_idx not in self._sets:
            self._sets[dataloader_idx] = _SetState(eval_set, self.num_examples)
        reps = outputs.detach() if outputs.layout == torch.strided else outputs.detach().to_dense()
        self._sets[dataloader_idx].add("query" if batch.kind == "query" else "doc", list(batch.ids), reps, self.top_k)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        sets, self._sets = self._sets, {}
        step = trainer.global_step
        scalars = {}
        datamodule = getattr(trainer, "datamodule", None)
        for idx, state in sorted(sets.items()):
            data = state.data
            if self.df_histogram and state.df is not None:
                df = trainer.strategy.reduce(state.df, reduce_op="sum")  # collective: every process calls it
                scalars[f"val/{data.name}/vocab_active_doc"] = float((df > 0).sum())
                log_histogram(trainer, f"val/{data.name}/doc_df_log10", log10_df(df.cpu()), step, to_files=True)
            rows = self._rows(state, pl_module, datamodule)
            log_table(trainer, f"val/{data.name}/expansions", COLUMNS, rows, step)
        if scalars:
            pl_module.log_dict(scalars, add_dataloader_idx=False)

    def _rows(self, state: _SetState, pl_module, datamodule) -> list[list]:
        """Table rows: each example query then its document, for the texts that were encoded."""
        rows, data = [], state.data
        for pair, (query_id, doc_id) in enumerate(state.pairs):
            for kind, text_id, texts in (("query", query_id, data.queries), ("doc", doc_id, data.corpus)):
                if (kind, text_id) not in state.found:
                    continue
                n_active, terms = state.found[(kind, text_id)]
                names = self._names(pl_module, datamodule, [dim for dim, _ in terms])
                text = texts[text_id]
                if len(text) > self.max_text_chars:
                    text = text[: self.max_text_chars - 1] + "…"
                rows.append([pair, kind, text_id, text, n_active,
                             format_terms([(name, w) for name, (_, w) in zip(names, terms)])])
        return rows

    def _names(self, pl_module, datamodule, dims: list[int]) -> list[str]:
        """Readable names of dims: the encoder's ``dimension_names`` (CSR latents) or the tokens of the tokenizer (the
        data module's ``tokenizer`` when set, else the module's)."""
        names_fn = getattr(pl_module.encoder, "dimension_names", None)
        if names_fn is not None:
            names = names_fn(dims)
        else:
            name = getattr(datamodule, "tokenizer", None) or pl_module.tokenizer_name_or_path
            if self._tokenizer is None or self._tokenizer[0] != name:
                from splade_lightning.hub import load_tokenizer

                self._tokenizer = (name, load_tokenizer(name))
            names = self._tokenizer[1].convert_ids_to_tokens(dims)
        return [name if name is not None else f"[{dim}]" for name, dim in zip(names, dims)]
