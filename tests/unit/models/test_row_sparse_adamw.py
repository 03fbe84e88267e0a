"""RowSparseAdamW (``models/row_sparse_adamw.py``): torch's fused AdamW update, bit for bit, from a sparse gradient
updated block by block; the vocabulary hook keeps the gradient sparse (coalesced) only for it; Lightning's gradient
clipping still works (the gradient is made dense first)."""

import copy
import functools
import gc
import io

import lightning.pytorch as pl
import pytest
import torch

from splade_lightning.data import RetrievalDataModule, TextTriplets
from splade_lightning.models import row_sparse_adamw
from splade_lightning.models.row_sparse_adamw import RowSparseAdamW, takes_row_sparse_grad
from splade_lightning.systems import SpladeModule
from splade_lightning.systems.optim import default_optimizer
from tests.unit.models.test_vocab_grad import batch, encoder


def sparse_grad(seed: int, shape: tuple[int, int], nnz: int = 40) -> torch.Tensor:
    """An uncoalesced COO gradient: ``nnz`` random rows (with repeats) of ``shape``."""
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, shape[0], (nnz,), generator=gen)
    return torch.sparse_coo_tensor(rows[None], torch.randn(nnz, shape[1], generator=gen), shape,
                                   check_invariants=True)


def twins(shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    start = [torch.randn(*shape, generator=gen), torch.randn(shape[1], generator=gen)]
    return [torch.nn.Parameter(t.clone()) for t in start], [torch.nn.Parameter(t.clone()) for t in start]


def groups(params):
    return [{"params": params[:1], "weight_decay": 0.1}, {"params": params[1:], "weight_decay": 0.0, "lr": 3e-3}]


def dense(moment: torch.Tensor) -> torch.Tensor:
    return moment.to_dense() if moment.layout == torch.sparse_coo else moment


@pytest.mark.parametrize("shape,block_rows", [((101, 24), 10), ((101, 7), 1), ((37, 5), 16), ((64, 16), 1000),
                                              ((1000, 24), 64), ((1000, 7), 1), ((999, 5), 1000)])
@pytest.mark.parametrize("coalesced", [True, False])
def test_updates_equal_torch_fused_adamw_on_the_dense_gradient_bit_for_bit(shape, block_rows, coalesced):
    """Small matrices (40 rows a step of up to 101) get dense moments in the first steps, large ones (1,000) keep
    moments for the touched rows only: both update as torch's fused AdamW does, bit for bit."""
    ours, ref = twins(shape)
    opt = RowSparseAdamW(groups(ours), lr=1e-2, block_rows=block_rows)
    ref_opt = torch.optim.AdamW(groups(ref), lr=1e-2, fused=True)
    touched = set()
    for step in range(4):
        grad = sparse_grad(step, shape)
        touched |= set(grad.coalesce().indices()[0].tolist())
        grad = grad.coalesce() if coalesced else grad
        dense_bias = torch.randn(shape[1], generator=torch.Generator().manual_seed(100 + step))
        ours[0].grad, ours[1].grad = grad, dense_bias.clone()
        ref[0].grad, ref[1].grad = grad.coalesce().to_dense(), dense_bias.clone()  # duplicates summed as we do
        opt.step()
        ref_opt.step()
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(dense(opt.state[a][key]), ref_opt.state[b][key])
    moments = opt.state[ours[0]]["exp_avg"]
    if shape[0] >= 999:  # 4 x 40 rows of about 1,000: the touched rows only
        assert moments.layout == torch.sparse_coo and moments.indices()[0].tolist() == sorted(touched)
    else:  # more than half of the rows: dense
        assert moments.layout == torch.strided
    assert not torch.equal(ours[0], twins(shape)[0][0])  # the four steps moved the weights


def test_moments_become_dense_past_half_of_their_dense_memory_a_dense_gradient_is_read_by_rows_bit_for_bit():
    ours, ref = twins((100, 8))
    opt = RowSparseAdamW(groups(ours), lr=1e-2, block_rows=16)
    ref_opt = torch.optim.AdamW(groups(ref), lr=1e-2, fused=True)
    layouts = []
    for step, rows in enumerate([range(0, 30), range(10, 40), range(40, 70), None, range(0, 10)]):
        values = torch.randn(100, 8, generator=torch.Generator().manual_seed(step))
        if rows is None:  # a dense gradient (clipping makes one), non-zero everywhere
            ours[0].grad, ref[0].grad = values.clone(), values.clone()
        else:
            index = torch.tensor(list(rows))
            ours[0].grad = torch.sparse_coo_tensor(index[None], values[index], (100, 8), check_invariants=True)
            ref[0].grad = ours[0].grad.to_dense()
        ours[1].grad, ref[1].grad = values[0].clone(), values[0].clone()
        opt.step()
        ref_opt.step()
        layouts.append(opt.state[ours[0]]["exp_avg"].layout)
        assert torch.equal(ours[0], ref[0]) and torch.equal(dense(opt.state[ours[0]]["exp_avg_sq"]),
                                                            ref_opt.state[ref[0]]["exp_avg_sq"])
    assert layouts == [torch.sparse_coo] * 2 + [torch.strided] * 3  # 40 rows, then 70 of 100
    ours, ref = twins((100, 8))
    opt, ref_opt = RowSparseAdamW(groups(ours), lr=1e-2), torch.optim.AdamW(groups(ref), lr=1e-2, fused=True)
    for step, index in enumerate([[3, 50], [3, 60], [70]]):  # sparse, then dense .grads: still read by rows
        values = torch.ones(len(index), 8) * (step + 1)
        if step == 2:
            values[0, :4] = -0.0  # a row that is zero in half of its values
        grad = torch.sparse_coo_tensor(torch.tensor([index]), values, (100, 8), check_invariants=True)
        ours[0].grad = grad if step == 0 else grad.to_dense()
        ref[0].grad, ours[1].grad, ref[1].grad = grad.to_dense(), torch.ones(8), torch.ones(8)
        opt.step()
        ref_opt.step()
        assert ours[0].grad.layout == (torch.sparse_coo if step == 0 else torch.strided)  # .grad left as it was
    moments = opt.state[ours[0]]["exp_avg"]
    assert torch.equal(ours[0], ref[0]) and torch.equal(moments.to_dense(), ref_opt.state[ref[0]]["exp_avg"])
    assert moments.layout == torch.sparse_coo and moments.indices()[0].tolist() == [3, 50, 60, 70]
    opt.state[ours[0]]["exp_avg"] = moments.to_dense()  # one moment made dense by hand: both become dense
    for o, params in ((opt, ours), (ref_opt, ref)):
        params[0].grad = torch.sparse_coo_tensor(torch.tensor([[5]]), torch.ones(1, 8), (100, 8))
        params[0].grad = params[0].grad if o is opt else params[0].grad.to_dense()
        params[1].grad = torch.ones(8)
        o.step()
    assert torch.equal(ours[0], ref[0]) and opt.state[ours[0]]["exp_avg_sq"].layout == torch.strided


def test_zero_row_parameters_and_copies_of_the_optimiser_step_as_torch_does():
    ours, ref = torch.nn.Parameter(torch.zeros(0, 4)), torch.nn.Parameter(torch.zeros(0, 4))
    opt, ref_opt = RowSparseAdamW([ours]), torch.optim.AdamW([ref], fused=True)
    ours.grad, ref.grad = torch.sparse_coo_tensor(torch.zeros(1, 0, dtype=torch.long), torch.zeros(0, 4), (0, 4)), \
        torch.zeros(0, 4)
    opt.step()
    ref_opt.step()
    assert opt.state[ours]["step"].item() == ref_opt.state[ref]["step"].item() == 1
    ours, ref = twins((500, 8))
    opt = RowSparseAdamW(groups(ours), lr=1e-2, block_rows=64)
    ref_opt = torch.optim.AdamW(groups(ref), lr=1e-2, fused=True)
    for o, params in ((opt, ours), (ref_opt, ref)):
        params[0].grad = sparse_grad(0, (500, 8)).coalesce()
        params[0].grad = params[0].grad if o is opt else params[0].grad.to_dense()
        params[1].grad = torch.ones(8)
        o.step()
    copied = copy.deepcopy({"params": ours, "opt": opt})
    assert copied["opt"].block_rows == 64
    for o, params in ((copied["opt"], copied["params"]), (ref_opt, ref)):
        params[0].grad, params[1].grad = sparse_grad(1, (500, 8)).coalesce().to_dense(), torch.ones(8)
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(copied["params"], ref))


