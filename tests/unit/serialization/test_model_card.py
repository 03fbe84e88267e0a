"""Model cards (``serialization/model_card.py``): the YAML front matter parses with the Hub's keys, the card shows a
report's metrics and sparsity, and nothing unknown is written."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from splade_lightning.serialization.model_card import (
    CONTEXT_FILE,
    CardContext,
    CardFacts,
    front_matter,
    hub_id,
)
from splade_lightning.serialization.model_card_text import objective, render_card, write_card

REPORT = {
    "zero-shot": {"scifact": {"ndcg@10": 0.1234, "mrr@10": 0.1, "recall@100": 0.5, "active_dims_query": 20.5,
                              "active_dims_doc": 180.25, "flops": 3.5}},
    "fine-tuned": {"scifact": {"ndcg@10": 0.6543, "mrr@10": 0.61, "recall@100": 0.9, "active_dims_query": 31.25,
                               "active_dims_doc": 211.75, "flops": 4.5},
                   "nfcorpus": {"ndcg@10": 0.3012, "mrr@10": 0.4, "recall@100": 0.3, "active_dims_query": 12.0,
                                "active_dims_doc": 95.5, "flops": 1.25},
                   "mean": {"ndcg@10": 0.47775}},
}
CONFIG = """\
model:
  class_path: splade_lightning.systems.SpladeModule
  init_args:
    encoder:
      class_path: splade_lightning.models.SpladeEncoder
      init_args: {backbone: naver/splade-cocondenser-ensembledistil, pooling: max}
    loss:
      class_path: splade_lightning.losses.InBatchNegativesLoss
      init_args: {scale: 1.0}
    query_regularizer: {class_path: splade_lightning.losses.FlopsRegularizer}
    query_reg_weight: 0.0005
    doc_reg_weight: 0.0003
    lr: 0.0001
trainer:
  callbacks:
  - class_path: splade_lightning.callbacks.RegularizerWarmup
    init_args: {warmup_fraction: 0.33}
