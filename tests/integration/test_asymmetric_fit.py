"""``fit --config configs/splade/asymmetric.yaml`` (a Router with a query MLM and a document MLM) end to end on tiny
random BERTs and toy data: trained, exported in the sentence-transformers Router layout, loaded back (export and
checkpoint), identical vectors in ``SparseEncoder``; a training route the model lacks is refused before training."""

from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "splade" / "asymmetric.yaml"
QUERIES = ["question number 3", "what is the wrong text"]
DOCS = ["answer text 3", "bad text 5 " * 10]


def tiny_args(query_dir, doc_dir, toy_triplets, toy_beir, root: Path, *extra):
    import yaml

    def splade(backbone):
        return {"class_path": "splade_lightning.models.SpladeEncoder", "init_args": {"backbone": backbone}}

    overlay = root / "routes.yaml"
    routes = {"query": splade(query_dir), "document": splade(doc_dir)}
    overlay.write_text(yaml.safe_dump({"model": {"init_args": {"encoder": {"init_args": {"routes": routes}}}}}))
    return [
        "--config", str(CONFIG), "--config", str(overlay),
        f"--data.init_args.train.init_args.files=[{toy_triplets}]",
        f"--data.init_args.val_sets=[{{path: {toy_beir}, split: test, name: toy}}]",
        "--data.init_args.batch_size=4", "--data.init_args.eval_batch_size=4",
        "--data.init_args.max_doc_length=24", "--data.init_args.eval_max_doc_length=32",
        "--data.init_args.max_query_length=16", "--trainer.max_epochs=1", "--trainer.check_val_every_n_epoch=1",
        "--trainer.log_every_n_steps=1", "--model.init_args.lr=1e-3",
        f"--trainer.default_root_dir={root}", f"--trainer.logger.init_args.save_dir={root}",
        f"--export_dir={root / 'export'}", *extra,
    ]


def test_asymmetric_fit_exports_router_identical_in_sentence_transformers(query_bert_dir, tiny_bert_dir,
                                                                          toy_triplets, toy_beir, tmp_path, capsys):
    from sentence_transformers import SparseEncoder

    import splade_lightning
    from splade_lightning.models import Router, SpladeEncoder
    from splade_lightning.tools.main import main

    assert main(["fit", *tiny_args(query_bert_dir, tiny_bert_dir, toy_triplets, toy_beir, tmp_path)]) == 0
    header = next(tmp_path.rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    assert {"train/loss_rank", "train/flops_query", "train/flops_doc", "train/lr_encoder.routes.query",
            "val/toy/ndcg@10"} <= set(header)

    export = tmp_path / "export"
    assert (export / "router_config.json").is_file()
    model = splade_lightning.load(export)
    assert isinstance(model.encoder, Router)
    start = SpladeEncoder(query_bert_dir).mlm.cls.predictions.bias
    assert not torch.equal(model.encoder.routes["query"].mlm.cls.predictions.bias, start)  # the query MLM trained
    ours_q, ours_d = model.encode_query(QUERIES).to_dense(), model.encode_document(DOCS).to_dense()
    assert (model.encode_query(DOCS).to_dense() - ours_d).abs().max() > 0.1  # two different encoders

    st = SparseEncoder(str(export), device="cpu")
    torch.testing.assert_close(st.encode_query(QUERIES, convert_to_tensor=True).to_dense(), ours_q, rtol=0, atol=1e-6)
    torch.testing.assert_close(st.encode_document(DOCS, convert_to_tensor=True).to_dense(), ours_d, rtol=0, atol=1e-6)

    last = next(tmp_path.rglob("last.ckpt"))
    from_ckpt = splade_lightning.load(last)
    assert isinstance(from_ckpt.encoder, Router)
    torch.testing.assert_close(from_ckpt.encode_query(QUERIES).to_dense(), ours_q, rtol=0, atol=1e-6)
    torch.testing.assert_close(from_ckpt.encode_document(DOCS).to_dense(), ours_d, rtol=0, atol=1e-6)

    # the export tool: from the checkpoint to the Router layout; ONNX cannot hold two MLMs and says so
    assert main(["export", "--model", str(last), "--format", "sentence-transformers",
                 "--output", str(tmp_path / "st")]) == 0
    torch.testing.assert_close(SparseEncoder(str(tmp_path / "st"), device="cpu").encode_query(
        QUERIES, convert_to_tensor=True).to_dense(), ours_q, rtol=0, atol=1e-6)
    assert main(["export", "--model", str(last), "--format", "onnx", "--output", str(tmp_path / "onnx")]) == 2
    assert "--format onnx cannot hold a 'router' model" in capsys.readouterr().err

    # resume from the last checkpoint for one more epoch
    args = tiny_args(query_bert_dir, tiny_bert_dir, toy_triplets, toy_beir, tmp_path, "--ckpt_path", "last",
                     "--trainer.max_epochs=2", "--overwrite=true")
    assert main(["fit", *args]) == 0
    resumed = splade_lightning.load(export)
    assert not torch.equal(resumed.encode_query(QUERIES).to_dense(), ours_q)  # trained further


def test_a_training_route_the_model_lacks_is_refused(query_bert_dir, tiny_bert_dir, toy_triplets, toy_beir,
                                                     tmp_path, capsys):
    from splade_lightning.tools.main import main

    mapping = "--data.init_args.train.init_args.router_mapping={query: passage, pos: document, neg: document}"
    code = main(["fit", *tiny_args(query_bert_dir, tiny_bert_dir, toy_triplets, toy_beir, tmp_path, mapping)])
    err = capsys.readouterr().err
    assert code == 2 and "router_mapping: route 'passage' is not a route of the model's Router" in err
    assert not list(tmp_path.rglob("*.ckpt")) and not (tmp_path / "export").exists()  # refused before training