def test_a_checkpoint_holds_the_touched_rows_and_resumes_bit_for_bit():
    ours, ref = twins((2000, 16))
    opt = RowSparseAdamW(groups(ours), lr=1e-2, block_rows=64)
    ref_opt = torch.optim.AdamW(groups(ref), lr=1e-2, fused=True)

    def step(o, params, seed):
        grad = sparse_grad(seed, (2000, 16)).coalesce()
        params[0].grad = grad if isinstance(o, RowSparseAdamW) else grad.to_dense()
        params[1].grad = torch.ones(16) * seed
        o.step()

    for seed in range(2):
        step(opt, ours, seed)
        step(ref_opt, ref, seed)
    saved, dense_saved = io.BytesIO(), io.BytesIO()
    torch.save(opt.state_dict(), saved)
    torch.save(ref_opt.state_dict(), dense_saved)
    assert saved.tell() * 10 < dense_saved.tell()  # 2 x 40 of 2,000 rows
    saved.seek(0)
    resumed = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    resumed_opt = RowSparseAdamW(groups(resumed), lr=1e-2, block_rows=64)
    resumed_opt.load_state_dict(torch.load(saved))
    for seed in range(2, 4):
        for o, params in ((opt, ours), (resumed_opt, resumed), (ref_opt, ref)):
            step(o, params, seed)
    assert all(torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(ours, resumed, ref))
    assert resumed_opt.state[resumed[0]]["exp_avg"].layout == torch.sparse_coo


