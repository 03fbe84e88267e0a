"""``splade-lightning index``: encode a corpus into a sharded, resumable sparse index on disk.

Examples::

    splade-lightning index --model splade-tiny --corpus data/msmarco-trecdl-5k --output runs/idx
    splade-lightning index --model runs/m/model --corpus corpus.jsonl --output idx --top_k_prune 128 \\
        --value_dtype float16 --devices 4 --precision bf16-mixed

Documents are encoded by Lightning's predict loop (so ``--devices N`` shards the corpus over N DDP processes, each
writing its own shards). A re-run with the same settings skips every shard already written and validated, and
recomputes missing or corrupt ones; a model, corpus or setting that changed is refused (``--overwrite`` rebuilds). Every
argument is checked before the corpus and the model are loaded.
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from splade_lightning.errors import ConfigError, DataError, DataErrors
from splade_lightning.formats.fingerprints import describe_changes, model_fingerprint, texts_fingerprint
from splade_lightning.formats.index_store import (
    FORMAT_VERSION,
    INDEX_FILE,
    SHARD_PARTS,
    shard_is_complete,
    shard_name,
    shard_ranges,
    write_index_json,
)
from splade_lightning.formats.manifest import write_manifest
from splade_lightning.formats.outputs import Input, check_not_input, dir_output_state, model_input, remove_owned
from splade_lightning.hub import ALIASES


def _check_args(args: argparse.Namespace) -> Path:
    """Check every argument before heavy work; return the corpus file."""
    from splade_lightning.formats.beir_files import beir_file

    for name in ("batch_size", "max_doc_length", "top_k_prune", "shard_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name} must be >= 1, got {value}")
    check_not_input(args.output, "--output", _inputs(args))
    state, manifest = dir_output_state(args.output, "--output")
    if state == "ours" and manifest.get("tool") != "index" and not args.overwrite:
        raise ConfigError(f"--output {args.output} holds an earlier output of splade_lightning "
                          f"`{manifest.get('tool')}`, not an index; pass --overwrite to replace it, or choose another "
                          "directory")
    if _is_hf_dataset(Path(args.corpus)):
        return Path(args.corpus)
    return beir_file(args.corpus, "doc")


def _is_hf_dataset(path: Path) -> bool:
    """A directory written by ``datasets.Dataset.save_to_disk``."""
    return path.is_dir() and (path / "dataset_info.json").is_file() and (path / "state.json").is_file()


def _hf_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """``(row number, {"_id", "title", "text"})`` of a saved HF dataset, read column-wise (``id`` is accepted for
    ``_id``); the records are then validated like ``corpus.jsonl`` lines."""
    from datasets import load_from_disk

    dataset = load_from_disk(str(path))
    columns = set(dataset.column_names)
    id_column = "_id" if "_id" in columns else "id"
    if id_column not in columns or "text" not in columns:
        raise DataError(f"HF dataset needs columns '_id' (or 'id') and 'text' (optional 'title'); it has "
                        f"{sorted(columns)}", path)
    titles = dataset["title"] if "title" in columns else [""] * len(dataset)
    records = zip(dataset[id_column], titles, dataset["text"])
    return enumerate(({"_id": key, "title": title, "text": text} for key, title, text in records), start=1)


def _read_corpus(path: Path) -> tuple[list[str], list[str]]:
    """(ids, texts) of a BEIR corpus file or a saved HF dataset (text = title + " " + text, the BEIR rule)."""
    from splade_lightning.formats.beir import iter_id_texts

    errors: list = []
    corpus = dict(iter_id_texts(path, "doc", errors, rows=_hf_rows(path) if _is_hf_dataset(path) else None))
    if errors:
        raise DataErrors(errors)
    return list(corpus), list(corpus.values())


def _inputs(args: argparse.Namespace) -> list[Input]:
    reads = None if _is_hf_dataset(Path(args.corpus)) else ("corpus.jsonl",)
    return [model_input(args.model, "--model"), Input(args.corpus, "--corpus", reads=reads)]


def _model_name(name: str) -> str:
    """The model as ``search`` can find it again: a local path made absolute, an alias or hub id unchanged."""
    path = Path(name)
    return str(path.resolve()) if path.exists() and name.lower() not in ALIASES else name


def _settings(args: argparse.Namespace, corpus: Path, n_docs: int, max_length: int) -> dict:
    return {"model": _model_name(args.model), "corpus": str(corpus.resolve()), "n_docs": n_docs,
            "max_length": max_length, "top_k_prune": args.top_k_prune, "shard_size": args.shard_size,
            "value_dtype": args.value_dtype, "precision": str(args.precision)}


def _fingerprint(settings: dict, model, ids: list[str], texts: list[str]) -> dict:
    """What the stored vectors depend on: the model's weights, the corpus records, the settings, and the document
    prompt when there is one (left out otherwise, so indexes built before prompts existed still resume)."""
    kept = {k: settings[k] for k in ("max_length", "top_k_prune", "shard_size", "value_dtype", "precision")}
    prompt = {"doc_prompt": model.prompts["document"]} if model.prompts["document"] else {}
    return {"model": model_fingerprint(model), "data": texts_fingerprint(ids, texts), **kept, **prompt}


def _is_launched_child() -> bool:
    """True in the extra processes a DDP launcher starts (they re-run this command)."""
    return int(os.environ.get("LOCAL_RANK", "0")) > 0 or int(os.environ.get("NODE_RANK", "0")) > 0


def _prepare_output(output: Path, fingerprint: dict, n_shards: int, overwrite: bool) -> None:
    """Resume an index built from the same fingerprint; refuse (or with --overwrite, clear) any other earlier output
    of ours; then record the fingerprint in the manifest (``complete: false``)."""
    state, manifest = dir_output_state(output, "--output")
    if state == "ours":
        same = manifest.get("tool") == "index" and manifest.get("fingerprint") == fingerprint
        if not same and not overwrite:
            changes = describe_changes(manifest.get("fingerprint"), fingerprint)
            raise ConfigError(f"--output {output} holds an index that was not built from these inputs ("
                              + "; ".join(changes) + "); nothing was reused or written. Pass --overwrite to rebuild "
                              "it, or choose another directory")
        if not same:
            remove_owned(output, manifest)
        elif manifest.get("complete"):
            print(f"{output} is an index of this model, corpus and settings; checking its shards", flush=True)
    output.mkdir(parents=True, exist_ok=True)
    files = {f"{shard_name(s)}.{part}": None for s in range(n_shards) for part in SHARD_PARTS}
    write_manifest(output, "index", fingerprint, complete=False, files={**files, INDEX_FILE: None},
                   owned_dirs=["seismic"])


def _manifest(settings: dict, vocab_size: int, complete: bool) -> dict:
    ranges = shard_ranges(settings["n_docs"], settings["shard_size"])
    return {"format_version": FORMAT_VERSION, "model": settings["model"], "vocab_size": vocab_size,
            "count": settings["n_docs"], "settings": settings, "complete": complete,
            "shards": [{"shard": s, "start": a, "rows": b - a} for s, (a, b) in enumerate(ranges)]}


def _trainer(args: argparse.Namespace, writer):
    import lightning as L

    devices = args.devices if isinstance(args.devices, int) or args.devices == "auto" or "," in args.devices \
        else int(args.devices)
    return L.Trainer(accelerator=args.accelerator, devices=devices, precision=args.precision, logger=False,
                     callbacks=[writer], enable_checkpointing=False, enable_model_summary=False,
                     enable_progress_bar=args.progress, use_distributed_sampler=False)


def index(model: str, corpus: str, output: str, batch_size: int = 64, max_doc_length: int | None = None,
          top_k_prune: int | None = None, shard_size: int = 10000,
          value_dtype: Literal["float32", "float16"] = "float32", accelerator: str = "auto", devices: int | str = 1,
          precision: str = "32-true", overwrite: bool = False, progress: bool = True) -> int:
    """Encode a corpus with a sparse model into a sharded, memory-mappable CSR index (resumable: a re-run skips
    finished shards).

    Args:
        model: the model: alias, model directory, HF hub id, or a .ckpt written by fit.
        corpus: the documents: a BEIR directory (its corpus.jsonl), a JSONL file of {"_id", "title", "text"} records,
            or a HF datasets directory (save_to_disk) with columns _id (or id), text and optional title.
        output: the index directory to write.
        batch_size: documents per forward pass.
        max_doc_length: document truncation in tokens (default: the model's).
        top_k_prune: keep only each document's top_k_prune largest weights (default: keep all).
        shard_size: documents per shard.
        value_dtype: stored weight dtype.
        accelerator: Lightning accelerator: auto (a GPU when available), cpu or gpu.
        devices: Lightning devices: a count, a list such as "0,1", or auto; several shard the corpus over DDP
            processes.
        precision: Lightning precision, e.g. 32-true or bf16-mixed.
        overwrite: rebuild an index built from another model, corpus or settings (or replace another earlier output
            of splade_lightning); only the files it wrote are removed.
        progress: show a progress bar.
    """
    args = argparse.Namespace(**locals())
    corpus = _check_args(args)
    ids, texts = _read_corpus(corpus)
    from splade_lightning.api import load
    from splade_lightning.data.collate import EncodeCollator
    from splade_lightning.tools.index_predict import CorpusPredictData, DocEncoder, ShardWriter

    model = load(args.model)
    max_length = args.max_doc_length or model.max_doc_length
    settings = _settings(args, corpus, len(ids), max_length)
    fingerprint = _fingerprint(settings, model, ids, texts)
    output = Path(args.output)
    n_shards = len(shard_ranges(len(ids), args.shard_size))
    if not _is_launched_child():
        _prepare_output(output, fingerprint, n_shards, args.overwrite)
        write_index_json(output, _manifest(settings, model.vocab_size, complete=False))
    collator = EncodeCollator(model.tokenizer, max_length, kind="doc", prompt=model.prompts["document"])
    data = CorpusPredictData(ids, texts, collator, output, args.shard_size, args.value_dtype, args.batch_size)
    writer = ShardWriter(output, ids, args.shard_size, args.value_dtype)
    trainer = _trainer(args, writer)
    warnings.filterwarnings("ignore", message=".*custom batch sampler.*")  # ours yields every document once
    warnings.filterwarnings("ignore", message=".*Total length of `DataLoader` across ranks is zero")  # all reused
    trainer.predict(DocEncoder(model.encoder, args.top_k_prune), datamodule=data, return_predictions=False)
    trainer.strategy.barrier()
    if trainer.is_global_zero:
        manifest = _manifest(settings, model.vocab_size, complete=True)
        bad = [s["shard"] for s in manifest["shards"]
               if not shard_is_complete(output, s["shard"], s["rows"], args.value_dtype)]
        if bad:
            raise ConfigError(f"shards {bad} of {output} were not written; re-run the same command to finish them")
        write_index_json(output, manifest)
        files = {f"{shard_name(s)}.{part}": None for s in range(n_shards) for part in SHARD_PARTS}
        write_manifest(output, "index", fingerprint, complete=True, files={**files, INDEX_FILE: None},
                       owned_dirs=["seismic"])
        reused = "" if trainer.world_size > 1 else f", {n_shards - len(writer.written)} reused from an earlier run"
        print(f"indexed {len(ids)} documents into {output}: {n_shards} shard(s){reused}", flush=True)
    return 0
