"""Resumable encoding: finished shards are skipped, missing or corrupt ones are recomputed."""

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from splade_lightning.data.collate import EncodeCollator
from splade_lightning.formats.index_store import shard_files, shard_is_complete
from splade_lightning.tools.index_predict import CorpusPredictData, DocEncoder, ShardWriter

IDS = [f"d{i}" for i in range(10)]
TEXTS = [f"document number {i} " + "word " * i for i in range(10)]


class CountingEncoder(nn.Module):
    """(B, L) ids -> (B, 50) reps that depend only on the text; counts the documents it encodes."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))
        self.encoded = 0

    def encode_doc(self, input_ids, attention_mask):
        self.encoded += input_ids.shape[0]
        reps = torch.zeros(input_ids.shape[0], 50)
        reps.scatter_add_(1, (input_ids % 50) * attention_mask, attention_mask.float())
        return reps * self.weight


def _encode(root, tokenizer, encoder, shard_size=4):
    data = CorpusPredictData(IDS, TEXTS, EncodeCollator(tokenizer, 32), root, shard_size, "float32", batch_size=3)
    writer = ShardWriter(root, IDS, shard_size, "float32")
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, callbacks=[writer], enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, use_distributed_sampler=False)
    trainer.predict(DocEncoder(encoder), datamodule=data, return_predictions=False)
    return writer.written


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def test_resume_skips_good_shards_and_redoes_bad_ones(tmp_path, tokenizer):
    encoder = CountingEncoder()
    assert _encode(tmp_path, tokenizer, encoder) == [0, 1, 2]
    assert encoder.encoded == 10
    before = {s: np.load(shard_files(tmp_path, s)["values"]).copy() for s in range(3)}
    mtime = shard_files(tmp_path, 0)["values"].stat().st_mtime_ns

    encoder.encoded = 0
    assert _encode(tmp_path, tokenizer, encoder) == []
    assert encoder.encoded == 0

    for path in shard_files(tmp_path, 1).values():
        path.unlink()
    values = shard_files(tmp_path, 2)["values"]
    values.write_bytes(values.read_bytes()[:-4])
    assert _encode(tmp_path, tokenizer, encoder) == [1, 2]
    assert encoder.encoded == 6  # shard 1 (4 docs) + shard 2 (2 docs), not shard 0
    assert shard_files(tmp_path, 0)["values"].stat().st_mtime_ns == mtime
    for s in range(3):
        assert shard_is_complete(tmp_path, s, 4 if s < 2 else 2, "float32")
        np.testing.assert_array_equal(np.load(shard_files(tmp_path, s)["values"]), before[s])


def test_ranks_take_interleaved_shards(tmp_path, tokenizer):
    data = CorpusPredictData(IDS, TEXTS, EncodeCollator(tokenizer, 32), tmp_path, 2, "float32", batch_size=3)
    assert data.pending_shards(0, 2) == [0, 2, 4]
    assert data.pending_shards(1, 2) == [1, 3]
