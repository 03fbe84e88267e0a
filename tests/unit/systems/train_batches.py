"""Ready training batches for module tests that fit without a data module."""

import torch

from splade_lightning.types import TrainBatch


def train_loader(tokenizer_dir: str) -> torch.utils.data.DataLoader:
    """Two ready TrainBatches (2 queries, 1 positive + 1 negative each), no data module."""
    from splade_lightning.hub import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    batches = []
    for i in range(2):
        q = tok([f"question {i}", f"query {i}"], padding=True, return_tensors="pt")
        d = tok([f"answer {i}", f"reply {i}", f"wrong {i}", f"bad {i}"], padding=True, return_tensors="pt")
        batches.append(TrainBatch(q["input_ids"], q["attention_mask"], d["input_ids"], d["attention_mask"], 1))
    return torch.utils.data.DataLoader(batches, batch_size=None)
