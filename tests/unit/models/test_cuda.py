"""The model layer on a CUDA GPU (skipped without one; on a GPU machine: ``pytest tests/unit/models/test_cuda.py``).

The efficient head records arg-max positions in forward there (``sparse_head.max_pool_projection``); these tests pin
that the GPU path equals the plain (B, L, V) head in float32 and under bf16 autocast (they passed on an H200,
2026-12-04). The row-sparse vocabulary gradients (``models/vocab_grad.py``, 2026-12-04 evening) have not yet run on a
GPU: ``test_row_sparse_vocabulary_gradients_on_gpu`` and ``test_row_sparse_adamw_equals_fused_adamw_on_gpu``
(2026-12-05) are written for the next GPU session.
"""

import pytest
import torch

from splade_lightning.models import SpladeEncoder
from splade_lightning.models.pooling import splade_activation
from splade_lightning.models.sparse_head import max_pool_projection
from tests.unit.models.test_sparse_head import naive
from tests.unit.models.test_vocab_grad import batch
from tests.unit.models.test_vocab_grad import encoder as vocab_grad_encoder

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def leaves(*tensors):
    return [t.detach().clone().cuda().requires_grad_(True) for t in tensors]


@pytest.mark.parametrize("chunk_tokens", [1, 64, 4096])
@pytest.mark.parametrize("shift", [-2.0, 20.0])  # sparse and every entry active
def test_gpu_head_matches_the_plain_head_in_float32(chunk_tokens, shift):
    g = torch.Generator().manual_seed(0)
    hidden, weight = torch.randn(6, 40, 32, generator=g), torch.randn(40000, 32, generator=g) * 0.3
    bias = torch.randn(40000, generator=g) + shift  # > 32,768 columns: two vocabulary blocks
    mask = torch.ones(6, 40, dtype=torch.long)
    mask[2, 10:] = 0
    mask[4] = 0
    upstream = torch.randn(6, 40000, generator=g).cuda()
    outs = []
    for fn in (lambda h, w, b: splade_activation(max_pool_projection(h, w, b, mask.cuda(), chunk_tokens)),
               lambda h, w, b: naive(h, w, b, mask.cuda())):
        h, w, b = leaves(hidden, weight, bias)
        out = fn(h, w, b)
        (out * upstream).sum().backward()
        outs.append((out.detach(), h.grad, w.grad, b.grad))
    for got, want in zip(*outs):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("efficient_head", [True, False])
def test_encoder_under_bf16_autocast_on_gpu(tiny_bert_dir, efficient_head):
    torch.manual_seed(0)
    fast = SpladeEncoder(tiny_bert_dir, head_chunk_tokens=64).cuda()
    plain = SpladeEncoder(tiny_bert_dir, efficient_head=False).cuda()
    plain.load_state_dict(fast.state_dict())
    for module in (fast, plain):
        module.eval()  # no dropout: the same function on both sides
    ids = torch.randint(1000, 5000, (8, 33)).cuda()
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    reps = []
    for module in (fast, plain):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = module(ids, mask)
        out.float().sum().backward()
        reps.append(out.float())
        assert all(p.grad is None or p.grad.dtype == torch.float32 for p in module.parameters())
    torch.testing.assert_close(reps[0], reps[1], rtol=2e-2, atol=2e-2)
    w_fast = fast.mlm.get_output_embeddings().weight.grad
    w_plain = plain.mlm.get_output_embeddings().weight.grad
    assert (w_fast - w_plain).abs().max() <= 2e-2 * w_plain.abs().max()


def test_row_sparse_vocabulary_gradients_on_gpu(tiny_bert_dir):
    """``models/vocab_grad.py`` on CUDA: sparse contributions summed, a dense ``.grad``, the dense path's values."""
    ids, mask = (t.cuda() for t in batch(tiny_bert_dir))
    grads = {}
    for sparse in (False, True):
        enc = vocab_grad_encoder(tiny_bert_dir, sparse, 300).cuda()
        vocab = enc.output_decoder().weight
        layouts = []
        vocab.register_hook(lambda g, seen=layouts: seen.append(g.layout))
        (enc(ids, mask).pow(2).sum() + enc(ids[:3], mask[:3]).sum()).backward()
        assert layouts == [torch.sparse_coo if sparse else torch.strided] and vocab.grad.layout == torch.strided
        torch.optim.AdamW(enc.parameters(), lr=1e-3, fused=True).step()  # the optimiser accepts the gradient
        grads[sparse] = vocab.grad
    torch.testing.assert_close(grads[True], grads[False], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("width,block_rows", [(24, 10), (7, 1)])
def test_row_sparse_adamw_equals_fused_adamw_on_gpu(width, block_rows):
    """``models/row_sparse_adamw.py`` on CUDA: block-wise updates from a sparse gradient equal torch's fused AdamW on
    the densified gradient (written without a GPU; first run pending)."""
    from splade_lightning.models.row_sparse_adamw import RowSparseAdamW

    gen = torch.Generator().manual_seed(0)
    start = torch.randn(301, width, generator=gen)
    ours, ref = torch.nn.Parameter(start.clone().cuda()), torch.nn.Parameter(start.clone().cuda())
    opt, ref_opt = RowSparseAdamW([ours], lr=1e-2, block_rows=block_rows), torch.optim.AdamW([ref], lr=1e-2,
                                                                                             fused=True)
    for _ in range(3):
        rows = torch.randint(0, 301, (50,), generator=gen)
        grad = torch.sparse_coo_tensor(rows[None], torch.randn(50, width, generator=gen), (301, width)).coalesce()
        ours.grad, ref.grad = grad.cuda(), grad.to_dense().cuda()
        opt.step()
        ref_opt.step()
    assert torch.equal(ours, ref)
