"""Prompts (splade_lightning/prompts.py): validation, sentence-transformers config semantics, and their application
by the collators, the evaluation loaders, the data module, the modules and SparseModel."""

import pytest
import torch

from splade_lightning.data.collate import EncodeCollator, TrainCollator
from splade_lightning.errors import ConfigError
from splade_lightning.prompts import check_prompts, st_config_prompts, with_prompt

PROMPTS = {"query": "query: ", "document": "passage: "}


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def decoded(tokenizer, ids: torch.Tensor) -> list[str]:
    return tokenizer.batch_decode(ids, skip_special_tokens=True)


def test_check_prompts_completes_and_validates():
    assert check_prompts(None) == {"query": "", "document": ""}
    assert check_prompts({"query": "q: "}) == {"query": "q: ", "document": ""}
    with pytest.raises(ConfigError) as e:
        check_prompts({"passage": "p: ", "query": 3}, "model.prompts")
    message = str(e.value)
    assert "unknown key 'passage'" in message and "['query', 'document']" in message
    assert "model.prompts.query=3: expected a string" in message
    with pytest.raises(ConfigError, match="expected a mapping"):
        check_prompts("query: ")


def test_st_config_prompts_follow_sparse_encoder():
    # SparseEncoder always has "query"/"document" (None -> ""), so "passage" and default_prompt_name never apply
    config = {"prompts": {"query": "q: ", "passage": "p: ", "document": None}, "default_prompt_name": "query"}
    assert st_config_prompts(config, "x.json") == {"query": "q: ", "document": ""}
    assert st_config_prompts({}, "x.json") == {"query": "", "document": ""}
    with pytest.raises(ConfigError, match=r"x.json: prompts.document=\['a'\]"):
        st_config_prompts({"prompts": {"document": ["a"]}}, "x.json")
    assert with_prompt("", ["a"]) == ["a"] and with_prompt("p ", ["a", "b"]) == ["p a", "p b"]


def test_train_collator_prepends_the_prompt_of_each_route(tokenizer):
    examples = [("cats", ["cat text", "dog text"]), ("dogs", ["dog text 2", "cat text 2"])]
    batch = TrainCollator(tokenizer, 16, 16, prompts=PROMPTS)(examples)
    assert decoded(tokenizer, batch.query_input_ids) == ["query : cats", "query : dogs"]
    assert decoded(tokenizer, batch.doc_input_ids)[0] == "passage : cat text"
    # a router mapping that sends the query column through the document route gives it the document prompt
    swapped = TrainCollator(tokenizer, 16, 16, query_route="document", prompts=PROMPTS)(examples)
    assert decoded(tokenizer, swapped.query_input_ids)[0] == "passage : cats"
    plain = TrainCollator(tokenizer, 16, 16)(examples)
    assert decoded(tokenizer, plain.query_input_ids)[0] == "cats"
    with pytest.raises(ConfigError, match="unknown key 'doc'"):
        TrainCollator(tokenizer, prompts={"doc": "x"})


def test_the_prompt_counts_against_the_max_length(tokenizer):
    # as sentence-transformers: prompt + text is truncated, so the prompt's tokens take room from the text
    text = "one two three four five six seven eight"
    batch = EncodeCollator(tokenizer, 6, kind="query", prompt="query: ")([("1", text)])
    assert batch.input_ids.shape == (1, 6)
    assert decoded(tokenizer, batch.input_ids) == ["query : one two"]
    expected = tokenizer(["query: " + text], truncation=True, max_length=6)["input_ids"]
    assert batch.input_ids.tolist() == expected
    with pytest.raises(ConfigError, match="prompt=1: expected a string"):
        EncodeCollator(tokenizer, 6, prompt=1)


def test_eval_loader_and_datamodule_apply_prompts(tokenizer_dir, toy_beir, toy_triplets):
    from splade_lightning.data import RetrievalDataModule, TextTriplets

    dm = RetrievalDataModule(TextTriplets([str(toy_triplets)], negative_columns=["neg"]),
                             val_sets=[{"path": str(toy_beir), "split": "test"}], tokenizer=tokenizer_dir,
                             batch_size=2, eval_batch_size=16, prompts=PROMPTS)
    dm.setup("fit")
    tokenizer = dm._get_tokenizer()
    train = next(iter(dm.train_dataloader()))
    assert all(t.startswith("query : ") for t in decoded(tokenizer, train.query_input_ids))
    assert all(t.startswith("passage : ") for t in decoded(tokenizer, train.doc_input_ids))
    batches = list(dm.val_dataloader()[0])
    kinds = {b.kind: decoded(tokenizer, b.input_ids) for b in batches}
    assert all(t.startswith("query : ") for t in kinds["query"])
    assert all(t.startswith("passage : ") for t in kinds["doc"])
    with pytest.raises(ConfigError, match="--data.init_args.prompts: unknown key 'q'"):
        RetrievalDataModule(tokenizer=tokenizer_dir, prompts={"q": "x"})


def test_module_validates_and_checkpoints_prompts(tiny_bert_dir):
    from splade_lightning.models import SpladeEncoder
    from splade_lightning.systems import SpladeModule

    module = SpladeModule(SpladeEncoder(tiny_bert_dir), prompts={"query": "query: "})
    assert module.prompts == {"query": "query: ", "document": ""}
    assert module.hparams.prompts == {"query": "query: "}
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["splade_lightning"]["prompts"] == {"query": "query: ", "document": ""}
    with pytest.raises(ConfigError, match="prompts.document=None: expected a string"):
        SpladeModule(SpladeEncoder(tiny_bert_dir), prompts={"document": None})


def test_sparse_model_applies_and_overrides_prompts(tiny_bert_dir):
    from transformers import AutoTokenizer

    from splade_lightning.api import SparseModel
    from splade_lightning.models import SpladeEncoder

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    encoder = SpladeEncoder(tiny_bert_dir)
    prompted = SparseModel(encoder, tokenizer, 32, 32, prompts=PROMPTS)
    plain = SparseModel(encoder, tokenizer, 32, 32)
    texts = ["a cat sat on the mat", "python code"]
    # the prompt is the text prefix the plain model sees
    torch.testing.assert_close(prompted.encode_query(texts).to_dense(),
                               plain.encode_query(["query: " + t for t in texts]).to_dense())
    torch.testing.assert_close(prompted.encode_document(texts).to_dense(),
                               plain.encode_document(["passage: " + t for t in texts]).to_dense())
    assert not torch.equal(prompted.encode_query(texts).to_dense(), plain.encode_query(texts).to_dense())
    torch.testing.assert_close(prompted.encode_query(texts, prompt="").to_dense(), plain.encode_query(texts).to_dense())
    with pytest.raises(ConfigError, match="encode_document: prompt=3"):
        prompted.encode_document(texts, prompt=3)
