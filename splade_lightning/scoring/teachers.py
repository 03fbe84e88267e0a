"""Teachers that score (query, document) pairs: sparse and dense bi-encoders and cross-encoders.

A teacher is named on the command line as ``KIND:NAME_OR_PATH`` (:func:`parse_teacher_spec`):

- ``sparse:M``: anything :func:`splade_lightning.load` reads (an alias, a model directory, a ``.ckpt``, a hub id;
  SPLADE, inference-free or CSR). Score: ``encode_query(q) · encode_document(d)``.
- ``dense:M``: a dense encoder (a sentence-transformers or plain HF directory, an alias, a hub id) run as
  :class:`~splade_lightning.models.DenseEncoder`, its pooling and L2 normalisation read from the directory's
  ``modules.json`` / ``1_Pooling/config.json`` (defaults without them: mean pooling, normalised). Score: dot product.
- ``cross:M``: a HF ``AutoModelForSequenceClassification`` with a single output (a cross-encoder). Score: the raw
  logit (no sigmoid) of the (query, document) pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from splade_lightning.data.collate import tokenize
from splade_lightning.errors import ConfigError
from splade_lightning.hub import ALIASES, alias_dir, load_tokenizer, resolve_model_path
from splade_lightning.serialization.st_csr import read_modules, read_pooling_mode, st_max_seq_length

KINDS: tuple[str, ...] = ("sparse", "dense", "cross")
#: truncation length when neither --max_length nor the model directory gives one (capped by the position table)
DEFAULT_MAX_LENGTH = 512


@dataclass(frozen=True)
class TeacherSpec:
    """A parsed ``--teacher KIND:NAME_OR_PATH``."""

    kind: str
    name: str

    @property
    def label(self) -> str:
        """``KIND:NAME_OR_PATH``, the key of this teacher in ``teacher_scores``."""
        return f"{self.kind}:{self.name}"


def parse_teacher_spec(text: str) -> TeacherSpec:
    """Parse ``KIND:NAME_OR_PATH`` (e.g. ``dense:all-minilm-l6-v2``, ``cross:/models/ce``).

    Raises:
        ConfigError: no ``:``, an unknown kind, or an empty name.
    """
    kind, sep, name = text.partition(":")
    if not sep:
        raise ConfigError(f"--teacher {text!r}: expected KIND:NAME_OR_PATH with KIND one of {list(KINDS)}, e.g. "
                          "sparse:splade-tiny or dense:all-minilm-l6-v2")
    if kind not in KINDS:
        raise ConfigError(f"--teacher {text!r}: unknown teacher kind {kind!r}; expected one of {list(KINDS)}")
    if not name.strip():
        raise ConfigError(f"--teacher {text!r}: empty model name; expected {kind}:NAME_OR_PATH")
    return TeacherSpec(kind, name)


def check_teacher_source(spec: TeacherSpec) -> None:
    """Cheap check, before anything is loaded, that the model of ``spec`` can exist: an existing path, an installed
    alias, or a HF hub id (``owner/name``, checked when loaded).

    Raises:
        ConfigError: a path that does not exist, or an alias whose package is not installed.
    """
    name = spec.name
    if Path(name).expanduser().exists():
        return
    if name.lower() in ALIASES:
        alias_dir(name)
        return
    hub_like = name.count("/") == 1 and not name.startswith((".", "/", "~")) and not name.endswith(".ckpt")
    if not hub_like:
        raise ConfigError(f"--teacher {spec.label}: {name!r} does not exist; expected an existing path, an alias "
                          f"{sorted(ALIASES)} or a HF hub id 'owner/name'")


class Teacher:
    """Scores pairs of a chunk's distinct query and document texts; subclasses implement :meth:`score_pairs`."""

    label: str = "teacher"

    def score_pairs(self, queries: Sequence[str], docs: Sequence[str], pairs: np.ndarray) -> np.ndarray:
        """Score ``(queries[i], docs[j])`` for each row ``(i, j)`` of ``pairs`` (P, 2); returns (P,) float64."""
        raise NotImplementedError