@pytest.mark.parametrize("rows", [50, 500])
def test_grad_scaler_attributes_are_honoured_as_by_torch(rows):
    """GradScaler hands fused optimisers ``grad_scale`` / ``found_inf``: an inf step changes nothing, not even
    ``step``; otherwise gradients are divided by the scale. Dense moments (50 rows) and sparse ones (500)."""
    ours, ref = twins((rows, 8))
    opt, ref_opt = RowSparseAdamW(groups(ours), lr=1e-2, block_rows=7), torch.optim.AdamW(groups(ref), fused=True,
                                                                                       lr=1e-2)
    for step, inf in enumerate([0.0, 1.0, 0.0]):
        grad = sparse_grad(step, (rows, 8)).coalesce()
        for o, params in ((opt, ours), (ref_opt, ref)):
            o.grad_scale, o.found_inf = torch.tensor(4.0), torch.tensor(inf)
            params[0].grad = grad if o is opt else grad.to_dense()
            params[1].grad = torch.ones(8)
            o.step()
        assert torch.equal(ours[0], ref[0]) and torch.equal(opt.state[ours[0]]["step"], ref_opt.state[ref[0]]["step"])
        assert torch.equal(dense(opt.state[ours[0]]["exp_avg"]), ref_opt.state[ref[0]]["exp_avg"])
    assert opt.state[ours[0]]["step"].item() == 2
    assert opt.state[ours[0]]["exp_avg"].layout == (torch.sparse_coo if rows == 500 else torch.strided)


