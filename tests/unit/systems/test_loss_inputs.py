"""Each loss gets the batch fields it declares; a source that cannot feed the loss is a ConfigError before training;
the teacher of EmbeddingMSELoss is frozen and checked; CSRModule trains on distillation and pair losses."""

import re

import pytest
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.losses import (
    CoSENTLoss,
    EmbeddingMSELoss,
    InBatchNegativesLoss,
    KLDistillationLoss,
    MarginMSELoss,
    TripletLoss,
)
from splade_lightning.systems.loss_inputs import check_loss_data, check_loss_source, loss_terms


@pytest.mark.parametrize(("loss", "fields", "negatives", "message"), [
    (CoSENTLoss(), frozenset(), 0, "CoSENTLoss learns from pair labels .* carry none; train on a TextPairs source"),
    (CoSENTLoss(), frozenset({"labels"}), 1, "CoSENTLoss needs exactly 0 hard negative"),
    (TripletLoss(), frozenset(), 2, "TripletLoss needs exactly 1 hard negative.* num_negatives=2"),
    (MarginMSELoss(), frozenset(), 1, "MarginMSELoss distils teacher scores, .* ScoredGroups"),
    (KLDistillationLoss(), frozenset({"teacher_scores"}), 0, "needs at least 1 hard negative"),
])
def test_mismatches_are_named(loss, fields, negatives, message):
    problems = check_loss_data(loss, fields, negatives)
    assert len(problems) == 1
    assert re.search(message, problems[0]), problems


@pytest.mark.parametrize(("loss", "fields", "negatives"), [
    (CoSENTLoss(), frozenset({"labels"}), 0), (TripletLoss(), frozenset(), 1),
    (MarginMSELoss(), frozenset({"teacher_scores"}), 3), (InBatchNegativesLoss(), frozenset(), 0),
    (InBatchNegativesLoss(), frozenset({"labels"}), 0), (EmbeddingMSELoss(), frozenset(), 2),
])
def test_fitting_combinations_pass(loss, fields, negatives):
    assert check_loss_data(loss, fields, negatives) == []


def test_source_check_names_the_source(toy_triplets):
    from splade_lightning.data import TextTriplets

    source = TextTriplets([str(toy_triplets)], negative_columns=["neg"], num_negatives=2)
    with pytest.raises(ConfigError, match=r"--model.init_args.loss does not fit the training data: CoSENTLoss learns "
                                          r"from pair labels.*the batches of the TextTriplets source.*"
                                          r"CoSENTLoss needs exactly 0 hard negative"):
        check_loss_source(CoSENTLoss(), source)
    check_loss_source(TripletLoss(), TextTriplets([str(toy_triplets)], negative_columns=["neg"], num_negatives=1))
    check_loss_source(CoSENTLoss(), None)  # nothing to check without a source


def test_loss_terms_dispatch():
    q, d = torch.rand(3, 6), torch.rand(3, 6)
    labels = torch.tensor([0.1, 0.5, 0.9])
    torch.testing.assert_close(loss_terms(CoSENTLoss(), q, d, 0, labels=labels)["loss_rank"],
                               CoSENTLoss()(q, d, 0, labels))
    with pytest.raises(ConfigError, match=r"CoSENTLoss learns from pair labels \(scores or classes\), but the "
                                          "training batches carry none"):
        loss_terms(CoSENTLoss(), q, d, 0)
    teacher = (torch.rand(3, 6), torch.rand(3, 6))
    torch.testing.assert_close(loss_terms(EmbeddingMSELoss(), q, d, 0, teacher_reps=lambda: teacher)["loss_rank"],
                               EmbeddingMSELoss()(q, d, 0, *teacher))
    with pytest.raises(ConfigError, match="no teacher"):
        loss_terms(EmbeddingMSELoss(), q, d, 0)


def test_splade_module_teacher_is_frozen_and_checked(tiny_bert_dir):
    from splade_lightning.models import SpladeEncoder
    from splade_lightning.systems import SpladeModule
    from splade_lightning.types import TrainBatch

    with pytest.raises(ConfigError, match="EmbeddingMSELoss regresses on a teacher's representations: set "
                                          "--model.init_args.teacher"):
        SpladeModule(SpladeEncoder(tiny_bert_dir), loss=EmbeddingMSELoss())
    with pytest.raises(ConfigError, match="teacher is set, but the loss InBatchNegativesLoss does not use"):
        SpladeModule(SpladeEncoder(tiny_bert_dir), teacher=SpladeEncoder(tiny_bert_dir))
    module = SpladeModule(SpladeEncoder(tiny_bert_dir), loss=EmbeddingMSELoss(), teacher=SpladeEncoder(tiny_bert_dir))
    assert not any(p.requires_grad for p in module.teacher.parameters())
    trainable = {id(p) for group in module.parameter_groups() for p in group["params"]}
    assert not trainable & {id(p) for p in module.teacher.parameters()}
    assert "teacher" not in module.hparams
    ids = torch.tensor([[101, 2000, 102], [101, 2001, 102]])
    batch = TrainBatch(ids, torch.ones_like(ids), ids.flip(0), torch.ones_like(ids))
    teacher_q, teacher_d = module.teacher_reps(batch)
    # the teacher has the student's initial weights: in eval mode the loss is 0; the teacher has no graph
    assert not teacher_q.requires_grad
    module.encoder.eval()
    terms = module.compute_loss(module.encode("query", ids, torch.ones_like(ids)),
                                module.encode("document", ids.flip(0), torch.ones_like(ids)), 0,
                                teacher_reps=lambda: (teacher_q, teacher_d))
    assert terms["loss_rank"].item() == pytest.approx(0.0, abs=1e-10)


def test_csr_module_distils_teacher_scores_and_rejects_embedding_mse(tiny_encoder_dir):
    from splade_lightning.models import CSREncoder, DenseEncoder, SparseAutoEncoder
    from splade_lightning.systems import CSRModule

    def encoder():
        return CSREncoder(DenseEncoder(tiny_encoder_dir), SparseAutoEncoder(32, 64, k=4, k_aux=8))

    with pytest.raises(ConfigError, match="EmbeddingMSELoss needs a teacher model's representations"):
        CSRModule(encoder(), loss=EmbeddingMSELoss())
    module = CSRModule(encoder(), loss=MarginMSELoss(), gamma=0.5)
    torch.manual_seed(0)
    x = torch.randn(6, 32)
    out = module.autoencoder(x)
    query_out, doc_out = module.autoencoder(x[:2]), module.autoencoder(x[2:])
    teacher = torch.tensor([[3.0, 1.0], [0.5, 2.0]])
    terms = module.compute_loss(query_out, doc_out, 1, teacher)
    torch.testing.assert_close(terms["loss_rank"], MarginMSELoss()(query_out.z_k, doc_out.z_k, 1, teacher))
    expected = terms["recon_k"] + terms["recon_4k"] / 8 + 0.1 * terms["recon_aux"] + 0.5 * terms["loss_rank"]
    torch.testing.assert_close(terms["loss"], expected)
    with pytest.raises(ConfigError, match="MarginMSELoss distils teacher scores"):
        module.compute_loss(query_out, doc_out, 1)
    assert out.z_k.shape == (6, 64)