class BiEncoderTeacher(Teacher):
    """Encodes each query and each document once, then scores pairs by dot product."""

    def encode(self, texts: Sequence[str], kind: str) -> torch.Tensor:
        """(N, D) embeddings (dense or sparse COO) on the CPU; ``kind`` is ``query`` or ``doc``."""
        raise NotImplementedError

    def score_pairs(self, queries: Sequence[str], docs: Sequence[str], pairs: np.ndarray) -> np.ndarray:
        query_reps, doc_reps = self.encode(queries, "query").float(), self.encode(docs, "doc").float()
        q_idx, d_idx = torch.as_tensor(pairs[:, 0]), torch.as_tensor(pairs[:, 1])
        if doc_reps.is_sparse:  # (Nd, V) sparse @ (V, Nq) dense: every pair of the chunk, cheap next to encoding
            all_scores = torch.sparse.mm(doc_reps, query_reps.to_dense().T)
            scores = all_scores[d_idx, q_idx]
        else:
            scores = (query_reps.to_dense()[q_idx] * doc_reps[d_idx]).sum(dim=-1)
        return scores.double().numpy()


class SparseTeacher(BiEncoderTeacher):
    """``sparse:M``: a :class:`~splade_lightning.api.SparseModel`; score = encode_query(q) · encode_document(d)."""

    def __init__(self, spec: TeacherSpec, device: str, batch_size: int, max_length: int | None):
        from splade_lightning.api import load

        self.label, self.batch_size = spec.label, batch_size
        self.model = load(spec.name, device=device)
        if max_length is not None:
            self.model.max_query_length = self.model.max_doc_length = max_length

    def encode(self, texts: Sequence[str], kind: str) -> torch.Tensor:
        encode = self.model.encode_query if kind == "query" else self.model.encode_document
        return encode(list(texts), batch_size=self.batch_size)


def _model_max_length(tokenizer, config) -> int:
    """The tokenizer's ``model_max_length`` capped by the model's position table (else :data:`DEFAULT_MAX_LENGTH`)."""
    limits = [getattr(tokenizer, "model_max_length", None), getattr(config, "max_position_embeddings", None)]
    limits = [int(v) for v in limits if isinstance(v, (int, float)) and 0 < v < 1e9]
    return min(limits) if limits else DEFAULT_MAX_LENGTH


@dataclass(frozen=True)
class DenseLayout:
    """How to run a dense encoder directory: where the HF weights are, its pooling, normalisation and length."""

    backbone: str
    pooling: str = "mean"
    normalize: bool = True
    max_length: int | None = None


def _pooling_mode(file: Path, label: str) -> str:
    """``mean`` or ``cls`` from a sentence-transformers Pooling config; errors name the teacher."""
    try:
        return read_pooling_mode(file, "the dense teacher")
    except ConfigError as e:
        raise ConfigError(f"--teacher {label}: {e}") from e


def read_dense_layout(path: Path, label: str) -> DenseLayout:
    """Read a dense model directory: sentence-transformers (Transformer -> Pooling [-> Normalize]) or plain HF.

    Raises:
        ConfigError: a ``modules.json`` with other modules (a CSR directory is pointed at ``sparse:``).
    """
    modules = read_modules(path)
    if modules is None:
        return DenseLayout(str(path), max_length=st_max_seq_length(path))
    modules = sorted(modules, key=lambda m: int(m.get("idx", 0)))
    names = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        hint = "; it is a CSR model: use sparse:" if "SparseAutoEncoder" in names else ""
        raise ConfigError(f"--teacher {label}: {path / 'modules.json'} lists {names}; the dense teacher runs "
                          f"Transformer -> Pooling [-> Normalize]{hint}")
    backbone = path / str(modules[0].get("path", ""))
    return DenseLayout(str(backbone), pooling=_pooling_mode(path / str(modules[1]["path"]) / "config.json", label),
                       normalize="Normalize" in names, max_length=st_max_seq_length(backbone))


def _local_model_dir(name: str) -> Path:
    """The local directory of an alias / path, or a snapshot of a hub repository's config, tokenizer and weights."""
    path = Path(resolve_model_path(name)).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors"]))
    except Exception as e:  # no network, unknown repository
        raise ConfigError(f"--teacher dense:{name}: not a local directory and not downloadable from the HF hub "
                          f"({type(e).__name__}: {e})") from e


