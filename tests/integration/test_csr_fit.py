"""``fit`` of a CSRModule (dense backbone + TopK sparse autoencoder) end to end through the CLI, on a tiny random BERT
and toy data: report, logged terms, export and checkpoint reload, dead-latent counters in the checkpoint."""

import json

import pytest
import torch

K = 4


def csr_config(root, tiny_encoder_dir, toy_triplets, toy_beir, frozen: bool) -> dict:
    dense = {"backbone": tiny_encoder_dir, "pooling": "mean", "normalize": True, "frozen": frozen}
    # frozen: the CSR recipe (memoised backbone embeddings, SAE only); else the backbone trains at lr, the SAE at
    # autoencoder_lr
    encoder = {"dense": {"class_path": "splade_lightning.models.DenseEncoder", "init_args": dense},
               "autoencoder": {"class_path": "splade_lightning.models.SparseAutoEncoder",
                               "init_args": {"input_dim": 32, "hidden_dim": 64, "k": K, "k_aux": 8,
                                             "dead_threshold": 2}},
               "embedding_cache": 1000 if frozen else 0}
    model = {"encoder": {"class_path": "splade_lightning.models.CSREncoder", "init_args": encoder},
             "beta": 0.1, "gamma": 0.1, "lr": 1e-3 if frozen else 1e-4, "weight_decay": 0.0,
             **({} if frozen else {"autoencoder_lr": 1e-2})}
    return {
        "seed_everything": 0,
        "eval_before_fit": True,
        "export_dir": str(root / "export"),
        "trainer": {
            "accelerator": "cpu", "devices": 1, "max_epochs": 3, "log_every_n_steps": 1, "num_sanity_val_steps": 0,
            "check_val_every_n_epoch": 3, "enable_progress_bar": False, "enable_model_summary": False,
            "default_root_dir": str(root),
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                       "init_args": {"save_dir": str(root), "name": "csv"}},
            "callbacks": [{"class_path": "splade_lightning.callbacks.SparsityMonitor",
                           "init_args": {"every_n_steps": 1}},
                          {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                           "init_args": {"save_last": True, "save_top_k": 0}}],
        },
        "model": {"class_path": "splade_lightning.systems.CSRModule", "init_args": model},
        "data": {"class_path": "splade_lightning.data.RetrievalDataModule", "init_args": {
            "train": {"class_path": "splade_lightning.data.TextTriplets", "init_args": {
                "files": [str(toy_triplets)], "negative_columns": ["neg"], "num_negatives": 1}},
            "val_sets": [{"path": str(toy_beir), "split": "test", "name": "toy"}],
            "batch_size": 4, "eval_batch_size": 4, "max_query_length": 16, "max_doc_length": 24,
            "eval_max_doc_length": 32}},
    }


@pytest.mark.parametrize("frozen", [False, True], ids=["trained-backbone", "frozen-cached"])
def test_csr_fit_reports_exports_and_reloads(tiny_encoder_dir, toy_triplets, toy_beir, tmp_path, capsys, frozen):
    import splade_lightning
    from splade_lightning.tools.lightning_cli import SpladeCLI

    config = tmp_path / "csr.yaml"
    config.write_text(json.dumps(csr_config(tmp_path, tiny_encoder_dir, toy_triplets, toy_beir, frozen)))  # as YAML
    cli = SpladeCLI(args=["fit", "--config", str(config)])  # what `python -m splade_lightning fit` runs
    out = capsys.readouterr().out
    assert "zero-shot" in out and "fine-tuned" in out
    assert cli.trainer.global_step == 6  # 8 triplets / batch 4, 3 epochs

    report = json.loads(next(tmp_path.rglob("report.json")).read_text())
    for stage in ("zero_shot", "fine_tuned"):
        metrics = report[stage]["toy"]
        assert {"ndcg@10", "dense_ndcg@10", "dense_mrr@10", "recon_mse", "recon_fvu", "dead_fraction",
                "active_dims_doc", "active_dims_query"} <= set(metrics), stage
        assert 0.0 <= metrics["dense_ndcg@10"] <= 1.0 and 0.0 <= metrics["dead_fraction"] <= 1.0
        assert 0 < metrics["active_dims_doc"] <= K and 0 < metrics["active_dims_query"] <= K
        assert metrics["recon_mse"] > 0 and metrics["recon_fvu"] > 0
    # the dense baseline is the backbone's: fixed when frozen
    if frozen:
        assert report["fine_tuned"]["toy"]["dense_ndcg@10"] == report["zero_shot"]["toy"]["dense_ndcg@10"]
        assert 8 + 8 + 6 + 3 <= len(cli.model.encoder._cache) <= 1000  # train and evaluation texts were memoised
    assert report["fine_tuned"]["toy"]["recon_mse"] != report["zero_shot"]["toy"]["recon_mse"]

    header = next(tmp_path.rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    for key in ("train/loss", "train/recon_k", "train/recon_4k", "train/recon_aux", "train/loss_rank",
                "train/dead_fraction", "train/lr", "train/active_dims_doc", "val/toy/dense_ndcg@10",
                "val/toy/recon_fvu", "val/toy/active_dims_doc_max"):
        assert key in header, key
    assert ("train/lr_autoencoder" in header) is not frozen  # a second named group only beside the backbone's

    stats = cli.model.autoencoder.stats_last_nonzero
    assert int(stats.max()) > 0  # some latent idled for a step
    ckpt = next(tmp_path.rglob("last.ckpt"))
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert torch.equal(state["encoder.autoencoder.stats_last_nonzero"], stats)

    texts = ["a cat on a mat", "python programming language", "barking dogs"]
    exported = splade_lightning.load(tmp_path / "export")
    from_ckpt = splade_lightning.load(ckpt)
    assert torch.equal(from_ckpt.encoder.autoencoder.stats_last_nonzero, stats)
    assert torch.equal(exported.encoder.autoencoder.stats_last_nonzero, stats)
    for a, b in ((exported.encode_query(texts), from_ckpt.encode_query(texts)),
                 (exported.encode_document(texts), from_ckpt.encode_document(texts))):
        torch.testing.assert_close(a.to_dense(), b.to_dense())
        assert ((a.to_dense() > 0).sum(-1) <= K).all()
    with torch.no_grad():  # the exported encoder is the trained one
        ids = from_ckpt.tokenizer(texts, padding=True, return_tensors="pt")
        trained = cli.model.encoder.eval().encode_doc(ids["input_ids"], ids["attention_mask"])
    torch.testing.assert_close(exported.encode_document(texts).to_dense(), trained)
