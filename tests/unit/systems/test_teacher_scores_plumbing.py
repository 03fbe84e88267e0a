"""Teacher scores travel from TrainExample through the collator into losses that ask for them."""

import pytest
import torch
from torch import nn

from splade_lightning.data.collate import TrainCollator
from splade_lightning.data.datasets import TrainExample
from splade_lightning.errors import ConfigError
from splade_lightning.models import SpladeEncoder
from splade_lightning.systems import SpladeModule


class RecordingDistillLoss(nn.Module):
    """Returns named parts and records the teacher scores it was given."""

    uses_teacher_scores = True

    def __init__(self):
        super().__init__()
        self.seen = None

    def forward(self, query_reps, doc_reps, num_negatives, teacher_scores):
        self.seen = teacher_scores
        student = (query_reps.unsqueeze(1) * doc_reps.view(1 + num_negatives, -1, doc_reps.shape[1]).transpose(0, 1))
        mse = (student.sum(-1) - teacher_scores).pow(2).mean()
        return {"loss": 2 * mse, "mse": mse}


@pytest.fixture()
def collator(tokenizer_dir):
    from transformers import AutoTokenizer

    return TrainCollator(AutoTokenizer.from_pretrained(tokenizer_dir), 8, 16)


def test_collator_stacks_scores_column_by_column(collator):
    batch = collator([TrainExample("q1", ["p1", "n1"], [3.0, 1.0]), TrainExample("q2", ["p2", "n2"], [2.0, 0.5])])
    assert torch.equal(batch.teacher_scores, torch.tensor([[3.0, 1.0], [2.0, 0.5]]))
    assert collator([TrainExample("q1", ["p1"]), TrainExample("q2", ["p2"])]).teacher_scores is None
    with pytest.raises(ValueError, match="teacher scores"):
        collator([TrainExample("q1", ["p1", "n1"], [3.0, 1.0]), TrainExample("q2", ["p2", "n2"])])
    with pytest.raises(ValueError, match="teacher scores"):
        collator([TrainExample("q1", ["p1", "n1"], [3.0])])


def test_distillation_loss_gets_scores_and_logs_parts(tiny_bert_dir):
    loss = RecordingDistillLoss()
    module = SpladeModule(SpladeEncoder(tiny_bert_dir), loss=loss)
    queries, docs = torch.rand(2, 5), torch.rand(4, 5)
    scores = torch.tensor([[3.0, 1.0], [2.0, 0.5]])
    terms = module.compute_loss(queries, docs, 1, scores)
    assert loss.seen is scores
    assert set(terms) >= {"loss", "loss_rank", "loss_mse"}
    torch.testing.assert_close(terms["loss_rank"], 2 * terms["loss_mse"])
    with pytest.raises(ConfigError, match="RecordingDistillLoss distils teacher scores"):
        module.compute_loss(queries, docs, 1, None)


def test_plain_losses_ignore_scores(tiny_bert_dir):
    module = SpladeModule(SpladeEncoder(tiny_bert_dir))
    queries, docs = torch.rand(2, 5), torch.rand(4, 5)
    with_scores = module.compute_loss(queries, docs, 1, torch.ones(2, 2))
    torch.testing.assert_close(with_scores["loss"], module.compute_loss(queries, docs, 1)["loss"])
    assert "loss_mse" not in with_scores
