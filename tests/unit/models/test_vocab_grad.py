"""Row-sparse gradients of the vocabulary matrix (``models/vocab_grad.py``): the same training step as the dense path,
with autograd summing sparse contributions and the parameter's ``.grad`` dense again once accumulated."""

import copy

import pytest
import torch

from splade_lightning.models import SpladeEncoder, sparse_head, vocab_grad
from splade_lightning.models.pooling import splade_activation
from splade_lightning.models.sparse_head import max_pool_projection, weight_grad
from tests.unit.models.test_sparse_head import case

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


def test_one_hook_per_parameter_and_a_copy_gets_its_own(tiny_bert_dir):
    ids, mask = batch(tiny_bert_dir)
    enc = encoder(tiny_bert_dir, True, 300)
    for _ in range(2):
        enc(ids, mask).sum().backward()
    vocab = enc.output_decoder().weight
    assert sum(h is vocab_grad._densify for h in vocab._post_accumulate_grad_hooks.values()) == 1
    twin = copy.deepcopy(enc)  # a new parameter object: hooks are not copied
    twin_vocab = twin.output_decoder().weight
    twin_vocab.grad = None
    assert not vocab_grad._has_densify_hook(twin_vocab)
    layouts = incoming_layouts(twin_vocab)
    twin(ids, mask).sum().backward()
    assert layouts == [torch.sparse_coo] and twin_vocab.grad.layout == torch.strided


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
    sparse_enc = encoder(tiny_bert_dir, True, 300)
    with torch.no_grad():
        out_sparse = sparse_enc(ids, mask)
        out_dense = encoder(tiny_bert_dir, False, 300)(ids, mask)
    assert torch.equal(out_sparse, out_dense)
    assert not vocab_grad._has_densify_hook(sparse_enc.output_decoder().weight)


def test_untied_embedding_and_decoder_each_get_a_dense_gradient(tiny_bert_dir):
    """Without tied weights the lookup and the head feed two parameters; each needs its own hook, or AdamW would
    meet a sparse gradient."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_bert_dir).to_dict() | {"tie_word_embeddings": False}
    ids, mask = batch(tiny_bert_dir)
    encoders = {}
    for sparse in (False, True):
        torch.manual_seed(0)
        enc = SpladeEncoder(tiny_bert_dir, sparse_vocab_grad=sparse, backbone_config=config).eval()  # no dropout
        if sparse:
            enc.load_state_dict(encoders[False].state_dict())
        with torch.no_grad():
            enc.output_decoder().bias.fill_(-100.0)[:200] = 2.0
        encoders[sparse] = enc
    embedding, decoder = (encoders[True].mlm.get_input_embeddings().weight, encoders[True].output_decoder().weight)
    assert embedding is not decoder
    layouts = [incoming_layouts(embedding), incoming_layouts(decoder)]
    grads = {sparse: step_grads(enc, ids, mask) for sparse, enc in encoders.items()}
    assert layouts == [[torch.sparse_coo], [torch.sparse_coo]]
    torch.optim.AdamW(encoders[True].parameters(), lr=1e-3).step()  # both gradients are dense
    for name, want in grads[False].items():
        torch.testing.assert_close(grads[True][name], want, rtol=1e-5, atol=1e-6)


def test_a_dense_head_gradient_and_a_sparse_lookup_sum_to_the_dense_paths(tiny_bert_dir, monkeypatch):
    """A random head has nearly every term active: its gradient stays dense while the lookup's is sparse."""
    returned = []
    real = sparse_head.weight_grad
    monkeypatch.setattr(sparse_head, "weight_grad", lambda *a, **k: returned.append(real(*a, **k).layout)
                        or real(*a, **k))
    ids, mask = batch(tiny_bert_dir)
    dense, sparse = (step_grads(encoder(tiny_bert_dir, flag), ids, mask) for flag in (False, True))
    assert returned == [torch.strided] * 4  # two calls per step, both sides: the head never went sparse
    for name, want in dense.items():
        torch.testing.assert_close(sparse[name], want, rtol=1e-5, atol=1e-6)


def test_the_head_alone_returns_a_sparse_gradient_made_dense_by_its_hook():
    hidden, weight, bias, mask = case(0, V=400)
    bias[8:] = -100.0  # at most 8 of 400 rows active
    grads = {}
    for sparse in (False, True):
        w = weight.clone().requires_grad_(True)
        layouts = incoming_layouts(w)
        splade_activation(max_pool_projection(hidden, w, bias, mask, sparse_weight_grad=sparse)).sum().backward()
        assert layouts == [torch.sparse_coo if sparse else torch.strided] and w.grad.layout == torch.strided
        grads[sparse] = w.grad
    assert torch.equal(grads[True], grads[False])


def test_computed_weights_take_the_dense_path(tiny_bert_dir):
    """Only leaf tensors accumulate a gradient: weights computed from the parameters (``functional_call``) work as
    before."""
    ids, mask = batch(tiny_bert_dir)
    enc = encoder(tiny_bert_dir, True, 300)
    params = {name: p * 1.0 for name, p in enc.named_parameters()}
    out = torch.func.functional_call(enc, params, (ids, mask))
    out.sum().backward()
    assert torch.equal(out, enc(ids, mask)) and enc.output_decoder().weight.grad.layout == torch.strided


def test_lookups_of_many_tokens_and_frozen_or_foreign_embeddings_stay_dense():
    table = torch.nn.Embedding(10, 4)
    assert vocab_grad.embedding_grads_can_be_sparse(table, 5)
    assert not vocab_grad.embedding_grads_can_be_sparse(table, 6)  # more than V / 2 tokens
    assert not vocab_grad.embedding_grads_can_be_sparse(torch.nn.Linear(4, 10), 1)
    table.weight.requires_grad_(False)
    assert not vocab_grad.embedding_grads_can_be_sparse(table, 1)


def test_many_active_rows_give_a_dense_head_gradient_with_the_same_rows():
    g = torch.Generator().manual_seed(0)
    vocab, n, width = 64, 30, 8
    inputs = torch.randn(n, width, generator=g)
    for rows_used, expect in ((8, torch.sparse_coo), (9, torch.strided)):  # at most V / 8 rows: sparse
        v = torch.cat([torch.arange(rows_used), torch.randint(0, rows_used, (42,), generator=g)])
        cols = torch.randint(0, n, (v.numel(),), generator=g)
        values = torch.randn(v.numel(), generator=g)
        dense = weight_grad(v, cols, values, inputs, vocab, sparse=False)
        got = weight_grad(v, cols, values, inputs, vocab, sparse=True)
        assert got.layout == expect
        assert torch.equal(got.to_dense(), dense)  # each row's sum is computed the same way: bitwise
