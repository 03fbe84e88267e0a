"""AdamW that takes the vocabulary matrix's row-sparse gradient as it is, without a dense (V, H) gradient tensor.

``models/vocab_grad.py`` builds the gradient of the (V, H) vocabulary matrix (input embedding and MLM decoder) from
its few non-zero rows and, for other optimisers, turns the sum into a dense ``.grad`` once accumulated. AdamW
(Loshchilov & Hutter, arXiv:1711.05101) still updates every row (weight decay and the moments' decay touch rows
without a gradient), but it needs the gradient of one block of rows at a time only: this optimiser keeps the
parameter's ``.grad`` a coalesced sparse COO tensor and runs torch's fused AdamW kernel (``torch._fused_adamw_``,
the update of ``torch.optim.AdamW(fused=True)``, the Hugging Face trainer's default) block by block, each block's
gradient made dense on its own. For a V = 250,002, hidden-384 matrix that is 366 MiB less at every step's peak
(``benchmarks/README.md``). The moments of such a parameter are stored for the rows that ever had a gradient only
(``models/row_moments.py``: rows never touched have zero moments, which the kernel leaves zero), a few thousand rows
of 250,002 instead of two (V, H) tensors from the first step (733 MiB at H = 384). The update is bit for bit the one
``torch.optim.AdamW(fused=True)`` makes with the densified gradient
(``tests/unit/models/test_row_sparse_adamw.py``); the state has that optimiser's keys (``step``, ``exp_avg``,
``exp_avg_sq``), the moments as sparse COO tensors of the parameter's shape until they would take half of the dense
moments' memory (about half of the rows; then dense), so a ``state_dict`` saved here resumes here (and holds the
touched rows only), and one from ``torch.optim.AdamW`` loads here; to hand this optimiser's state to
``torch.optim.AdamW``, make its moments dense first (``.to_dense()``). A parameter that is not contiguous, or a
sparse gradient with more than one sparse dimension, is made dense and stepped in one call instead, with dense
moments.

Dense gradients (every other parameter; the vocabulary matrix where ``vocab_grad`` takes its dense path) go through
the same kernel as in ``torch.optim.AdamW(fused=True)``. A sparse ``.grad`` is coalesced (one row per index, so norms
of it are right); operations without sparse support, such as ``torch.nn.utils.clip_grad_norm_``, need it made dense
first (:meth:`RowSparseAdamW.densify_grads`, which keeps the moments stored by rows; the Lightning modules call it
when gradient clipping is on), or :func:`densify_grads` for any parameters.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import torch
from torch.optim.adam import adam as adam_update

from splade_lightning.models.row_moments import (
    add_rows,
    blockwise_step,
    dense_moments,
    empty_moments,
    is_sparse,
    nonzero_rows,
)

# id(parameter) -> (weak reference to it, weak reference to the RowSparseAdamW that updates it). Not an attribute on
# the tensor: a weak reference there would make ``torch.save(model)`` / pickling fail.
_OWNERS: dict[int, tuple[weakref.ref, weakref.ref]] = {}


def takes_row_sparse_grad(param: torch.Tensor) -> bool:
    """Whether a live :class:`RowSparseAdamW` updates ``param`` from a sparse gradient (``vocab_grad``'s hook then
    coalesces the gradient instead of making it dense)."""
    entry = _OWNERS.get(id(param))
    return entry is not None and entry[0]() is param and entry[1]() is not None


def _purge() -> None:
    """Forget registrations whose parameter or optimiser is gone."""
    for key in [k for k, (p, o) in _OWNERS.items() if p() is None or o() is None]:
        del _OWNERS[key]


def densify_grads(params: Iterable[torch.Tensor]) -> None:
    """Make every sparse ``.grad`` among ``params`` dense, in the parameter's layout (for clipping or any code that
    needs a strided gradient)."""
    for p in params:
        if p.grad is not None and p.grad.layout != torch.strided:
            p.grad = _dense_grad(p, p.grad)


def _dense_grad(p: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """The sparse ``grad`` made dense, in ``p``'s memory layout."""
    return torch.empty_like(p).copy_(grad.to_dense())


def _takes_blockwise(p: torch.Tensor, grad: torch.Tensor) -> bool:
    """Whether ``grad`` is row-sparse (COO, one sparse dimension) and ``p`` contiguous (the kernel walks a block's
    memory): such a gradient is stepped block by block, and ``p``'s moments are created stored by rows."""
    return grad.layout == torch.sparse_coo and grad.sparse_dim() == 1 and p.is_contiguous()


def _new_state(p: torch.Tensor, by_rows: bool) -> dict:
    """A fresh AdamW state of ``p``: ``step`` as the fused kernel reads it, and zero moments, stored by rows
    (``row_moments``) or dense as ``torch.optim.AdamW(fused=True)`` creates them."""
    if by_rows:
        exp_avg, exp_avg_sq = empty_moments(p)
    else:
        exp_avg, exp_avg_sq = (torch.zeros_like(p, memory_format=torch.preserve_format) for _ in range(2))
    return {"step": torch.zeros((), dtype=torch.float32, device=p.device), "exp_avg": exp_avg,
            "exp_avg_sq": exp_avg_sq}