def test_non_contiguous_parameters_and_other_sparse_layouts_take_the_dense_path_correctly():
    """A column-major parameter (a transposed matrix) cannot be stepped block by block (the kernel walks a block's
    memory), nor a gradient with two sparse dimensions: both are made dense, in the parameter's layout."""
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(4, 40, generator=gen).t()  # (40, 4), strides (1, 40)
    for grad in (torch.sparse_coo_tensor(torch.tensor([[3, 20]]), torch.randn(2, 4, generator=gen), (40, 4),
                                         check_invariants=True),
                 torch.zeros(40, 4).index_fill_(0, torch.tensor([3, 20]), 1.5).to_sparse()):  # sparse_dim 2
        ours, ref = torch.nn.Parameter(start.clone().t().contiguous().t()), torch.nn.Parameter(start.clone())
        assert not ours.is_contiguous() and ours.stride() == ref.stride()
        opt = RowSparseAdamW([ours], lr=1e-2, weight_decay=0.0, block_rows=8)
        ref_opt = torch.optim.AdamW([ref], lr=1e-2, weight_decay=0.0, fused=True)
        ours.grad, ref.grad = grad, torch.empty_like(ref).copy_(grad.to_dense())
        opt.step()
        ref_opt.step()
        assert torch.equal(ours, ref)
        assert (ours != start).any(dim=1).nonzero().flatten().tolist() == [3, 20]  # only the rows with a gradient


def test_options_it_does_not_implement_are_refused_also_from_a_loaded_state_and_nothing_is_half_added():
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    for option in ("maximize", "amsgrad", "capturable", "differentiable"):
        with pytest.raises(ValueError, match=f"{option}=True"):
            RowSparseAdamW([{"params": params[:1], option: True}])
    opt = RowSparseAdamW(params[:1])
    with pytest.raises(ValueError, match="complex64"):
        opt.add_param_group({"params": [params[1], torch.nn.Parameter(torch.randn(2, dtype=torch.complex64))]})
    assert len(opt.param_groups) == 1 and not takes_row_sparse_grad(params[1])  # refused before anything changed
    maximizing = torch.optim.AdamW(params[:1], maximize=True)
    refusing = RowSparseAdamW(params[:1])
    with pytest.raises(ValueError, match="maximize=True"):
        refusing.load_state_dict(maximizing.state_dict())
    assert refusing.param_groups[0]["maximize"] is False and refusing.param_groups[0]["fused"] is True  # unchanged
    with pytest.raises(TypeError, match="set"):  # torch's refusal of a set (its order varies between runs)
        RowSparseAdamW([{"params": set(params)}])
    buffer = torch.randn(6, 8)
    with pytest.raises(ValueError, match=r"strides \(8, 2\) is a view with gaps"):
        RowSparseAdamW([torch.nn.Parameter(buffer[:, ::2])])  # torch's fused AdamW would update other elements
    RowSparseAdamW([torch.nn.Parameter(buffer.t())])  # a transposed matrix fills its memory: accepted
    ours, ref = twins((20, 3))
    loop = torch.optim.AdamW(groups(ref), lr=1e-2)  # the for-loop AdamW (fused=None) of another run, one step in
    ref[0].grad, ref[1].grad = torch.ones(20, 3), torch.ones(3)
    loop.step()
    opt = RowSparseAdamW(groups(ours), lr=1e-2)
    opt.load_state_dict(copy.deepcopy(loop.state_dict()))  # a copy each: loading shares same-device tensors
    with torch.no_grad():
        for a, b in zip(ours, ref):
            a.copy_(b)
    fused = torch.optim.AdamW(groups(ref), lr=1e-2, fused=True)
    fused.load_state_dict(copy.deepcopy(loop.state_dict()))  # torch takes the saved groups' fused=None: set it back
    for group in fused.param_groups:
        group["fused"] = True
    assert all(g["fused"] for g in opt.param_groups)
    for o, params_ in ((opt, ours), (fused, ref)):
        params_[0].grad, params_[1].grad = sparse_grad(7, (20, 3)).coalesce(), torch.ones(3)
        if o is fused:
            params_[0].grad = params_[0].grad.to_dense()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(ours, ref))


