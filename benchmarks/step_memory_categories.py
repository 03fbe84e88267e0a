"""Diagnostic: what the tensors of one training step hold at their peak, by kind, beside the step's RSS growth.

    python benchmarks/step_memory_categories.py                 # V = 250,002, 6 x 384, B=8: ours and ST, first step
    python benchmarks/step_memory_categories.py --impl ours --steady

The step is ``splade_head.py``'s (``head_worker.build_step``: same model, tokens and optimiser), each side in its
own process. torch's profiler records every CPU tensor allocation and free during the step
(``profile_memory=True``), and its memory profile (``torch.profiler._memory_profiler``, the one
``export_memory_timeline`` draws; a private torch API, as of torch 2.13) assigns each tensor a kind: optimiser
state, gradient, activation, autograd detail, input, temporary. The highest sum of the tensors created during the
step, less those freed in it (parameters excluded), is the step's **tensor peak**: the growth any allocator would
have to hold. The **RSS growth** (``VmHWM`` reset before the step, minus the RSS before it) is what the process
really took, the number ``splade_head.py`` compares; the difference is the allocator's (glibc keeps freed heap
memory and splits it) and other native memory (oneDNN's kernels, thread stacks). A tensor from before the step that
the step frees (the previous step's gradients, inputs) counts negatively ("freed from before the step"). The
profiler costs time and some memory of its own, so RSS here is not the benchmark's figure. The last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from head_worker import build_step, peak_rss_bytes, reset_peak, rss_bytes  # this folder is on sys.path


def child(*argv: str) -> dict:
    """This script's worker in a fresh process; its last stdout line (JSON)."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(impl: str, model_dir: str, batch: int, steady: bool) -> dict:
    """One profiled step of ``impl``; the tensor peak by kind and the RSS growth (bytes)."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action

    step = build_step(impl, model_dir, batch, 32, 128)
    if steady:
        step()
    before, _ = rss_bytes(), reset_peak()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        step()
    growth = peak_rss_bytes() - before
    memory = prof._memory_profile()
    live: dict = {}  # tensor created in the step -> (its kind, as of its latest version; bytes)
    before_step = set()  # tensors alive when the step began: their frees count against the step's growth
    total, peak, at_peak = 0, 0, {}

    def counted(entry):  # bytes of a live tensor that count (parameters do not)
        return 0 if entry is None or entry[0] == "PARAMETER" else entry[1]

    for _, action, (key, version), size in memory.timeline:
        kind = memory._categories.get(key, version)
        name = kind.name if kind else "UNKNOWN"
        if action == Action.PREEXISTING:
            before_step.add(key)
        elif action == Action.CREATE or (action == Action.INCREMENT_VERSION and key in live):
            total += counted((name, size)) - counted(live.get(key))
            live[key] = (name, size)
        elif action == Action.DESTROY:
            total -= size if key in before_step else counted(live.get(key))
            live.pop(key, None)
        if total > peak:
            peak, at_peak = total, {"FREED_FROM_BEFORE_THE_STEP": total}
            for entry in live.values():
                at_peak[entry[0]] = at_peak.get(entry[0], 0) + counted(entry)
                at_peak["FREED_FROM_BEFORE_THE_STEP"] -= counted(entry)
            at_peak = {k: v for k, v in at_peak.items() if v}
    return {"impl": impl, "steady": steady, "tensor_peak_bytes": peak, "by_kind_bytes": at_peak,
            "rss_growth_bytes": growth, "torch_threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", choices=["ours", "st", "both"], default="both")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steady", action="store_true", help="profile the second step (state already allocated)")
    parser.add_argument("--model-dir", default=None, help="an MLM directory (default: V = 250,002, 6 x 384)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model_dir is not None and not (Path(args.model_dir) / "config.json").is_file():
        parser.error(f"--model-dir {args.model_dir}: expected a masked-LM directory with a config.json")
    if args.worker:
        print(json.dumps(measure(args.impl, args.model_dir, args.batch, args.steady)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            from splade_head import shaped_mlm

            model_dir = shaped_mlm(Path(tmp) / "v250k_6x384", 6, 384, 250_002, target_doc_active_dims=150)
        results = {}
        for impl in (("ours", "st") if args.impl == "both" else (args.impl,)):
            results[impl] = child("--worker", "--impl", impl, "--batch", str(args.batch), "--model-dir", model_dir,
                                  *(["--steady"] if args.steady else []))
    mib = 2**20
    for impl, res in results.items():
        kinds = ", ".join(f"{k.lower()} {v / mib:.0f}" for k, v in sorted(res["by_kind_bytes"].items(),
                                                                        key=lambda kv: -kv[1]))
        print(f"{impl}: tensor peak {res['tensor_peak_bytes'] / mib:.0f} MiB ({kinds}); "
              f"RSS growth {res['rss_growth_bytes'] / mib:.0f} MiB")
    summary = {"results": results}
    if len(results) == 2:
        summary["tensor_peak_ratio"] = results["ours"]["tensor_peak_bytes"] / results["st"]["tensor_peak_bytes"]
        summary["rss_growth_ratio"] = results["ours"]["rss_growth_bytes"] / results["st"]["rss_growth_bytes"]
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
