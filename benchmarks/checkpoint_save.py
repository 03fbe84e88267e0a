"""Benchmark: the memory and time one checkpoint save costs, Lightning's writer vs ours (``AtomicCheckpointIO``).

    python benchmarks/checkpoint_save.py                  # a BERT-base-sized checkpoint (~1.2 GiB), ~1 min
    python benchmarks/checkpoint_save.py --params 4400000 # SPLADE-tiny-sized

The checkpoint is what a training run saves for a model of ``--params`` fp32 parameters: the weights and AdamW's two
moments (3 x params x 4 bytes). The anchor is Lightning 2.6's default local writer,
``lightning.fabric.utilities.cloud_io._atomic_save`` (what ``TorchCheckpointIO.save_checkpoint`` calls): it
``torch.save``s into an ``io.BytesIO`` and writes the buffer. Ours, ``AtomicCheckpointIO.save_checkpoint``,
``torch.save``s into a temporary file next to the target, fsyncs it and renames it. Each writer runs ``--repeats``
times, each in a fresh process; "peak growth" is the process's peak resident set during the save (``VmHWM`` reset
through ``/proc/self/clear_refs`` just before it) minus the resident set before it. Lightning's writer does not
fsync, and fsspec stages its file in ``$TMPDIR`` before moving it, so the seconds compare different work. The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def worker(writer: str, params: int, path: str) -> dict:
    import torch
    from head_worker import peak_rss_bytes, reset_peak, rss_bytes  # this folder is on sys.path
    from lightning.fabric.utilities.cloud_io import _atomic_save

    from splade_lightning.callbacks import AtomicCheckpointIO

    save = _atomic_save if writer == "lightning" else AtomicCheckpointIO().save_checkpoint
    moments = {"exp_avg": torch.randn(params), "exp_avg_sq": torch.rand(params)}
    checkpoint = {"state_dict": {"weight": torch.randn(params)}, "optimizer_states": [{"state": {0: moments}}]}
    if not reset_peak():  # no /proc/self/clear_refs: the peak during the save cannot be isolated
        return {"peak_growth_bytes": None, "seconds": None, "file_bytes": None}
    before = rss_bytes()
    start = time.perf_counter()
    save(checkpoint, path)
    seconds = time.perf_counter() - start
    return {"peak_growth_bytes": peak_rss_bytes() - before, "seconds": seconds, "file_bytes": os.path.getsize(path)}


def run(writer: str, params: int, path: str) -> dict:
    """One save in a fresh process; raises if it left anything but the checkpoint in its folder."""
    proc = subprocess.run([sys.executable, __file__, "--worker", writer, "--params", str(params), "--path", path],
                          capture_output=True, text=True, check=True)
    left = sorted(os.listdir(os.path.dirname(path)))
    if os.path.exists(path):
        os.remove(path)
    if left not in ([], [os.path.basename(path)]):
        raise RuntimeError(f"the {writer} writer left {left} beside the checkpoint")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=int, default=110_000_000, help="fp32 model parameters (BERT-base: ~110M)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where the checkpoint is written (default: a temporary folder)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.params, args.path)))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = os.path.join(tmp, "step.ckpt")
        runs = {w: [] for w in ("lightning", "ours")}
        for _ in range(args.repeats):  # interleaved, so drift in disk speed hits both writers alike
            for writer in runs:
                runs[writer].append(run(writer, args.params, path))
    if runs["ours"][0]["file_bytes"] is None:
        print(json.dumps({"error": "no /proc/self/clear_refs: the peak during a save cannot be measured here"}))
        return
    size = runs["ours"][0]["file_bytes"] / 2**30
    print(f"| writer ({args.params / 1e6:.0f}M params, checkpoint {size:.2f} GiB) | peak growth GiB | seconds |")
    print("|---|---|---|")
    for writer, name in (("lightning", "Lightning 2.6 `_atomic_save`"), ("ours", "ours (`AtomicCheckpointIO`)")):
        growth = ", ".join(f"{r['peak_growth_bytes'] / 2**30:.2f}" for r in runs[writer])
        secs = ", ".join(f"{r['seconds']:.1f}" for r in runs[writer])
        print(f"| {name} | {growth} | {secs} |")
    mean = {w: statistics.mean(r["peak_growth_bytes"] for r in rs) for w, rs in runs.items()}
    print(json.dumps({"params": args.params, "checkpoint_bytes": runs["ours"][0]["file_bytes"],
                      "peak_growth_bytes": mean,
                      "save_seconds": {w: [r["seconds"] for r in rs] for w, rs in runs.items()},
                      "peak_growth_saved_bytes": mean["lightning"] - mean["ours"]}))


if __name__ == "__main__":
    main()
