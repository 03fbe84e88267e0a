"""The CUDA side of ``benchmarks/head_worker.py``: a timed training step and a largest-batch search on a GPU.

Memory is the CUDA caching allocator's peak (``torch.cuda.max_memory_allocated``: tensors; the CUDA context and
cached-but-free blocks are not counted); timing is synchronised.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def train_on_gpu(step, args) -> dict:
    """CUDA: time with synchronisation; memory is the allocator's peak (tensors; the CUDA context not counted)."""
    import torch

    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    first_loss = step()  # optimiser state allocated here, the same on both sides
    for _ in range(args.warmup):  # kernels' first-use costs (cuBLAS handles, autotuning) out of the timing
        step()
    torch.cuda.synchronize()
    first_peak, steady_before = torch.cuda.max_memory_allocated(), torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak = max(first_peak, torch.cuda.max_memory_allocated())
    return {"examples_per_s": args.batch * args.steps / elapsed if args.steps else None,
            "s_per_step": elapsed / max(1, args.steps) if args.steps else None,
            "peak_memory_bytes": peak - before, "peak_device_bytes": peak,
            "steady_peak_memory_bytes": torch.cuda.max_memory_allocated() - steady_before if args.steps else None,
            "first_loss": first_loss, "device": torch.cuda.get_device_name()}


def largest_batch_on_gpu(args, make_step: Callable[[int], Callable[[], float]]) -> dict:
    """The largest of ``--batches`` (ascending) whose step (model, optimiser state and all; ``make_step(batch)``
    builds it) peaks within ``--budget-gib`` of allocated device memory, in this one process (each try frees the
    previous one's tensors)."""
    import gc

    import torch

    best, tried = 0, []
    for batch in (int(b) for b in args.batches.split(",")):
        torch.cuda.reset_peak_memory_stats()
        step = None
        try:
            step = make_step(batch)
            step()
            torch.cuda.synchronize()
            peak, error = torch.cuda.max_memory_allocated(), None
        except torch.OutOfMemoryError as e:
            peak, error = torch.cuda.max_memory_allocated(), str(e).splitlines()[0]
        step = None  # noqa: F841 (the model, its optimiser and the batch go before the next try)
        gc.collect()
        torch.cuda.empty_cache()
        tried.append((batch, peak, error))
        if error or peak > args.budget_gib * 2**30:
            break
        best = batch
    return {"largest_batch": best, "tried": tried}
