"""MSE between the student's and a teacher's sparse representations of the same texts: tensors in, scalar out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from splade_lightning.losses.ranking import at_least_fp32


class EmbeddingMSELoss(nn.Module):
    """Embedding distillation (Reimers & Gurevych, "Making Monolingual Sentence Embeddings Multilingual using
    Knowledge Distillation", arXiv:2004.09813): the student's representation of every text regresses on the teacher's
    representation of it.

    ``loss = mean_columns MSE(student_column, teacher_column)``, each column's MSE averaged over its (B, V) entries;
    the columns are the queries, the positives and each negative column (``B`` rows each). Equals
    sentence-transformers 6.2 ``SparseMSELoss`` (``sparse_encoder/losses/sparse_mse.py``, computing
    ``sentence_transformer/losses/embed_distill.py`` with ``distance_metric="mse"``, no projection) given
    per-column teacher embeddings (labels of shape (B, columns, V)), values and gradients (tested).

    sentence-transformers expects the teacher embeddings precomputed as labels; here the system holds the teacher
    (``SpladeModule(teacher=...)``, frozen) and encodes the batch's texts with it, so ``uses_teacher_reps = True``:
    the system calls ``loss(query_reps, doc_reps, num_negatives, teacher_query_reps, teacher_doc_reps)``. The teacher
    side is detached; the loss is computed in float32 at least.
    """

    uses_teacher_reps = True

    def forward(self, query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int,
                teacher_query_reps: torch.Tensor, teacher_doc_reps: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            query_reps: (B, V) student query reps.
            doc_reps: (B * (1 + n), V) student document reps, column-major (rows 0..B-1 the positives).
            num_negatives: hard negatives per query, n >= 0.
            teacher_query_reps: (B, V) the teacher's reps of the same queries.
            teacher_doc_reps: (B * (1 + n), V) the teacher's reps of the same documents.

        Returns:
            Scalar loss.

        Raises:
            ValueError: student and teacher shapes differ, or do not match B and n.
        """
        batch = query_reps.shape[0]
        problems = []
        if tuple(teacher_query_reps.shape) != tuple(query_reps.shape):
            problems.append(f"teacher_query_reps {tuple(teacher_query_reps.shape)} vs query_reps "
                            f"{tuple(query_reps.shape)}")
        if tuple(teacher_doc_reps.shape) != tuple(doc_reps.shape) or doc_reps.shape[0] != batch * (1 + num_negatives):
            problems.append(f"teacher_doc_reps {tuple(teacher_doc_reps.shape)} vs doc_reps {tuple(doc_reps.shape)} "
                            f"(expected B*(1+n) = {batch}*(1+{num_negatives}) rows)")
        if problems:
            raise ValueError("EmbeddingMSELoss: expected student and teacher reps of the same shape: "
                             + "; ".join(problems) + " (the teacher must have the student's vocabulary)")
        student = [at_least_fp32(query_reps), *at_least_fp32(doc_reps).split(batch)]
        teacher = [teacher_query_reps.detach(), *teacher_doc_reps.detach().split(batch)]
        losses = [F.mse_loss(s, t.to(s.dtype)) for s, t in zip(student, teacher)]
        return torch.stack(losses).mean()
