"""Public inference API: ``splade_lightning.load(name_or_path)`` -> a model with ``encode_query`` /
``encode_document`` / ``similarity`` / ``intersection`` / ``decode``, usable without Lightning."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from splade_lightning.data.collate import EncodeCollator
from splade_lightning.errors import ConfigError
from splade_lightning.hub import ALIASES, resolve_model_path
from splade_lightning.models.csr_encoder import CSREncoder
from splade_lightning.models.onnx_encoder import runtime_of
from splade_lightning.prompts import check_prompts
from splade_lightning.retrieval.sparse_ops import (
    SIMILARITY_FN_NAME,
    check_max_active_dims,
    intersection,
    select_max_active_dims,
    similarity_scores,
)


class SparseModel(nn.Module):
    """A trained sparse encoder plus its tokenizer, ready to encode text.

    Args:
        encoder: the (B, L) -> (B, V) encoder (e.g. ``SpladeEncoder``, or ``CSREncoder`` whose V is its number
            of latents), with ``encode_query``/``encode_doc``.
        tokenizer: its HF tokenizer.
        max_query_length: queries are truncated to this many tokens.
        max_doc_length: documents are truncated to this many tokens.
        source: where the model was loaded from (a local path), which :meth:`save` will not overwrite.
        prompts: ``{route: text}`` prepended to every query (``query``) and document (``document``) before
            tokenisation, as sentence-transformers' ``SparseEncoder(prompts=...)`` (:mod:`splade_lightning.prompts`);
            the prompt counts against the max lengths. None: none. :func:`load` passes the model's saved prompts.
    """

    def __init__(self, encoder: nn.Module, tokenizer, max_query_length: int = 512, max_doc_length: int = 512,
                 source: str | None = None, prompts: dict[str, str] | None = None):
        super().__init__()
        self.encoder = encoder.eval()
        self.tokenizer = tokenizer
        self.max_query_length = max_query_length
        self.max_doc_length = max_doc_length
        self.source = source
        self.prompts = check_prompts(prompts)

    @property
    def vocab_size(self) -> int:
        return self.encoder.vocab_size

    @property
    def device(self) -> torch.device:
        first = next(self.encoder.parameters(), None)  # an ONNX Runtime encoder has none: it runs on the CPU
        return first.device if first is not None else torch.device("cpu")

    @property
    def similarity_fn_name(self) -> str:
        """The score :meth:`similarity` computes: ``dot`` for every architecture (CSR included), as in
        sentence-transformers' ``SparseEncoder``."""
        return SIMILARITY_FN_NAME

    def encode_query(self, texts: Sequence[str] | str, batch_size: int = 32, show_progress_bar: bool = False,
                     max_active_dims: int | None = None, prompt: str | None = None) -> torch.Tensor:
        """Encode queries.

        Args:
            texts: the queries, or one query.
            batch_size: texts per forward pass.
            show_progress_bar: show a progress bar over the batches.
            max_active_dims: keep each vector's k largest weights (None: every active one), as sentence-transformers'
                ``encode(max_active_dims=k)``: exactly k stay when more are active; at the cut-off, equal weights
                keep the lower dimension index. A CSR model runs its TopK with this k instead of its own, so a
                larger k activates more latents (at most its h latents).
            prompt: text prepended to every query instead of the model's ``prompts["query"]`` (None: the model's;
                ``""``: none), as sentence-transformers' ``encode_query(prompt=...)``.

        Returns:
            Sparse COO (N, V) on the CPU; a 1-D sparse (V,) vector for a single string.
        """
        return self._encode(texts, "query", batch_size, show_progress_bar, max_active_dims, prompt)

    def encode_document(self, texts: Sequence[str] | str, batch_size: int = 32, show_progress_bar: bool = False,
                        max_active_dims: int | None = None, prompt: str | None = None) -> torch.Tensor:
        """Encode documents; the arguments and the result are those of :meth:`encode_query` (the default prompt is
        the model's ``prompts["document"]``)."""
        return self._encode(texts, "doc", batch_size, show_progress_bar, max_active_dims, prompt)

    def similarity(self, a: torch.Tensor | Sequence[torch.Tensor],
                   b: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """Scores of every vector of ``a`` against every vector of ``b`` (:attr:`similarity_fn_name`: dot product).

        Args:
            a: (Na, V) or (V,), dense or sparse (e.g. from :meth:`encode_query`), or a list of (V,) vectors.
            b: (Nb, V) or (V,), likewise.

        Returns:
            (Na, Nb) dense float32 scores (a 1-D input counts as one vector).
        """
        return similarity_scores(a, b)

    def intersection(self, query: torch.Tensor, doc: torch.Tensor) -> torch.Tensor:
        """The dimensions a query shares with a document, weighted by the product of the two weights (the terms of
        their dot product); :meth:`decode` names them.

        Args:
            query: (V,) one vector, dense or sparse.
            doc: (V,) one vector or (N, V), dense or sparse.

        Returns:
            Sparse COO shaped like ``doc``, positive products only.
        """
        return intersection(query, doc)

    @torch.no_grad()  # not inference_mode: its tensors cannot be used by later autograd-aware code (e.g. search)
    def _encode(self, texts, kind: str, batch_size: int, show_progress_bar: bool,
                max_active_dims: int | None, prompt: str | None = None) -> torch.Tensor:
        name = f"encode_{'query' if kind == 'query' else 'document'}"
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"{name}: batch_size={batch_size!r}; expected an integer >= 1")
        k = check_max_active_dims(max_active_dims, name)
        # CSR: the TopK itself runs with k (sentence-transformers' SparseAutoEncoder.forward(max_active_dims))
        kwargs = {"max_active_dims": min(k, self.vocab_size)} if k and isinstance(self.encoder, CSREncoder) else {}
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise ConfigError(f"{name}: expected a list of strings")
        if prompt is not None and not isinstance(prompt, str):
            raise ConfigError(f"{name}: prompt={prompt!r}; expected a string or None (the model's prompt)")
        route = "query" if kind == "query" else "document"
        collate = EncodeCollator(self.tokenizer, self.max_query_length if kind == "query" else self.max_doc_length,
                                 kind=kind, prompt=self.prompts[route] if prompt is None else prompt)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # length-sorted batches: little padding
        encode = self.encoder.encode_query if kind == "query" else self.encoder.encode_doc
        rows, cols, vals = [], [], []
        for start in tqdm(range(0, len(order), batch_size), disable=not show_progress_bar, desc=f"encode {kind}"):
            idx = order[start:start + batch_size]
            batch = collate([(str(i), texts[i]) for i in idx]).to(self.device)
            reps = select_max_active_dims(encode(batch.input_ids, batch.attention_mask, **kwargs).float(), k)
            nz = reps.nonzero()
            rows.append(torch.tensor(idx, dtype=torch.long)[nz[:, 0].cpu()])
            cols.append(nz[:, 1].cpu())
            vals.append(reps[nz[:, 0], nz[:, 1]].cpu())
        size = (len(texts), self.vocab_size)
        if not rows:
            out = torch.sparse_coo_tensor(torch.empty(2, 0, dtype=torch.long), torch.empty(0), size)
        else:
            out = torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals), size,
                                          check_invariants=False)  # built from nonzero(): valid by construction
        out = out.coalesce()
        return out[0] if single else out

    def decode(self, vector: torch.Tensor, top_k: int | None = None):
        """Readable (token, weight) pairs of one vector (V,) — or a list of them for (N, V) — by decreasing weight.

        Dimensions are named by the encoder's ``dimension_names`` when it has one (CSR: ``latent_<j>``, latents have
        no token), else by the tokenizer's tokens.

        Args:
            vector: dense or sparse, 1-D (V,) or 2-D (N, V).
            top_k: keep only the ``top_k`` heaviest tokens (None: every active token).
        """
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
            raise ConfigError(f"decode: top_k={top_k!r}; expected None or an integer >= 0")
        if vector.is_sparse or vector.layout != torch.strided:
            vector = vector.to_dense()
        if vector.dim() == 2:
            return [self.decode(row, top_k) for row in vector]
        if vector.dim() != 1 or vector.shape[0] != self.vocab_size:
            raise ConfigError(f"decode: expected a vector of size {self.vocab_size}, got shape {tuple(vector.shape)}")
        active = vector.nonzero().flatten()
        weights = vector[active]
        order = torch.argsort(weights, descending=True, stable=True)[: top_k if top_k is not None else None]
        ids = active[order].tolist()
        names = getattr(self.encoder, "dimension_names", None)
        tokens = names(ids) if names is not None else self.tokenizer.convert_ids_to_tokens(ids)
        return [(tok if tok is not None else f"[{i}]", float(w)) for tok, i, w in zip(tokens, ids, weights[order])]

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Save as a model directory that :func:`load` (and sentence-transformers' ``SparseEncoder``) can read.

        The directory must be new or empty, or (with ``overwrite=True``) one splade_lightning wrote, whose own files
        are then replaced; anything else is refused with a :class:`ConfigError`, as is the directory the model was
        loaded from (see ``docs/your_files_are_safe.md``).
        """
        from splade_lightning.formats.outputs import Input
        from splade_lightning.serialization.model_card import CardContext
        from splade_lightning.serialization.model_dir import save_encoder

        inputs = [Input(self.source, "the model's source")] if self.source else []
        return save_encoder(self.encoder, self.tokenizer, path, self.max_query_length, self.max_doc_length,
                            overwrite=overwrite, flag="save", tool="save", inputs=inputs,
                            card=CardContext.carried_from(self.source, name=str(path)), prompts=self.prompts)

    def push_to_hub(self, repo_id: str, private: bool | None = None, token: str | None = None,
                    commit_message: str = "Upload a sparse encoder with splade_lightning") -> str:
        """Upload the model to the Hugging Face Hub as a sentence-transformers ``SparseEncoder`` repository.

        The model is saved to a temporary directory in the sentence-transformers layout (an inference-free model as
        a ``Router``), with its model card (``README.md``: what the model's source directory recorded about its
        training and evaluation, see :mod:`splade_lightning.serialization.model_card`), then uploaded in one commit
        with ``huggingface_hub`` (``HfApi.create_repo(exist_ok=True)`` + ``upload_folder``). The endpoint is
        ``HF_ENDPOINT`` (default https://huggingface.co).

        Args:
            repo_id: the repository, ``owner/name`` (or ``name`` in the token owner's namespace).
            private: create the repository private (None: the Hub's default); an existing one keeps its visibility.
            token: a Hugging Face token with write access (None: ``HF_TOKEN`` or the token ``hf auth login`` saved).
            commit_message: the message of the upload commit.

        Returns:
            The URL of the commit.

        Raises:
            ConfigError: an ONNX Runtime model (no torch weights), or a Hub refusal (naming the repository).
        """
        import tempfile

        from splade_lightning.hub import upload_dir
        from splade_lightning.serialization.model_card import CardContext
        from splade_lightning.serialization.model_dir import save_encoder

        inference_free = self.encoder.export_config().get("architecture") == "inference_free"
        with tempfile.TemporaryDirectory(prefix="splade-lightning-push-") as tmp:
            target = save_encoder(self.encoder, self.tokenizer, Path(tmp) / "model", self.max_query_length,
                                  self.max_doc_length, st_router=inference_free, flag="push_to_hub",
                                  tool="push_to_hub", card=CardContext.carried_from(self.source, name=repo_id),
                                  prompts=self.prompts)
            return upload_dir(target, repo_id, private=private, token=token, commit_message=commit_message)


def load(name_or_path: str | os.PathLike, device: str | torch.device | None = None) -> SparseModel:
    """Load a model for inference.

    Args:
        name_or_path: an offline alias (``splade-tiny``), a directory saved by us (an ONNX export directory, or one
            of its ``.onnx`` files, runs with onnxruntime) or by sentence-transformers (SPLADE, inference-free or
            CSR; or a bare HF masked-LM directory), a HF hub id, or a Lightning ``.ckpt``
            written by ``fit``.
        device: where to run it: ``auto`` (CUDA when available, else CPU, as sentence-transformers; None means
            ``auto``), ``cpu``, ``cuda`` or ``cuda:N``. An ONNX export always runs on the CPU (``auto`` included).

    Returns:
        A :class:`SparseModel` in eval mode.

    Raises:
        ConfigError: an unknown name, an unreadable checkpoint, a model without the head its architecture needs, a
            tokenizer whose vocabulary does not match the model, or a device this machine does not have.
    """
    from splade_lightning.devices import resolve_device
    from splade_lightning.serialization.checkpoint import checkpoint_problem, torch_load_checkpoint
    from splade_lightning.serialization.registry import encoder_from_checkpoint, load_encoder_dir

    target = resolve_device(device, "load: device")  # None: auto
    name = str(name_or_path)
    path = Path(name)
    if name.endswith(".ckpt"):
        if not path.is_file():
            raise ConfigError(f"load: checkpoint {name!r} does not exist")
        problem = checkpoint_problem(path)
        if problem is not None:
            raise ConfigError(f"load: checkpoint {name!r} cannot be read ({problem}); expected a complete .ckpt "
                              "written by fit")
        checkpoint = torch_load_checkpoint(path)
        encoder, tokenizer = encoder_from_checkpoint(checkpoint)
        lengths = checkpoint["splade_lightning"].get("max_lengths", {})
        prompts = check_prompts(checkpoint["splade_lightning"].get("prompts"), f"load: {name}: prompts")
    else:
        if not path.exists() and ("/" not in name or name.startswith((".", "/"))) and name.lower() not in ALIASES:
            raise ConfigError(f"load: {name!r} is neither an existing path, a known alias {sorted(ALIASES)}, "
                              "nor a HF hub id of the form 'owner/name'")
        encoder, tokenizer, settings = load_encoder_dir(name)
        lengths = {k: settings[k] for k in ("max_query_length", "max_doc_length") if k in settings}
        prompts = settings.get("prompts")
    check_vocabulary(encoder, tokenizer, name)
    onnx = runtime_of(encoder) == "onnx"
    if onnx and device not in (None, "auto") and torch.device(target).type != "cpu":
        raise ConfigError(f"load: {name} is an ONNX export, which runs on the CPU with onnxruntime; got device "
                          f"{device!r} (use device='cpu', or load the torch model it was exported from)")
    local = Path(resolve_model_path(name))
    source = str(local) if local.exists() else None
    model = SparseModel(encoder, tokenizer, **lengths, source=source, prompts=prompts)
    return model if onnx else model.to(target)  # onnxruntime runs on the CPU


def check_vocabulary(encoder: nn.Module, tokenizer, name: str) -> None:
    """Refuse a tokenizer whose vocabulary is not the model's: every token id must have its output dimension and
    every dimension its token (a smaller tokenizer leaves dimensions no text can be matched on; a larger one gives
    ids past the model's embeddings). CSR models, whose dimensions are latents, are not checked.

    Raises:
        ConfigError: naming both sizes.
    """
    if getattr(encoder, "dimension_names", None) is not None:
        return
    tokens, dims = len(tokenizer), int(encoder.vocab_size)
    if tokens != dims:
        raise ConfigError(f"load: {name}: its tokenizer has {tokens} tokens but the model has {dims} vocabulary "
                          "dimensions; expected the tokenizer the model was trained with (one token per dimension)")