"""
SPLADE = {"architecture": "splade", "pooling": "max", "activation": "relu"}


def facts(context: CardContext | None = None, **kwargs) -> CardFacts:
    settings = {"encoder": SPLADE, "dimensions": 30522, "max_query_length": 48, "max_doc_length": 256,
                "backbone": "naver/splade-cocondenser-ensembledistil", "version": "9.9", **kwargs}
    return CardFacts(context=context or CardContext(), **settings)


def split_card(text: str) -> tuple[dict, str]:
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, flags=re.DOTALL)
    assert match, text[:200]
    return yaml.safe_load(match.group(1)), match.group(2)


#: ``fit --final_weights best``: which weights the card describes
BEST = {"selected": "best", "step": 24, "monitor": "val/ndcg@10", "mode": "max", "value": 0.6543,
        "checkpoint": "checkpoints/best-step=24.ckpt"}


def trained() -> CardContext:
    return CardContext(name="me/splade-x", license="apache-2.0", datasets=("sentence-transformers/msmarco",),
                       command="splade-lightning fit --config configs/splade/quickstart.yaml", config=CONFIG,
                       results=REPORT, weights=BEST)


def test_front_matter_has_the_hub_keys():
    meta, _ = split_card(render_card(facts(trained())))
    assert meta["library_name"] == "sentence-transformers" and meta["pipeline_tag"] == "feature-extraction"
    assert {"sentence-transformers", "sparse-encoder", "splade"} <= set(meta["tags"])
    assert meta["base_model"] == "naver/splade-cocondenser-ensembledistil"
    assert meta["license"] == "apache-2.0" and meta["datasets"] == ["sentence-transformers/msmarco"]


def test_model_index_holds_the_fine_tuned_metrics_in_the_hub_shape():
    from huggingface_hub.repocard_data import model_index_to_eval_results

    meta, _ = split_card(render_card(facts(trained())))
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == "SPLADE sparse encoder based on naver/splade-cocondenser-ensembledistil"
    found = {(r.dataset_name, r.metric_type): r.metric_value for r in results}
    assert found[("scifact", "ndcg@10")] == pytest.approx(0.6543)  # the fine-tuned row, not the zero-shot one
    assert found[("nfcorpus", "active_dims_doc")] == pytest.approx(95.5)
    assert not any(dataset == "mean" for dataset, _ in found)


def test_body_shows_the_report_the_sparsity_the_objective_and_the_config():
    _, body = split_card(render_card(facts(trained())))
    assert "0.6543" in body and "0.1234" in body and "zero-shot" in body and "fine-tuned" in body
    sparsity = body[body.index("### Sparsity"):]
    assert "| scifact | 31.2 | 211.8 | 4.5 |" in sparsity and "| nfcorpus | 12.0 | 95.5 | 1.2 |" in sparsity
    assert "splade-lightning fit --config configs/splade/quickstart.yaml" in body
    assert "| `query_reg_weight` | `0.0005` |" in body and "| `doc_reg_weight` | `0.0003` |" in body
    assert "InBatchNegativesLoss(scale=1.0)" in body and "RegularizerWarmup(warmup_fraction=0.33)" in body
    assert "<details><summary>Resolved config</summary>" in body and "lr: 0.0001" in body
    assert 'SparseEncoder("me/splade-x")' in body and 'splade_lightning.load("me/splade-x")' in body
    assert "encode_query" in body and "encode_document" in body
    assert "`max`" in body and "30522" in body and "48 tokens" in body and "256 tokens" in body


def test_nothing_unknown_is_written():
    card = render_card(facts(backbone="/some/local/dir"))
    meta, body = split_card(card)
    assert set(meta) == {"library_name", "tags", "pipeline_tag"}
    assert "## Training" not in body and "## Evaluation" not in body
    assert "No training run or evaluation is recorded" in body and "PATH" in body


def test_architecture_tags_and_the_opensearch_layout():
    router = {"architecture": "inference_free", "doc": SPLADE, "query": {"architecture": "static"}}
    meta, body = split_card(render_card(facts(encoder=router)))
    assert {"sentence-transformers", "inference-free", "splade"} <= set(meta["tags"])
    assert "no transformer at query time" in body
    meta, body = split_card(render_card(facts(encoder=router, sentence_transformers=False)))
    assert "library_name" not in meta and "sentence-transformers" not in meta["tags"]
    assert "OpenSearch" in body and "SparseEncoder(" not in body
    csr = {"architecture": "csr", "dense": {"pooling": "mean"}, "autoencoder": {"input_dim": 32, "hidden_dim": 64,
                                                                                 "k": 4, "max_active_dims": None}}
    meta, body = split_card(render_card(facts(encoder=csr, dimensions=64)))
    assert "csr" in meta["tags"] and "64 (latents)" in body


def test_hub_id():
    assert hub_id("naver/splade-v3") == "naver/splade-v3"
    for name in (None, "splade-tiny", "/abs/dir", "a/b/c", "runs/../x"):
        assert hub_id(name) is None


def test_objective_of_a_csr_config_and_of_garbage():
    config = "model:\n  init_args:\n    beta: 0.1\n    gamma: 1.0\n    lr: 4.0e-05\n"
    assert objective(config) == [("beta", "0.1"), ("gamma", "1.0")]
    assert objective("{not: [yaml") == [] and objective(None) == []


def test_write_card_and_carry_over(tmp_path):
    write_card(tmp_path, facts(trained()))
    stored = json.loads((tmp_path / CONTEXT_FILE).read_text())
    assert stored["results"] == json.loads(json.dumps(REPORT)) and "name" not in stored
    assert stored["weights"] == BEST
    assert "the run's best checkpoint by `val/ndcg@10` (max, 0.6543 at step 24)" in render_card(facts(trained()))
    carried = CardContext.carried_from(tmp_path, name="other/repo")
    assert carried == CardContext(**{**trained().__dict__, "name": "other/repo"})
    with pytest.raises(FileExistsError, match="README.md"):
        write_card(tmp_path, facts())


def test_license_of_a_foreign_card_of_the_same_weights(tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: mit\nbase_model: x/y\n---\n# hello\n")
    assert CardContext.carried_from(tmp_path) == CardContext(license="mit")
    (tmp_path / "README.md").write_text("---\n[not yaml\n---\n")
    assert CardContext.carried_from(tmp_path) == CardContext()
    assert CardContext.carried_from(tmp_path / "missing.ckpt") == CardContext()
    assert front_matter(facts(CardContext.carried_from(None)))["tags"][0] == "sentence-transformers"
