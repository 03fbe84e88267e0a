"""Document encoding throughput: sentence-transformers, our torch encoder, and our ONNX export (fp32, int8).

One run, the same texts and the same number of threads for every implementation; each implementation encodes in a
fresh subprocess after a one-batch warm-up. The anchor is sentence-transformers 6.2 ``SparseEncoder.encode_document``
in its default configuration (batch 32, sparse tensor output). Every side truncates to the anchor's
``max_seq_length``. Reports documents/s, ratios to the anchor, the growth of the peak resident set while encoding
(after the warm-up), and the largest |Δ| of each side's vectors against ours. With ``--ndcg`` it also evaluates
nDCG@10 of the torch, ONNX fp32 and ONNX int8 models on the given BEIR sets.

    .venv/bin/python benchmarks/onnx_encode.py                      # 1,000 msmarco-trecdl-5k passages
    .venv/bin/python benchmarks/onnx_encode.py --ndcg data/msmarco-trecdl-5k ../shared/data/cranfield
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "data" / "msmarco-trecdl-5k" / "corpus.jsonl"
IMPLS = ("st", "ours", "onnx-fp32", "onnx-int8")


def load_texts(corpus: Path, n: int) -> list[str]:
    """The first ``n`` documents (title and text joined as the evaluation does)."""
    from splade_lightning.formats.beir import beir_text

    rows = [json.loads(line) for line in corpus.read_text().split("\n") if line][:n]
    return [beir_text(r.get("text", ""), r.get("title", "")) for r in rows]


def build_encoder(impl: str, model: str, onnx_dir: Path, max_length: int):
    """(texts -> dense (N, V) tensor) for one implementation."""
    if impl == "st":
        from sentence_transformers import SparseEncoder

        from splade_lightning.hub import resolve_model_path

        st = SparseEncoder(resolve_model_path(model), device="cpu")
        st.max_seq_length = max_length
        return lambda texts: st.encode_document(texts).to_dense()  # defaults: batch 32, sparse output
    import splade_lightning

    source = {"ours": model, "onnx-fp32": onnx_dir, "onnx-int8": onnx_dir / "model_int8.onnx"}[impl]
    ours = splade_lightning.load(source)
    ours.max_doc_length = max_length
    return lambda texts: ours.encode_document(texts, batch_size=32).to_dense()


def worker(args) -> dict:
    import torch

    texts = load_texts(Path(args.corpus), args.docs)
    encode = build_encoder(args.impl, args.model, Path(args.onnx_dir), args.max_length)
    encode(texts[:32])  # warm-up
    before = peak_rss_bytes()
    start = time.perf_counter()
    out = encode(texts)
    elapsed = time.perf_counter() - start
    growth = peak_rss_bytes() - before
    torch.save(out[:200].clone(), args.out)
    return {"docs_per_s": len(texts) / elapsed, "seconds": elapsed, "threads": torch.get_num_threads(),
            "peak_rss_growth_gb": growth / 2**30}


def peak_rss_bytes() -> int:
    """The process's peak resident set so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_worker(impl: str, args, tmp: Path) -> dict:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, __file__, "--worker", impl, "--model", args.model, "--docs", str(args.docs), "--corpus",
           str(args.corpus), "--onnx_dir", str(tmp / "onnx"), "--max_length", str(args.max_length), "--out",
           str(tmp / f"{impl}.pt")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ndcg(models: dict[str, str], data_dirs: list[str]) -> dict[str, dict[str, float]]:
    """nDCG@10 of each model on each BEIR set (test split), through ``splade-lightning evaluate``."""
    from splade_lightning.tools.main import main as cli

    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            for data in data_dirs:
                result = Path(tmp) / f"{name}-{Path(data).name}.json"
                cli(["evaluate", "--model", model, "--data", data, "--measures", "ndcg@10", "--device", "cpu",
                     "--output", str(result), "--no_progress"])
                metrics = json.loads(result.read_text())
                out.setdefault(name, {})[Path(data).name] = metrics["ndcg@10"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="splade-tiny")
    parser.add_argument("--corpus", default=str(CORPUS), help="a BEIR corpus.jsonl")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--ndcg", nargs="*", default=[], help="BEIR directories to evaluate nDCG@10 on")
    args = parser.parse_args()
    import torch
    from sentence_transformers import SparseEncoder

    from splade_lightning.hub import resolve_model_path
    from splade_lightning.tools.main import main as cli

    args.max_length = SparseEncoder(resolve_model_path(args.model), device="cpu").max_seq_length
    print(f"model {args.model}, {args.docs} documents of {args.corpus}, max_length {args.max_length}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}", flush=True)
    report: dict = {"model": args.model, "docs": args.docs, "corpus": args.corpus, "max_length": args.max_length}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        start = time.perf_counter()
        cli(["export", "--model", args.model, "--format", "onnx", "--quantize", "int8", "--output", str(tmp / "onnx")])
        report["export_seconds"] = time.perf_counter() - start
        for impl in IMPLS:
            report[impl] = run_worker(impl, args, tmp)
            print(f"  {impl:10s} {report[impl]}", flush=True)
        reference = torch.load(tmp / "ours.pt")
        for impl in IMPLS:
            if "error" not in report[impl]:
                report[impl]["max_abs_diff_vs_ours"] = float((torch.load(tmp / f"{impl}.pt") - reference).abs().max())
                report[impl]["ratio_vs_st"] = report[impl]["docs_per_s"] / report["st"]["docs_per_s"]
        if args.ndcg:
            report["ndcg@10"] = ndcg({"ours": args.model, "onnx-fp32": str(tmp / "onnx"),
                                      "onnx-int8": str(tmp / "onnx" / "model_int8.onnx")}, args.ndcg)
    print(json.dumps(report, indent=2))


def worker_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("impl", choices=IMPLS)
    for flag in ("--model", "--corpus", "--onnx_dir", "--out"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--docs", type=int, required=True)
    parser.add_argument("--max_length", type=int, required=True)
    print(json.dumps(worker(parser.parse_args(argv))))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        main()
