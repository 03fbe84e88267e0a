"""Zero-shot SPLADE-tiny through `validate` on the bundled msmarco-trecdl-5k: graded nDCG@10 ≈ 0.810.

The reference 0.8096 was measured with a separate pipeline (sentence-transformers 6.2 SparseEncoder +
ir-measures on the same files). A pipeline that scores far below it is broken.
"""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_zero_shot_splade_tiny_on_msmarco_trecdl(monkeypatch, tmp_path):
    from splade_lightning.tools.lightning_cli import SpladeCLI

    monkeypatch.chdir(REPO)
    cli = SpladeCLI(args=[
        "validate", "--config", "configs/splade/quickstart.yaml",
        "--data.init_args.val_sets=[{path: data/msmarco-trecdl-5k, split: test, min_relevance: 2}]",
        f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}",
    ])
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    assert metrics["val/msmarco-trecdl-5k/ndcg@10"] == pytest.approx(0.8096, abs=0.005)
    assert metrics["val/msmarco-trecdl-5k/mrr@10"] == pytest.approx(0.9050, abs=0.01)
    assert metrics["val/msmarco-trecdl-5k/recall@100"] == pytest.approx(0.8497, abs=0.01)
    assert 100 < metrics["val/msmarco-trecdl-5k/active_dims_doc"] < 160
