"""Secondary test of this study: the paired randomisation test of every loss against InfoNCE on MRR@10 and
Recall@100 (the grid's declared test is nDCG@10 only), with the runner's pooling over seeds, and one Holm correction
over all twelve comparisons (3 points x 2 measures x 2 sets). Reads the kept per-query scores in runs/; run from the
repository root:

    python experiments/2026-12-03_distillation_at_equal_sparsity/secondary_tests.py
"""

import json
from pathlib import Path

from splade_lightning.metrics.seed_stats import baseline_p_value, holm

STUDY = Path(__file__).resolve().parent
LOSSES = ("kl", "marginmse", "marginmse_start_lambda_1")


def seeds(loss: str, dataset: str, measure: str) -> list[dict[str, float]]:
    """One ``{query_id: score}`` per seed of ``loss``."""
    files = sorted((STUDY / "runs" / f"loss-{loss}").glob("seed-*/csv/version_*/per_query.json"))
    return [json.loads(f.read_text())[dataset][measure] for f in files]


def main() -> None:
    raw = {}
    for dataset in ("hotpotqa-dev", "msmarco-trecdl-5k"):
        for measure in ("mrr@10", "recall@100"):
            base = seeds("infonce", dataset, measure)
            for loss in LOSSES:
                raw[dataset, measure, loss] = baseline_p_value(seeds(loss, dataset, measure), base)
    print(f"| set | measure | loss | p | p (Holm over all {len(raw)}) |")
    print("|---|---|---|---|---|")
    for (dataset, measure, loss), adjusted in holm(raw).items():
        print(f"| {dataset} | {measure} | {loss} | {raw[dataset, measure, loss]:.4f} | {adjusted:.4f} |")


if __name__ == "__main__":
    main()