#: devices where torch has a fused AdamW kernel (``torch.utils._foreach_utils._get_fused_kernels_supported_devices``,
#: torch 2.13; ``systems/optim.py``'s ``default_optimizer`` picks this optimiser on them)
FUSED_DEVICES = ("cpu", "cuda")


def _check_fused(p: torch.Tensor) -> None:
    """torch's fused AdamW runs on CPU and CUDA floating-point tensors (``_get_fused_kernels_supported_devices``) and
    walks their memory as one dense block: a strided view (``buf[:, ::2]``) would be updated on the wrong elements
    (torch's own fused AdamW does that silently), so it is refused."""
    if p.device.type not in FUSED_DEVICES or not torch.is_floating_point(p):
        raise ValueError(f"RowSparseAdamW: a parameter of dtype {p.dtype} on {p.device.type}: expected a "
                         "floating-point tensor on the CPU or a CUDA device (torch's fused AdamW); use "
                         "torch.optim.AdamW there")
    if not _is_dense(p):
        raise ValueError(f"RowSparseAdamW: a parameter of shape {tuple(p.shape)} with strides {p.stride()} is a view "
                         "with gaps (e.g. buf[:, ::2]): expected a parameter whose elements fill its memory (any "
                         "dimension order); make it contiguous, or use torch.optim.AdamW(fused=False)")


def _is_dense(p: torch.Tensor) -> bool:
    """Whether ``p``'s elements exactly fill a block of memory (contiguous in some order of its dimensions)."""
    expected = 1
    for dim in sorted(range(p.dim()), key=p.stride):
        if p.shape[dim] != 1 and p.stride(dim) != expected:
            return False
        expected *= p.shape[dim]
    return True