def test_unsupported_parameters_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"complex64 on cpu: expected a floating-point tensor on the CPU or a CUDA"):
        RowSparseAdamW([torch.nn.Parameter(torch.randn(3, dtype=torch.complex64))])
    with pytest.raises(ValueError, match="block_rows=0"):
        RowSparseAdamW([torch.nn.Parameter(torch.randn(3))], block_rows=0)


def test_the_vocabulary_gradient_stays_sparse_and_coalesced_only_for_a_live_row_sparse_adamw(tiny_bert_dir):
    ids, mask = batch(tiny_bert_dir)
    enc, ref = encoder(tiny_bert_dir, True, 300), encoder(tiny_bert_dir, True, 300)
    vocab, ref_vocab = enc.mlm.get_input_embeddings().weight, ref.mlm.get_input_embeddings().weight
    opt = RowSparseAdamW(enc.parameters(), lr=1e-3)
    for model in (enc, ref):
        (model(ids, mask) ** 2).sum().backward()
    assert takes_row_sparse_grad(vocab) and not takes_row_sparse_grad(ref_vocab)
    assert vocab.grad.layout == torch.sparse_coo and vocab.grad.is_coalesced()
    assert ref_vocab.grad.layout == torch.strided  # no RowSparseAdamW: dense, as before
    torch.testing.assert_close(vocab.grad.to_dense(), ref_vocab.grad, rtol=1e-5, atol=1e-6)  # sums in another order
    assert vocab.grad.norm().item() == pytest.approx(ref_vocab.grad.norm().item(), rel=1e-6)  # coalesced: norms right
    buffer = io.BytesIO()
    torch.save(enc, buffer)  # the registration is not an attribute of the tensor: the model still pickles
    del opt
    gc.collect()
    enc.zero_grad(set_to_none=True)
    (enc(ids, mask) ** 2).sum().backward()
    assert not takes_row_sparse_grad(vocab) and vocab.grad.layout == torch.strided


def test_training_steps_equal_torch_fused_adamw_on_the_densified_gradient_bit_for_bit(tiny_bert_dir):
    """Three steps of a SPLADE encoder whose vocabulary gradient is sparse (300 active rows): RowSparseAdamW, and
    torch's fused AdamW after the same coalesced gradient is made dense (a second RowSparseAdamW, never stepped, keeps
    the hook coalescing), end with the same weights."""
    ids, mask = batch(tiny_bert_dir)
    weights = []
    for blockwise in (True, False):
        enc = encoder(tiny_bert_dir, True, 300)
        opt = RowSparseAdamW(enc.parameters(), lr=1e-2, block_rows=100)
        ref_opt = torch.optim.AdamW(enc.parameters(), lr=1e-2, fused=True)
        vocab = enc.mlm.get_input_embeddings().weight
        for _ in range(3):
            (enc(ids, mask) ** 2).sum().backward()
            assert vocab.grad.layout == torch.sparse_coo
            if blockwise:
                opt.step()
            else:
                row_sparse_adamw.densify_grads(enc.parameters())
                ref_opt.step()
            enc.zero_grad(set_to_none=True)
        weights.append({k: v.detach().clone() for k, v in enc.state_dict().items()})
    start = encoder(tiny_bert_dir, True, 300).state_dict()
    key = next(k for k in start if k.endswith("word_embeddings.weight"))
    assert not torch.equal(weights[0][key], start[key])
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[1])


def test_default_optimizer_is_row_sparse_adamw_on_the_cpu():
    params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    assert isinstance(default_optimizer([{"params": params}], lr=1e-3), RowSparseAdamW)


