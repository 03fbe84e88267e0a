"""configs/splade/multi_gpu.yaml on CPU: bf16 autocast in the SPLADE heads, a tiny fit with ``--trainer.precision
bf16-mixed`` through the real CLI (Lightning uses CPU autocast there; on GPUs the same flag uses CUDA autocast), and
(slow) a 2-process DDP fit that logs the same losses as one process on the same global batch."""

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from splade_lightning.losses import FlopsRegularizer, InBatchNegativesLoss
from splade_lightning.models import SpladeEncoder

REPO = Path(__file__).resolve().parents[2]
MULTI_GPU = REPO / "configs" / "splade" / "multi_gpu.yaml"


def _encoders(model_dir: str) -> tuple[SpladeEncoder, SpladeEncoder]:
    """The memory-efficient head and the plain (B, L, V) head, same weights, no dropout."""
    encoders = []
    for efficient in (True, False):
        encoder = SpladeEncoder(model_dir, efficient_head=efficient, head_chunk_tokens=8)
        for m in encoder.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        encoders.append(encoder)
    return encoders[0], encoders[1]


def _bf16_loss(encoder: SpladeEncoder) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 8000, (4, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reps = encoder(ids, mask)
        loss = InBatchNegativesLoss()(reps[:2], reps[2:]) + 1e-3 * FlopsRegularizer()(reps)
    loss.backward()
    return reps, loss


def test_efficient_head_under_bf16_autocast(tiny_bert_dir):
    efficient, plain = _encoders(tiny_bert_dir)
    assert efficient.efficient_head and not plain.efficient_head
    reps_e, loss_e = _bf16_loss(efficient)
    reps_p, loss_p = _bf16_loss(plain)
    assert reps_e.dtype == torch.bfloat16 and loss_e.dtype == torch.float32
    assert torch.isfinite(loss_e) and (reps_e > 0).sum() > 0
    # both heads round the logits to bf16 (8 bits of mantissa): equal up to bf16 resolution
    assert (reps_e.float() - reps_p.float()).abs().max() <= 2e-2 * reps_p.float().abs().max()
    assert abs(loss_e.item() - loss_p.item()) <= 1e-2 * abs(loss_p.item())
    grads_e = dict(efficient.named_parameters())
    largest = max(p.grad.norm() for p in plain.parameters() if p.grad is not None)
    for name, p in plain.named_parameters():
        if p.grad is None or p.grad.norm() < 1e-4 * largest:  # attention key biases: exactly 0 up to rounding
            continue
        g_e = grads_e[name].grad
        assert g_e is not None and g_e.dtype == torch.float32 and torch.isfinite(g_e).all(), name
        cosine = torch.nn.functional.cosine_similarity(g_e.flatten(), p.grad.flatten(), dim=0)
        assert cosine > 0.99, (name, float(cosine))


@pytest.mark.slow
def test_bf16_mixed_fit_on_cpu(tiny_bert_dir, toy_triplets, toy_beir, tmp_path):
    from splade_lightning.tools.main import main

    main(["fit", "--config", str(REPO / "configs" / "splade" / "quickstart.yaml"),
          f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
          f"--data.init_args.train.init_args.files=[{toy_triplets}]",
          "--data.init_args.train.init_args.negative_columns=[neg]",
          f"--data.init_args.val_sets=[{{path: {toy_beir}, split: test, name: toy}}]",
          "--data.init_args.batch_size=4", "--data.init_args.max_doc_length=24",
          "--data.init_args.max_query_length=16", "--data.init_args.eval_max_doc_length=32",
          "--trainer.precision=bf16-mixed", "--trainer.max_steps=3", "--trainer.max_epochs=-1",
          "--trainer.log_every_n_steps=1", "--trainer.limit_val_batches=0", "--eval_before_fit=false",
          f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    rows = list(csv.DictReader(next(tmp_path.rglob("metrics.csv")).open()))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    flops = [float(r["train/flops_doc"]) for r in rows if r.get("train/flops_doc")]
    assert len(losses) == 3 and all(math.isfinite(x) and x > 0 for x in losses + flops)


def _no_dropout_copy(model_dir: str, out: Path) -> str:
    from transformers import AutoTokenizer, BertForMaskedLM

    BertForMaskedLM.from_pretrained(model_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
                                    ).save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return str(out)


def _fit_losses(model_dir: str, toy_triplets: Path, root: Path, devices: int, batch_size: int) -> list[dict]:
    """Run ``fit --config configs/splade/multi_gpu.yaml`` on CPU in a subprocess (Lightning's DDP launcher re-runs
    the command line) and return the logged training rows."""
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "splade_lightning", "fit", "--config", str(MULTI_GPU),
           "--trainer.accelerator=cpu", f"--trainer.devices={devices}", "--trainer.precision=32-true",
           f"--model.init_args.encoder.init_args.backbone={model_dir}",
           f"--data.init_args.train.init_args.files=[{toy_triplets}]",
           "--data.init_args.train.init_args.negative_columns=[neg]",
           f"--data.init_args.batch_size={batch_size}", "--data.init_args.max_doc_length=24",
           "--data.init_args.max_query_length=16", "--trainer.max_steps=3", "--trainer.max_epochs=-1",
           "--trainer.log_every_n_steps=1", "--trainer.limit_val_batches=0", "--eval_before_fit=false",
           f"--trainer.default_root_dir={root}", f"--trainer.logger.init_args.save_dir={root}"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (next(root.rglob("model.safetensors"))).is_file()  # rank 0 exported the model after fit
    rows = list(csv.DictReader(next(root.rglob("metrics.csv")).open()))
    return [r for r in rows if r.get("train/loss")]


@pytest.mark.slow
def test_two_process_ddp_fit_equals_one_process(tiny_bert_dir, toy_triplets, tmp_path):
    """2 CPU processes x 2 queries (gathered negatives, global FLOPS) log the same losses as 1 process x 4 queries:
    the same global batch (the sampler slices one duplicate-free global batch), the same objective and, after the
    first optimizer steps, the same weights (up to float32 rounding, which Adam amplifies: ~1e-4 relative)."""
    model_dir = _no_dropout_copy(tiny_bert_dir, tmp_path / "model")
    single = _fit_losses(model_dir, toy_triplets, tmp_path / "one", devices=1, batch_size=4)
    ddp = _fit_losses(model_dir, toy_triplets, tmp_path / "two", devices=2, batch_size=2)
    assert len(single) == len(ddp) == 3
    assert float(single[-1]["train/reg_weight_doc"]) > 0  # the FLOPS terms are in the loss after the warm-up
    for one, two in zip(single, ddp):
        for key in ("train/loss", "train/loss_rank", "train/flops_query", "train/flops_doc"):
            assert float(two[key]) == pytest.approx(float(one[key]), rel=1e-3), (one["step"], key)