class RowSparseAdamW(torch.optim.AdamW):
    """``torch.optim.AdamW(fused=True)`` that updates parameters with a row-sparse COO ``.grad`` block by block.

    While it holds a parameter (from construction until :meth:`release`, or until it is garbage-collected; the
    Lightning modules release theirs when ``fit`` ends or fails), ``models/vocab_grad.py`` leaves that parameter's
    gradient sparse. Another optimiser stepping the same parameter meanwhile would be handed the sparse gradient.

    Args:
        params: parameters or parameter groups (as for any torch optimiser; groups may set ``lr`` and
            ``weight_decay``).
        lr: learning rate.
        betas: coefficients of the running averages of the gradient and its square.
        eps: term added to the denominator.
        weight_decay: decoupled weight decay.
        block_rows: rows of a sparse-gradient parameter updated at once (the dense gradient and moments of that many
            rows are the only temporaries: 12 MiB each at hidden 384), rounded up to a multiple of 64 elements.

    Raises:
        ValueError: a parameter is not on a device / of a dtype torch's fused AdamW supports (``default_optimizer``
            uses ``torch.optim.AdamW`` there), a group asks for an AdamW option this class does not implement
            (``amsgrad``, ``maximize``, ``capturable``, ``differentiable``), or ``block_rows`` < 1.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, block_rows: int = 8192):
        if block_rows < 1:
            raise ValueError(f"block_rows={block_rows!r}: expected >= 1")
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=True)
        self.block_rows = block_rows

    def add_param_group(self, param_group: dict) -> None:
        """torch's, after checking the group; its parameters are registered as ones this optimiser takes sparse
        gradients for."""
        params = param_group["params"]
        if not isinstance(params, set):  # torch refuses sets (their order varies between runs); let it say so
            param_group["params"] = [params] if isinstance(params, torch.Tensor) else list(params)
            _check_group(param_group)
            for p in param_group["params"]:
                if isinstance(p, torch.Tensor):  # torch refuses the rest
                    _check_fused(p)
        super().add_param_group(param_group)
        _purge()
        for p in self.param_groups[-1]["params"]:
            _OWNERS[id(p)] = (weakref.ref(p), weakref.ref(self))

    def __getstate__(self) -> dict:
        """torch's (``defaults``, ``state``, ``param_groups``) and ``block_rows``, for pickling and ``copy.deepcopy``
        (a copy is not registered: its parameters' gradients come dense, and it steps them correctly)."""
        return {**super().__getstate__(), "block_rows": self.block_rows}

    def densify_grads(self) -> None:
        """Make this optimiser's sparse gradients dense (for gradient clipping: torch's has no sparse kernels). A
        parameter with a row-sparse gradient and no state yet gets its moments stored by rows first, so that they
        stay so: :meth:`step` reads its dense gradient by rows."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and _takes_blockwise(p, p.grad) and not self.state[p]:
                    self.state[p] = _new_state(p, by_rows=True)
            densify_grads(group["params"])

    def release(self) -> None:
        """Stop taking sparse gradients: ``vocab_grad``'s hook makes this optimiser's parameters' gradients dense
        again (for another optimiser or code that needs them dense). A dense gradient is still stepped correctly."""
        for key in [k for k, (p, o) in _OWNERS.items() if o() is self]:
            del _OWNERS[key]

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's; the saved groups are checked first (nothing is loaded when one is refused), and run fused (the
        saved optimiser may have been another AdamW)."""
        for group in state_dict["param_groups"]:
            _check_group({**group, "fused": None, "foreach": None})
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["fused"], group["foreach"] = True, None
            for p in group["params"]:
                state = self.state.get(p)
                if state and "step" in state:  # the fused kernel reads it on the parameter's device, as float32
                    state["step"] = state["step"].to(device=p.device, dtype=torch.float32)

    @torch.no_grad()
    def step(self, closure=None):
        """One AdamW update of every parameter with a gradient; returns the closure's loss (if any)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grad_scale, found_inf = getattr(self, "grad_scale", None), getattr(self, "found_inf", None)  # GradScaler's
        gathered = [self._gather(group) for group in self.param_groups]  # every check before any update
        for group, (dense, sparse) in zip(self.param_groups, gathered):
            options = dict(amsgrad=False, lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1],
                           weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)
            if dense[0]:  # what torch.optim.AdamW(fused=True).step runs
                steps = [self.state[p]["step"] for p in dense[0]]
                adam_update(*dense, [], steps, fused=True, grad_scale=grad_scale, found_inf=found_inf,
                            decoupled_weight_decay=True, **options)
            for p, grad in sparse:
                self._sparse_update(p, grad, options, grad_scale, found_inf)
        return loss

    def _gather(self, group: dict) -> tuple[tuple[list, list, list, list], list]:
        """(params, grads, exp_avgs, exp_avg_sqs) of the parameters updated in one call, and the (parameter, row-sparse
        gradient) pairs updated block by block. A sparse gradient is updated block by block when it is row-sparse (one
        sparse dimension) and the parameter is contiguous (the kernel walks a block's memory); its moments are then
        created sparse (``row_moments``), other parameters' as ``torch.optim.AdamW(fused=True)`` creates them. A dense
        gradient of a parameter whose moments are sparse (:meth:`densify_grads` made it dense for clipping) is read as
        the rows where it is non-zero, which is exact (zero gradients on zero moments leave them zero). Any other
        sparse gradient is made dense, in the parameter's layout, and the moments with it."""
        dense, sparse = ([], [], [], []), []
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = p.grad
            blockwise = _takes_blockwise(p, grad)
            if not self.state[p]:
                self.state[p] = _new_state(p, by_rows=blockwise)
            state = self.state[p]
            if blockwise and all(is_sparse(state[k]) or state[k].is_contiguous()
                                 for k in ("exp_avg", "exp_avg_sq")):
                sparse.append((p, grad.coalesce()))
                continue
            if grad.layout == torch.strided and p.is_contiguous() and grad.is_contiguous() and all(
                    is_sparse(state[k]) for k in ("exp_avg", "exp_avg_sq")):
                sparse.append((p, nonzero_rows(grad, self.block_rows)))
                continue
            dense_moments(state, p)
            if grad.layout != torch.strided:
                grad = _dense_grad(p, grad)
            for out, value in zip(dense, (p, grad, state["exp_avg"], state["exp_avg_sq"])):
                out.append(value)
        return dense, sparse

    def _sparse_update(self, p: torch.Tensor, grad: torch.Tensor, options: dict, grad_scale, found_inf) -> None:
        """AdamW on ``p`` (V, ...) from its coalesced row-sparse COO gradient, ``block_rows`` rows at a time."""
        state = self.state[p]
        if is_sparse(state["exp_avg"]) or is_sparse(state["exp_avg_sq"]):
            add_rows(state, p, grad.indices()[0])
        state["step"].add_(1)
        scale = None if grad_scale is None else grad_scale.to(p.device)
        inf = None if found_inf is None else found_inf.to(p.device)
        blockwise_step(p, grad, state, self.block_rows, options, scale, inf)
        if inf is not None:
            state["step"].sub_(inf)


_UNSUPPORTED = {"amsgrad": True, "maximize": True, "capturable": True, "differentiable": True}


def _check_group(group: dict) -> None:
    """A group may not ask for AdamW options this class does not implement, nor for the for-loop/foreach kernel."""
    bad = [f"{key}={group[key]!r}" for key, value in _UNSUPPORTED.items() if group.get(key) == value]
    if group.get("fused") is False or group.get("foreach"):
        bad.append(f"fused={group.get('fused')!r}, foreach={group.get('foreach')!r}")
    if bad:
        raise ValueError(f"RowSparseAdamW: a parameter group with {', '.join(bad)}: expected plain AdamW "
                         "(amsgrad, maximize, capturable and differentiable off; the fused kernel); use "
                         "torch.optim.AdamW for these")
