"""Model cards written by ``SparseModel.save`` and ``splade-lightning export``: the card sits beside the weights,
sentence-transformers still loads the directory, and what a fit recorded is carried into an export."""

from __future__ import annotations

import re

import pytest
import torch
import yaml

import splade_lightning
from splade_lightning.api import SparseModel
from splade_lightning.formats.manifest import read_manifest
from splade_lightning.models import QueryDocRouter, SpladeEncoder, StaticSparseEncoder
from splade_lightning.serialization.model_card import CardContext
from splade_lightning.serialization.model_dir import save_encoder
from splade_lightning.tools.main import main

TEXTS = ["what is the capital of france", "dogs bark at cats"]
REPORT = {"zero-shot": {"toy": {"ndcg@10": 0.25, "active_dims_query": 7.0, "active_dims_doc": 40.0, "flops": 2.0}},
          "fine-tuned": {"toy": {"ndcg@10": 0.75, "active_dims_query": 9.5, "active_dims_doc": 60.25, "flops": 3.0}}}


def card_of(directory) -> tuple[dict, str]:
    text = (directory / "README.md").read_text()
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, flags=re.DOTALL)
    assert match, text[:200]
    return yaml.safe_load(match.group(1)), match.group(2)


@pytest.fixture(scope="module")
def fitted_dir(tmp_path_factory, tiny_bert_dir, tokenizer_dir) -> str:
    """A SPLADE directory saved as fit saves one: with the command, the config and the report."""
    from transformers import AutoTokenizer

    context = CardContext(command="splade-lightning fit --config c.yaml", config="model:\n  init_args:\n"
                          "    query_reg_weight: 0.0005\n", results=REPORT)
    out = tmp_path_factory.mktemp("fitted") / "model"
    save_encoder(SpladeEncoder(tiny_bert_dir), AutoTokenizer.from_pretrained(tokenizer_dir), out, 16, 32,
                 tool="fit", card=context)
    return str(out)


def test_save_writes_a_card_the_manifest_owns(tiny_bert_dir, tokenizer_dir, tmp_path):
    from transformers import AutoTokenizer

    out = SparseModel(SpladeEncoder(tiny_bert_dir), AutoTokenizer.from_pretrained(tokenizer_dir), 16, 32).save(
        tmp_path / "m")
    meta, body = card_of(out)
    assert meta["library_name"] == "sentence-transformers" and "splade" in meta["tags"]
    assert "base_model" not in meta and "model-index" not in meta  # a local random backbone: nothing known
    assert "16 tokens" in body and "32 tokens" in body and "No training run" in body
    assert {"README.md", "model_card.json"} <= set(read_manifest(out)["files"])


def test_export_carries_the_fit_card_and_sentence_transformers_loads_it(fitted_dir, tmp_path):
    from sentence_transformers import SparseEncoder

    out = tmp_path / "st"
    assert main(["export", "--model", fitted_dir, "--format", "sentence-transformers", "--output", str(out)]) == 0
    meta, body = card_of(out)
    values = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert values["ndcg@10"] == 0.75 and values["active_dims_doc"] == 60.25
    assert "splade-lightning fit --config c.yaml" in body and "| `query_reg_weight` | `0.0005` |" in body
    assert "| toy | 9.5 | 60.2 | 3.0 |" in body and f'SparseEncoder("{out}")' in body
    st = SparseEncoder(str(out), device="cpu")
    ours = splade_lightning.load(out)
    torch.testing.assert_close(st.encode_document(TEXTS, convert_to_tensor=True).to_dense().float(),
                               ours.encode_document(TEXTS).to_dense(), atol=1e-5, rtol=1e-5)


def test_router_export_card(tiny_bert_dir, tokenizer_dir, tmp_path):
    from sentence_transformers import SparseEncoder
    from transformers import AutoTokenizer

    router = QueryDocRouter(SpladeEncoder(tiny_bert_dir), StaticSparseEncoder(tiny_bert_dir))
    source = SparseModel(router, AutoTokenizer.from_pretrained(tokenizer_dir), 16, 32).save(tmp_path / "if")
    meta, body = card_of(source)  # OpenSearch's layout: not a SparseEncoder directory
    assert "library_name" not in meta and "inference-free" in meta["tags"] and "OpenSearch" in body
    out = tmp_path / "st"
    assert main(["export", "--model", str(source), "--format", "sentence-transformers", "--output", str(out)]) == 0
    meta, _ = card_of(out)
    assert meta["library_name"] == "sentence-transformers" and "inference-free" in meta["tags"]
    assert SparseEncoder(str(out), device="cpu").encode_query(TEXTS, convert_to_tensor=True).shape[-1] == 30522


@pytest.mark.parametrize(("args", "expected"), [
    (["--format", "opensearch", "--push_to_hub", "me/x"], "--push_to_hub only applies to --format sentence"),
    (["--format", "sentence-transformers", "--private"], "--private only applies with --push_to_hub"),
    (["--format", "sentence-transformers", "--push_to_hub", "a/b/c"], "--push_to_hub 'a/b/c': expected"),
])
def test_push_flags_are_checked_before_loading(args, expected, tmp_path, capsys):
    assert main(["export", "--model", "no/such-model", "--output", str(tmp_path / "o"), *args]) == 2
    assert expected in capsys.readouterr().err and not (tmp_path / "o").exists()
