"""Row-sparse gradients of the vocabulary matrix (``models/vocab_grad.py``): the same training step as the dense path,
with autograd summing sparse contributions and the parameter's ``.grad`` dense again once accumulated."""

import copy

import pytest
import torch

from splade_lightning.models import SpladeEncoder
from splade_lightning.models.sparse_head import _csr
from splade_lightning.models.vocab_grad import weight_grad

TEXTS = ["what is a sparse retriever", "learned sparse retrieval with splade", "the vocabulary has many rows",
         "a short one", "max pooling over positions of the projected logits"]


def encoder(tiny_bert_dir, sparse_vocab_grad, active_rows=None):
    """A tiny BERT SPLADE encoder, dropout off; with ``active_rows``, every other decoder bias is -100 so that only
    those vocabulary rows can be active (a trained SPLADE's sparsity instead of a random head's density)."""
    torch.manual_seed(0)
    enc = SpladeEncoder(tiny_bert_dir, sparse_vocab_grad=sparse_vocab_grad)
    for m in enc.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    if active_rows is not None:
        with torch.no_grad():
            bias = enc.output_decoder().bias
            keep = torch.randperm(bias.numel(), generator=torch.Generator().manual_seed(1))[:active_rows]
            bias.fill_(-100.0)
            bias[keep] = 2.0
    return enc


def batch(tiny_bert_dir, texts=TEXTS):
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(tiny_bert_dir)(texts, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def step_grads(enc, ids, mask, calls=2):
    """Gradients after one backward over ``calls`` forward calls (queries and documents are separate calls)."""
    loss = sum((enc(ids, mask) * (i + 1)).pow(2).sum() for i in range(calls))
    loss.backward()
    return {name: p.grad.clone() for name, p in enc.named_parameters() if p.grad is not None}


def incoming_layouts(param):
    """The layouts autograd hands to ``param``'s accumulation (recorded by a pre-accumulation hook)."""
    seen = []
    param.register_hook(lambda g: seen.append(g.layout))
    return seen


@pytest.mark.parametrize("calls", [1, 2])
def test_the_sparse_path_gives_the_dense_paths_gradients(tiny_bert_dir, calls):
    ids, mask = batch(tiny_bert_dir)
    dense_enc, sparse_enc = encoder(tiny_bert_dir, False, 300), encoder(tiny_bert_dir, True, 300)
    vocab = sparse_enc.mlm.get_input_embeddings().weight
    assert vocab is sparse_enc.output_decoder().weight  # tied: the embedding and the decoder share one matrix
    layouts = incoming_layouts(vocab)
    dense, sparse = step_grads(dense_enc, ids, mask, calls), step_grads(sparse_enc, ids, mask, calls)
    assert layouts == [torch.sparse_coo]  # autograd summed sparse contributions only
    assert vocab.grad.layout == torch.strided  # ... and the optimiser sees a dense gradient
    assert dense.keys() == sparse.keys()
    name = next(n for n, p in sparse_enc.named_parameters() if p is vocab)
    torch.testing.assert_close(sparse[name], dense[name], rtol=1e-5, atol=1e-6)  # the same sums in another order
    assert sparse[name].abs().sum() > 0
    for other in dense.keys() - {name}:  # everything else takes the same path: bitwise equal
        assert torch.equal(sparse[other], dense[other]), other


def test_the_embedding_is_dense_again_after_each_forward(tiny_bert_dir):
    ids, mask = batch(tiny_bert_dir)
    enc = encoder(tiny_bert_dir, True, 300)
    embedding = enc.mlm.get_input_embeddings()
    enc(ids, mask).sum().backward()
    assert embedding.sparse is False
    bad = ids.clone()
    bad[0, 1] = 10**6  # no such token: the lookup fails inside the forward
    with pytest.raises(IndexError):
        enc(bad, mask)
    assert embedding.sparse is False


@pytest.mark.parametrize("fused", [False, True])
def test_adamw_steps_and_gradient_accumulation_match_the_dense_path(tiny_bert_dir, fused):
    ids, mask = batch(tiny_bert_dir)
    params = {}
    for sparse in (False, True):
        enc = encoder(tiny_bert_dir, sparse, 300)
        opt = torch.optim.AdamW(enc.parameters(), lr=1e-3, fused=fused)
        for _ in range(2):
            for half in (slice(0, 3), slice(3, 5)):  # two micro-batches accumulate into one .grad
                enc(ids[half], mask[half]).sum().backward()
            torch.nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        params[sparse] = {n: p.detach().clone() for n, p in enc.named_parameters()}
    for name, want in params[False].items():
        torch.testing.assert_close(params[True][name], want, rtol=1e-5, atol=1e-6)


def test_a_copy_of_the_encoder_gets_its_own_hook(tiny_bert_dir):
    ids, mask = batch(tiny_bert_dir)
    enc = copy.deepcopy(encoder(tiny_bert_dir, True, 300))
    vocab = enc.output_decoder().weight
    layouts = incoming_layouts(vocab)
    enc(ids, mask).sum().backward()
    assert layouts == [torch.sparse_coo] and vocab.grad.layout == torch.strided


def test_dense_path_under_torch_distributed_and_when_switched_off(tiny_bert_dir, monkeypatch):
    ids, mask = batch(tiny_bert_dir)
    enc = encoder(tiny_bert_dir, False, 300)
    layouts = incoming_layouts(enc.output_decoder().weight)
    enc(ids, mask).sum().backward()
    assert layouts == [torch.strided]
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    enc = encoder(tiny_bert_dir, True, 300)
    layouts = incoming_layouts(enc.output_decoder().weight)
    enc(ids, mask).sum().backward()
    assert layouts == [torch.strided]


def test_no_gradient_no_hook_and_the_same_output(tiny_bert_dir):
    ids, mask = batch(tiny_bert_dir)
    with torch.no_grad():
        out_sparse = encoder(tiny_bert_dir, True, 300)(ids, mask)
        out_dense = encoder(tiny_bert_dir, False, 300)(ids, mask)
    assert torch.equal(out_sparse, out_dense)


def test_many_active_rows_give_a_dense_head_gradient_with_the_same_rows():
    g = torch.Generator().manual_seed(0)
    vocab, n, width = 64, 30, 8
    inputs = torch.randn(n, width, generator=g)
    for rows_used, expect in ((8, torch.sparse_coo), (9, torch.strided)):  # at most V / 8 rows: sparse
        v = torch.cat([torch.arange(rows_used), torch.randint(0, rows_used, (42,), generator=g)])
        cols = torch.randint(0, n, (v.numel(),), generator=g)
        values = torch.randn(v.numel(), generator=g)
        dense = weight_grad(_csr, v, cols, values, inputs, vocab, sparse=False)
        got = weight_grad(_csr, v, cols, values, inputs, vocab, sparse=True)
        assert got.layout == expect
        assert torch.equal(got.to_dense(), dense)  # each row's sum is computed the same way: bitwise
