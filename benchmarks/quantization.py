"""Study nDCG@10 and index size against document quantisation and pruning (``docs/quantization.md``).

Usage::

    .venv/bin/python benchmarks/quantization.py \\
        --data msmarco-trecdl-5k=data/msmarco-trecdl-5k cranfield=/path/to/cranfield \\
        --models splade-tiny quickstart=runs/quickstart/csv/version_1/model

Each model encodes each dataset's corpus and queries once; every scheme of
:mod:`splade_lightning.retrieval.quantize` is applied to the document matrix, the queries are searched exactly
(:func:`~splade_lightning.retrieval.exact.exact_search`, top 1000) and the run is scored with nDCG@10
(:mod:`splade_lightning.metrics.ir`, ir_measures underneath). The float32 index is the anchor of every row: Δ is the
paired difference over the same queries, with a two-sided paired randomisation test (10,000 sign flips).

Queries: with the Anserini integer scale both sides are integers ``round(w * scale)``, as ``export --format
anserini`` writes them and Anserini scores them; the ``anserini-docs`` rows quantise the documents only. Every other
scheme keeps the queries in float32: only the index is compressed. Writes ``<output>.json``, ``<output>.md``
and ``<output>.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / f"{date.today().isoformat()}_quantization_cpu"
MEASURE = "ndcg@10"


@dataclass(frozen=True)
class Scheme:
    """One way of storing the index.

    Attributes:
        name: the row label, e.g. ``"anserini×100"``.
        family: the plot series, e.g. ``"anserini"``.
        docs: (N, V) doc reps -> :class:`~splade_lightning.retrieval.quantize.Quantized`.
        queries: (Q, V) query reps -> the reps searched (None: float32 as encoded).
    """

    name: str
    family: str
    docs: Callable
    queries: Callable | None = None


def build_schemes(scales: Sequence[float], bits: Sequence[int], top_k: Sequence[int]) -> list[Scheme]:
    """float32 first (the anchor), then float16, b-bit, top-k, Anserini (both sides) and Anserini (docs only)."""
    from splade_lightning.retrieval import quantize as qz
    from splade_lightning.retrieval.exact import stack_sparse

    def dequantised(scale: float) -> Callable:
        def apply(reps: torch.Tensor) -> qz.Quantized:
            out = qz.integer_impacts(reps, scale)
            return qz.Quantized(out.reps * (1.0 / scale), out.size)
        return apply

    schemes = [Scheme("float32", "float", lambda d: qz.Quantized(stack_sparse([d]), qz.index_size(d, 32))),
               Scheme("float16", "float", qz.to_float16)]
    schemes += [Scheme(f"{b}-bit", "b-bit", lambda d, b=b: qz.uniform_bits(d, b)) for b in bits]
    schemes += [Scheme(f"top-{k}", "top-k", lambda d, k=k: qz.top_k_per_doc(d, k)) for k in top_k]
    schemes += [Scheme(f"anserini×{s:g}", "anserini", lambda d, s=s: qz.integer_impacts(d, s),
                       lambda q, s=s: qz.integer_impacts(q, s).reps) for s in scales]
    schemes += [Scheme(f"anserini×{s:g} docs only", "anserini-docs", dequantised(s)) for s in scales]
    return schemes


def _named(values: Sequence[str]) -> list[tuple[str, str]]:
    """``label=path`` or ``path`` (label: the basename) pairs."""
    return [tuple(v.split("=", 1)) if "=" in v else (Path(v).name or v, v) for v in values]


def study(model, data, schemes: Sequence[Scheme], batch_size: int, k: int = 1000) -> tuple[list[dict], dict]:
    """Encode ``data`` once with ``model`` and score every scheme; returns the rows and the timings in seconds."""
    from splade_lightning.metrics import compare_per_query, per_query_metrics
    from splade_lightning.retrieval.exact import exact_search, to_run

    query_ids, doc_ids = list(data.queries), list(data.corpus)
    start = time.perf_counter()
    query_reps = model.encode_query([data.queries[q] for q in query_ids], batch_size)
    doc_reps = model.encode_document([data.corpus[d] for d in doc_ids], batch_size)
    timings = {"encode": time.perf_counter() - start}
    start = time.perf_counter()
    rows, anchor = [], None
    for scheme in schemes:
        stored = scheme.docs(doc_reps)
        queries = query_reps if scheme.queries is None else scheme.queries(query_reps)
        scores, indices = exact_search(queries, stored.reps, min(k, len(doc_ids)))
        per_query = per_query_metrics(to_run(query_ids, doc_ids, scores, indices), data.qrels, 1, (MEASURE,))
        anchor = anchor or per_query
        test = compare_per_query(anchor, per_query)[0]
        rows.append({"scheme": scheme.name, "family": scheme.family, "queries_quantised": scheme.queries is not None,
                     MEASURE: test.mean_b, "delta": test.delta, "randomisation_p": test.randomisation_p,
                     "queries": test.queries, "postings": stored.size.postings, "value_bits": stored.size.value_bits,
                     "bytes": stored.size.bytes})
    timings["schemes"] = time.perf_counter() - start
    return rows, timings


def _fmt_delta(delta: float, p: float) -> str:
    """``+0.0012 (0.380)``; a Δ that rounds to zero prints as ``±0.0000``."""
    text = f"{delta:+.4f}"
    text = "±0.0000" if text in ("+0.0000", "-0.0000") else text
    return f"{text} ({'1' if p == 1 else f'{p:.3f}' if p >= 0.001 else '<0.001'})"


def markdown(results: list[dict]) -> str:
    """One table per model: each scheme's nDCG@10, Δ (p), postings and MB on every dataset."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in results):
        block = [r for r in results if r["model"] == model]
        datasets = list(dict.fromkeys(r["dataset"] for r in block))
        lines += [f"**{model}**", "", "| scheme | " + " | ".join(
            f"{d} nDCG@10 | Δ (p) | postings | MB" for d in datasets) + " |",
            "|---|" + "---:|---:|---:|---:|" * len(datasets)]
        for scheme in dict.fromkeys(r["scheme"] for r in block):
            cells = []
            for d in datasets:
                r = next(x for x in block if x["dataset"] == d and x["scheme"] == scheme)
                delta = "—" if scheme == "float32" else _fmt_delta(r["delta"], r["randomisation_p"])
                cells.append(f"{r[MEASURE]:.4f} | {delta} | {r['postings']:,} | {r['bytes'] / 1e6:.2f}")
            lines.append(f"| {scheme} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    """Δ nDCG@10 against float32 vs index MB: one panel per model x dataset, one series per scheme family (the
    docs-only Anserini rows are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in results))
    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    fig, axes = plt.subplots(len(models), len(datasets), figsize=(5.5 * len(datasets), 4.2 * len(models)),
                             squeeze=False)
    markers = {"float": "o", "b-bit": "s", "top-k": "^", "anserini": "D"}
    for (i, model), (j, dataset) in ((m, d) for m in enumerate(models) for d in enumerate(datasets)):
        ax = axes[i][j]
        block = [r for r in results if r["model"] == model and r["dataset"] == dataset]
        ax.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
        for family, marker in markers.items():
            pts = [r for r in block if r["family"] == family]
            ax.plot([r["bytes"] / 1e6 for r in pts], [r["delta"] for r in pts], marker=marker,
                    linestyle="" if family == "float" else "-", label=family)
            for r in pts:
                ax.annotate(r["scheme"].replace("anserini", ""), (r["bytes"] / 1e6, r["delta"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
        ax.set_xlim(left=0)
        ax.set_title(f"{model} on {dataset} (float32 nDCG@10 {block[0][MEASURE]:.4f})", fontsize=9)
        ax.set_xlabel("index size, MB (postings x (32-bit doc id + value bits))", fontsize=8)
        ax.set_ylabel("Δ nDCG@10 vs float32", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine() -> dict:
    """Where it ran: CPU model, cores, torch and the date."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    cpu = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "")
    return {"cpu": cpu or platform.processor(), "nproc": len(os.sched_getaffinity(0)),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "date": date.today().isoformat()}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=["msmarco-trecdl-5k=data/msmarco-trecdl-5k"],
                        help="BEIR directories (qrels/test.tsv), each 'label=path' or 'path'")
    parser.add_argument("--models", nargs="+",
                        default=["splade-tiny", "quickstart=runs/quickstart/csv/version_1/model"],
                        help="models for splade_lightning.load, each 'label=name_or_path' or 'name_or_path'")
    parser.add_argument("--scales", nargs="+", type=float, default=[10, 30, 100, 300, 1000],
                        help="Anserini integer scales (export --quantization)")
    parser.add_argument("--bits", nargs="+", type=int, default=[8, 6, 4], help="uniform b-bit codes")
    parser.add_argument("--top_k", nargs="+", type=int, default=[64, 128, 256], help="per-document top-k pruning")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="writes OUTPUT.json, .md and .png")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    import splade_lightning
    from splade_lightning.formats.beir import load_beir

    args = parse_args(argv)
    schemes = build_schemes(args.scales, args.bits, args.top_k)
    datasets = [(label, load_beir(path, "test", label)) for label, path in _named(args.data)]
    results, timings, start = [], {}, time.perf_counter()
    for model_label, name in _named(args.models):
        model = splade_lightning.load(name)
        for data_label, data in datasets:
            rows, timings[f"{model_label}/{data_label}"] = study(model, data, schemes, args.batch_size)
            results += [{"model": model_label, "dataset": data_label, **row} for row in rows]
            print(f"{model_label} / {data_label}: {timings[f'{model_label}/{data_label}']}", flush=True)
    report = {"command": vars(args) | {"output": str(args.output)}, "machine": machine(), "results": results,
              "timings_s": timings | {"total": time.perf_counter() - start},
              "docs": {label: len(data.corpus) for label, data in datasets},
              "queries": {label: len(data.queries) for label, data in datasets}}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.output}.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    Path(f"{args.output}.md").write_text(markdown(results), encoding="utf-8")
    plot(results, Path(f"{args.output}.png"))
    print(markdown(results))
    return report


if __name__ == "__main__":
    main()
