"""The ONNX export directory (``splade-lightning export --format onnx``): write it, recognise it, load it.

Layout::

    model.onnx                 the whole document encoder: MLM, masked pooling, SPLADE activation
    model_int8.onnx            with --quantize int8: the same graph, weights dynamically quantised to int8
    tokenizer.json, ...        the tokenizer files (HF ``save_pretrained``)
    idf.json                   inference-free models only: the query weight of every token (OpenSearch's format)
    splade_lightning.json      pooling, activation, max lengths, vocabulary size, the graph's contract

The graph's contract (keep it stable, other tools rely on it): inputs ``input_ids`` and ``attention_mask``, int64,
``[batch, sequence]`` (both dynamic); output ``sparse_embedding``, float32, ``[batch, vocab]``, equal to
``encode_document``. Other ONNX exports of SPLADE models carry only the MLM (e.g. the ``onnx/`` folders of
``naver/splade-v3`` and ``opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill`` on the Hugging Face
hub), leaving pooling to every consumer; this one puts pooling in the graph. The graph is built with
``torch.onnx.export(dynamo=True)`` (torch >= 2.5) and run with onnxruntime; the int8 model comes from
``onnxruntime.quantization.quantize_dynamic`` (https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.formats.outputs import Input, dir_output
from splade_lightning.models.onnx_encoder import INPUT_NAMES, OUTPUT_NAME, OnnxDocumentEncoder
from splade_lightning.models.pooling import splade_activation, splade_pool
from splade_lightning.models.router import QueryDocRouter, Router
from splade_lightning.models.splade import SpladeEncoder
from splade_lightning.models.static import StaticSparseEncoder
from splade_lightning.prompts import check_prompts
from splade_lightning.serialization.checkpoint import FORMAT_VERSION

META_FILE = "splade_lightning.json"
IDF_FILE = "idf.json"
ONNX_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
LAYOUT = "onnx"


class SpladeGraph(nn.Module):
    """What the exported graph computes: (B, L) ids -> (B, V) SPLADE weights.

    For max pooling with a splittable MLM head (the memory-efficient head's condition), the graph takes the
    decoder's input ``h`` (B, L, H), gives every padded position the hidden state of its row's first real token (the
    maximum over positions is unchanged, whatever the padding side), and adds the bias after the maximum: one
    (B, L, V) tensor instead of the three of ``logits -> masked_fill -> amax`` with the bias added per position.
    Rows without any real token give 0, as in :func:`~splade_lightning.models.pooling.splade_pool`. Other encoders
    get the plain head and :func:`~splade_lightning.models.pooling.splade_pool`.

    Args:
        encoder: the SPLADE encoder whose MLM, pooling and activation the graph holds.
    """

    def __init__(self, encoder: SpladeEncoder):
        super().__init__()
        self.mlm, self.pooling, self.activation = encoder.mlm, encoder.pooling, encoder.activation
        decoder = encoder.output_decoder()
        self.weight = decoder.weight if decoder is not None else None
        self.bias = decoder.bias if decoder is not None else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 ids and mask -> (B, V) float32 weights (trace it inside ``encoder.decoder_bypassed()`` when
        the head is split)."""
        out = self.mlm(input_ids=input_ids, attention_mask=attention_mask).logits
        if self.weight is None:
            return splade_pool(out.float(), attention_mask, self.pooling, self.activation)
        valid = attention_mask.to(torch.bool)  # (B, L)
        first = valid.to(torch.int64).argmax(dim=1)  # (B,) first real token
        fill = out[torch.arange(out.shape[0]), first].unsqueeze(1)  # (B, 1, H)
        hidden = torch.where(valid.unsqueeze(-1), out, fill)
        best = nn.functional.linear(hidden, self.weight).amax(dim=1)  # (B, V)
        if self.bias is not None:
            best = best + self.bias
        weights = splade_activation(best.float(), self.activation)
        return weights * valid.any(dim=1, keepdim=True).to(weights.dtype)


def document_encoder(encoder: nn.Module) -> SpladeEncoder:
    """The SPLADE encoder an ONNX export holds: the model itself, or an inference-free model's document side.

    Raises:
        ConfigError: any other encoder (CSR; a model already running on ONNX Runtime).
    """
    if isinstance(encoder, Router):
        kinds = {n: type(e).__name__ for n, e in encoder.routes.items()}
        raise ConfigError(f"--format onnx holds one SPLADE encoder (or an inference-free model's document side); this "
                          f"model is a Router with routes {kinds}, which one graph cannot hold; export it as "
                          "--format sentence-transformers")
    splade = encoder.doc_encoder if isinstance(encoder, QueryDocRouter) else encoder
    if isinstance(splade, OnnxDocumentEncoder):
        raise ConfigError("--format onnx: this model was loaded from an ONNX export, which holds no torch weights to "
                          "export again; export the model it was made from")
    if not isinstance(splade, SpladeEncoder):
        raise ConfigError(f"--format onnx holds a SPLADE encoder (or an inference-free model's SPLADE document side); "
                          f"this model's document side is a {type(splade).__name__}")
    return splade


def _example_inputs(vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(2, 8) ids with one padded row: dynamic sizes must not be specialised to 0 or 1 while tracing."""
    ids = torch.arange(8, dtype=torch.long).repeat(2, 1) % vocab_size
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    return ids, mask


def export_graph(splade: SpladeEncoder, path: Path, max_length: int) -> None:
    """Trace ``splade`` into an ONNX file at ``path`` (dynamic batch and sequence up to ``max_length``)."""
    from torch.export import Dim

    graph = SpladeGraph(splade).eval()
    example = _example_inputs(splade.vocab_size)  # before the bypass: the width is read from the decoder
    batch, sequence = Dim("batch"), Dim("sequence", max=max_length)
    shapes = {name: {0: batch, 1: sequence} for name in INPUT_NAMES}
    was_training = splade.training
    splade.eval()
    exporter_log = logging.getLogger("torch.onnx")  # notes about torchvision operators it skips
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), \
                splade.decoder_bypassed():
            warnings.simplefilter("ignore")  # tracer notes about transformers internals, not about the graph
            program = torch.onnx.export(graph, example, input_names=list(INPUT_NAMES),
                                        output_names=[OUTPUT_NAME], dynamic_shapes=shapes, dynamo=True,
                                        verbose=False)
        program.save(str(path))
    finally:
        splade.train(was_training)
        exporter_log.setLevel(level)


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the weights (activations quantised on the fly) with onnxruntime's tool."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = target.with_name(target.stem + ".prepared.onnx")  # the pre-processing onnxruntime recommends
    quant_log = logging.getLogger()  # quantize_dynamic logs through the root logger
    level = quant_log.level
    quant_log.setLevel(logging.ERROR)
    try:
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8)
    finally:
        prepared.unlink(missing_ok=True)
        quant_log.setLevel(level)


def write_onnx_dir(encoder: nn.Module, tokenizer, path: str | os.PathLike, max_query_length: int,
                   max_doc_length: int, quantize: Literal["int8"] | None = None, overwrite: bool = False,
                   flag: str = "--output", tool: str = "export", inputs: Sequence[Input] = (),
                   prompts: dict[str, str] | None = None) -> Path:
    """Write the ONNX export of ``encoder`` (SPLADE, or an inference-free model) at ``path``, atomically and under
    the output policy (:func:`splade_lightning.formats.outputs.dir_output`). The model's ``{route: text}``
    ``prompts`` go into ``splade_lightning.json`` (the graph takes token ids: whoever tokenises prepends them).

    Raises:
        ConfigError: an encoder the format cannot hold, or onnxruntime missing for ``quantize``.
    """
    from splade_lightning.serialization.model_dir import write_query_table

    splade = document_encoder(encoder)
    if quantize is not None and quantize != "int8":
        raise ConfigError(f"--quantize {quantize!r}: expected int8 or none")
    max_length = int(getattr(splade.mlm.config, "max_position_embeddings", max(max_query_length, max_doc_length)))
    target = Path(path)
    with dir_output(target, flag, tool, overwrite, inputs) as tmp:
        export_graph(splade, tmp / ONNX_FILE, max_length)
        if quantize == "int8":
            quantize_int8(tmp / ONNX_FILE, tmp / INT8_FILE)
        tokenizer.save_pretrained(tmp)
        if isinstance(encoder, QueryDocRouter):
            write_query_table(encoder, tokenizer, tmp / IDF_FILE)
        contract = {"model": ONNX_FILE, "model_int8": INT8_FILE if quantize == "int8" else None,
                    "inputs": {name: {"dtype": "int64", "shape": ["batch", "sequence"]} for name in INPUT_NAMES},
                    "output": {OUTPUT_NAME: {"dtype": "float32", "shape": ["batch", splade.vocab_size]}},
                    "max_sequence": max_length}
        meta = {"format_version": FORMAT_VERSION, **encoder.export_config(), "layout": LAYOUT,
                "vocab_size": splade.vocab_size, "max_query_length": max_query_length,
                "max_doc_length": max_doc_length, "prompts": check_prompts(prompts), "onnx": contract}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    return target


def _meta(directory: Path) -> dict | None:
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("layout") == LAYOUT else None


def is_onnx_source(path: Path) -> bool:
    """Whether ``path`` is an ONNX export directory, or a ``.onnx`` file inside one."""
    if path.suffix == ".onnx" and path.is_file():
        return _meta(path.parent) is not None
    return path.is_dir() and _meta(path) is not None


def load_onnx(path: Path, threads: int | None = None) -> tuple[nn.Module, str, dict]:
    """(encoder, tokenizer directory, settings) of an ONNX export: the directory (its ``model.onnx``) or one of its
    ``.onnx`` files (e.g. ``model_int8.onnx``). An inference-free export gives a ``QueryDocRouter`` whose query side
    reads ``idf.json``.

    Raises:
        ConfigError: a missing model file or an architecture the layout does not hold.
    """
    directory, model_file = (path.parent, path) if path.suffix == ".onnx" else (path, None)
    meta = _meta(directory)
    model_file = model_file or directory / meta["onnx"]["model"]
    if not model_file.is_file():
        raise ConfigError(f"{directory}: the ONNX export lacks {model_file.name}")
    architecture = meta.get("architecture")
    if architecture not in ("splade", "inference_free"):
        raise ConfigError(f"{directory}: an ONNX export of a {architecture!r} model; expected splade or "
                          "inference_free")
    doc_settings = meta if architecture == "splade" else meta["doc"]
    doc = OnnxDocumentEncoder(str(model_file), str(directory), meta["vocab_size"], doc_settings.get("pooling", "max"),
                              doc_settings.get("activation", "relu"), threads)
    if architecture == "splade":
        return doc, str(directory), meta
    query = StaticSparseEncoder(str(directory), vocab_size=doc.vocab_size, idf_file=str(directory / IDF_FILE),
                                frozen=True, missing_weight=0.0)  # idf.json lists every token
    return QueryDocRouter(doc, query), str(directory), meta
