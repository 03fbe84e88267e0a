"""``fit`` with ``model.init_args.prompts``: the CLI hands them to the data module, whose training and validation
batches carry them; the exported model and the checkpoint keep them, and sentence-transformers applies them."""

import json

import torch

import splade_lightning
from splade_lightning.data.collate import EncodeCollator, TrainCollator
from tests.integration.test_fit import tiny_args


def test_fit_applies_saves_and_exports_prompts(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    from splade_lightning.tools.main import main

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    seen: dict[str, list[str]] = {"query": [], "doc": [], "eval_query": [], "eval_doc": []}
    train_call, encode_call = TrainCollator.__call__, EncodeCollator.__call__

    def spy_train(self, examples):
        batch = train_call(self, examples)
        seen["query"] += tokenizer.batch_decode(batch.query_input_ids, skip_special_tokens=True)
        seen["doc"] += tokenizer.batch_decode(batch.doc_input_ids, skip_special_tokens=True)
        return batch

    def spy_encode(self, items):
        batch = encode_call(self, items)
        seen[f"eval_{batch.kind}"] += tokenizer.batch_decode(batch.input_ids, skip_special_tokens=True)
        return batch

    monkeypatch.setattr(TrainCollator, "__call__", spy_train)
    monkeypatch.setattr(EncodeCollator, "__call__", spy_encode)
    export = tmp_path / "export"
    assert main(["fit", *tiny_args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--trainer.max_epochs=1",
                                   "--eval_before_fit=false", f"--export_dir={export}",
                                   '--model.init_args.prompts={query: "query: ", document: "passage: "}')]) == 0
    for key, prompt in (("query", "query : "), ("doc", "passage : "), ("eval_query", "query : "),
                        ("eval_doc", "passage : ")):
        assert seen[key] and all(text.startswith(prompt) for text in seen[key]), (key, seen[key][:2])

    prompts = {"query": "query: ", "document": "passage: "}
    exported, from_ckpt = splade_lightning.load(export), splade_lightning.load(next(tmp_path.rglob("last.ckpt")))
    assert exported.prompts == prompts and from_ckpt.prompts == prompts
    assert json.loads((export / "config_sentence_transformers.json").read_text())["prompts"] == prompts
    from sentence_transformers import SparseEncoder

    st = SparseEncoder(str(export), device="cpu")
    texts = ["a cat on a mat", "python programming"]
    torch.testing.assert_close(st.encode_query(texts).to_dense(), exported.encode_query(texts).to_dense(),
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(from_ckpt.encode_document(texts).to_dense(),
                               exported.encode_document(texts).to_dense())


def test_prompts_are_set_on_the_model_only(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, capsys):
    from splade_lightning.tools.main import main

    bad = main(["fit", *tiny_args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--trainer.fast_dev_run=true",
                                  '--model.init_args.prompts={passage: "p: "}')])
    assert bad == 2
    assert "unknown key 'passage'" in capsys.readouterr().err