class DenseTeacher(BiEncoderTeacher):
    """``dense:M``: a :class:`~splade_lightning.models.DenseEncoder`; score = dot product of the embeddings."""

    def __init__(self, spec: TeacherSpec, device: str, batch_size: int, max_length: int | None):
        from splade_lightning.models import DenseEncoder

        self.label, self.batch_size, self.device = spec.label, batch_size, torch.device(device)
        self.layout = read_dense_layout(_local_model_dir(spec.name), spec.label)
        self.encoder = DenseEncoder(self.layout.backbone, pooling=self.layout.pooling, normalize=self.layout.normalize,
                                    frozen=True).to(self.device).eval()
        self.tokenizer = load_tokenizer(self.layout.backbone)
        self.max_length = max_length or self.layout.max_length or _model_max_length(self.tokenizer,
                                                                                     self.encoder.encoder.config)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], kind: str) -> torch.Tensor:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # length-sorted batches: little padding
        out = torch.empty(len(texts), self.encoder.embedding_dim)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            input_ids, mask = tokenize(self.tokenizer, [texts[i] for i in idx], self.max_length)
            out[idx] = self.encoder(input_ids.to(self.device), mask.to(self.device)).float().cpu()
        return out


class CrossTeacher(Teacher):
    """``cross:M``: a single-logit ``AutoModelForSequenceClassification``; score = the logit of (query, doc)."""

    def __init__(self, spec: TeacherSpec, device: str, batch_size: int, max_length: int | None):
        from transformers import AutoModelForSequenceClassification
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.label, self.batch_size, self.device = spec.label, batch_size, torch.device(device)
        try:
            model, info = AutoModelForSequenceClassification.from_pretrained(resolve_model_path(spec.name),
                                                                             output_loading_info=True)
        except (OSError, ValueError, KeyError) as e:
            raise ConfigError(f"--teacher {spec.label}: cannot load a cross-encoder (HF sequence-classification "
                              f"model) from {spec.name!r} ({type(e).__name__}: {e})") from e
        if info.get("missing_keys"):
            raise ConfigError(f"--teacher {spec.label}: {spec.name!r} has no trained sequence-classification head "
                              f"(weights missing from the checkpoint: {sorted(info['missing_keys'])[:4]}); expected "
                              "a cross-encoder directory")
        if model.config.num_labels != 1:
            raise ConfigError(f"--teacher {spec.label}: the model has {model.config.num_labels} outputs; a cross "
                              "teacher needs a single relevance logit (num_labels=1)")
        self.model = model.to(self.device).eval()
        self.tokenizer = load_tokenizer(spec.name)
        self.max_length = max_length or _model_max_length(self.tokenizer, model.config)

    @torch.inference_mode()
    def score_pairs(self, queries: Sequence[str], docs: Sequence[str], pairs: np.ndarray) -> np.ndarray:
        order = sorted(range(len(pairs)), key=lambda p: -(len(queries[pairs[p, 0]]) + len(docs[pairs[p, 1]])))
        out = np.empty(len(pairs), dtype=np.float64)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            batch = self.tokenizer([queries[pairs[p, 0]] for p in idx], [docs[pairs[p, 1]] for p in idx],
                                   padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            logits = self.model(**batch.to(self.device)).logits[:, 0]
            out[idx] = logits.double().cpu().numpy()
        return out


TEACHERS: dict[str, type[Teacher]] = {"sparse": SparseTeacher, "dense": DenseTeacher, "cross": CrossTeacher}


def load_teacher(spec: TeacherSpec, device: str = "cpu", batch_size: int = 32,
                 max_length: int | None = None) -> Teacher:
    """Load the teacher of ``spec``.

    Args:
        spec: the parsed ``--teacher``.
        device: where the model runs (``cpu``, ``cuda``, ``cuda:1``, ...).
        batch_size: texts (bi-encoders) or pairs (cross-encoders) per forward pass.
        max_length: truncation length in tokens; None reads it from the model directory.

    Raises:
        ConfigError: the model cannot be loaded as this kind of teacher.
    """
    return TEACHERS[spec.kind](spec, device, batch_size, max_length)