class SeesGradients(pl.Callback):
    """Records the vocabulary gradient's layout before clipping, and the total norm of the gradients the optimiser
    stepped with."""

    def __init__(self):
        self.layouts, self.norms = [], []

    def on_train_start(self, trainer, pl_module):
        def norm(optimizer, args, kwargs):
            grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            self.norms.append(torch.stack([g.norm() for g in grads]).norm().item())

        trainer.optimizers[0].register_step_post_hook(norm)  # the closure ran in step

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.layouts.append(pl_module.encoder.mlm.get_input_embeddings().weight.grad.layout)


def clipped_fit(tiny_bert_dir, toy_triplets, optimizer=None):
    torch.manual_seed(0)
    module = SpladeModule(encoder(tiny_bert_dir, True, 300), lr_warmup_steps=0, lr=1e-2, optimizer=optimizer)
    data = RetrievalDataModule(TextTriplets([str(toy_triplets)], negative_columns=["neg"], sampling="first"),
                               tokenizer=tiny_bert_dir, batch_size=2, max_query_length=8, max_doc_length=8)
    seen = SeesGradients()
    trainer = pl.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[seen],
                         num_sanity_val_steps=0, limit_val_batches=0, gradient_clip_val=1e-3)
    trainer.fit(module, datamodule=data)
    return module, seen


class FailsAtStep(pl.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        raise RuntimeError("a failure in the middle of fit")


def test_a_failed_fit_releases_the_optimiser_too(tiny_bert_dir, toy_triplets):
    """Lightning runs no module ``teardown`` after an exception; the module's own callback releases the optimiser."""
    module = SpladeModule(encoder(tiny_bert_dir, True, 300), lr_warmup_steps=0)
    data = RetrievalDataModule(TextTriplets([str(toy_triplets)], negative_columns=["neg"], sampling="first"),
                               tokenizer=tiny_bert_dir, batch_size=2, max_query_length=8, max_doc_length=8)
    trainer = pl.Trainer(accelerator="cpu", max_steps=3, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[FailsAtStep()],
                         num_sanity_val_steps=0, limit_val_batches=0)
    with pytest.raises(RuntimeError, match="a failure in the middle of fit"):
        trainer.fit(module, datamodule=data)
    assert isinstance(trainer.optimizers[0], RowSparseAdamW)  # the trainer still holds it
    assert not takes_row_sparse_grad(module.encoder.mlm.get_input_embeddings().weight)


def test_lightning_gradient_clipping_works_on_the_sparse_gradient(tiny_bert_dir, toy_triplets):
    ours, seen = clipped_fit(tiny_bert_dir, toy_triplets)
    assert isinstance(ours.trainer.optimizers[0], RowSparseAdamW) and seen.layouts == [torch.sparse_coo] * 2
    assert len(seen.norms) == 2 and all(n <= 1e-3 * (1 + 1e-4) for n in seen.norms)  # clipped
    torch_adamw = functools.partial(torch.optim.AdamW, lr=1e-2, fused=True)
    ref, ref_seen = clipped_fit(tiny_bert_dir, toy_triplets, optimizer=torch_adamw)
    assert ref_seen.layouts == [torch.strided] * 2
    assert seen.norms == pytest.approx(ref_seen.norms, rel=1e-5)
    for a, b in zip(ours.parameters(), ref.parameters()):  # gradient sums in another order, amplified by Adam
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    vocab = ours.encoder.mlm.get_input_embeddings().weight
    moments = ours.trainer.optimizers[0].state[vocab]["exp_avg"]  # the clipped (dense) gradient read by rows
    assert moments.layout == torch.sparse_coo and moments.values().shape[0] < vocab.shape[0] / 10
    assert not takes_row_sparse_grad(vocab)  # released when fit ended, though the trainer keeps its optimiser
    ids, mask = batch(tiny_bert_dir)
    ours.encoder.zero_grad(set_to_none=True)
    (ours.encoder(ids, mask) ** 2).sum().backward()
    assert vocab.grad.layout == torch.strided
    torch.optim.Adam(ours.encoder.parameters()).step()  # training on with another optimiser gets dense gradients
