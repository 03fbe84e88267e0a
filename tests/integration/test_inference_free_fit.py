"""``fit --config configs/inference_free/quickstart.yaml`` end to end on a tiny random BERT and toy data, and the
``idf`` subcommand through the package entry point."""

import json
import math
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "inference_free" / "quickstart.yaml"
IDF = REPO / "data" / "opensearch-idf" / "idf.json"
QUERY = "--model.init_args.encoder.init_args.query_encoder.init_args"


def tiny_args(tiny_bert_dir, toy_triplets, toy_beir, root, *extra):
    return [
        "--config", str(CONFIG),
        f"--model.init_args.encoder.init_args.doc_encoder.init_args.backbone={tiny_bert_dir}",
        f"{QUERY}.tokenizer={tiny_bert_dir}", f"{QUERY}.idf_file={IDF}",
        f"--data.init_args.train.init_args.files=[{toy_triplets}]",
        f"--data.init_args.val_sets=[{{path: {toy_beir}, split: test, name: toy}}]",
        "--data.init_args.batch_size=4", "--data.init_args.eval_batch_size=4",
        "--data.init_args.max_doc_length=24", "--data.init_args.eval_max_doc_length=32",
        "--data.init_args.max_query_length=16", "--trainer.max_epochs=1", "--trainer.check_val_every_n_epoch=1",
        "--trainer.log_every_n_steps=1",
        f"--trainer.default_root_dir={root}", f"--trainer.logger.init_args.save_dir={root}",
        f"--export_dir={root / 'export'}", *extra,
    ]


@pytest.mark.parametrize("frozen", [False, True])
def test_fit_exports_opensearch_layout_and_reloads(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, capsys, frozen):
    import splade_lightning
    from splade_lightning.tools.main import main

    main(["fit", *tiny_args(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, f"{QUERY}.frozen={str(frozen).lower()}",
                            "--model.init_args.idf_lr=0.5")])
    assert "zero-shot" in capsys.readouterr().out

    header = next(tmp_path.rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    assert {"train/loss_rank", "train/flops_doc", "train/flops_query", "train/lr", "val/toy/ndcg@10"} <= set(header)
    assert ("train/lr_idf" in header) is not frozen

    initial = json.loads(IDF.read_text())
    exported = json.loads((tmp_path / "export" / "idf.json").read_text())
    assert set(exported) == set(initial) and exported["[CLS]"] == 0.0
    changed = [t for t in initial if not t.startswith("[") and abs(exported[t] - max(initial[t], 0.0)) > 1e-6]
    assert bool(changed) is not frozen  # a trainable table moved (idf_lr 0.5); a frozen one did not

    model = splade_lightning.load(tmp_path / "export")
    from_ckpt = splade_lightning.load(next(tmp_path.rglob("last.ckpt")))
    texts = ["a cat on a mat", "python programming language"]
    torch.testing.assert_close(model.encode_query(texts).to_dense(), from_ckpt.encode_query(texts).to_dense())
    torch.testing.assert_close(model.encode_document(texts).to_dense(), from_ckpt.encode_document(texts).to_dense())
    assert {t for t, _ in model.decode(model.encode_query("cat on a mat"))} <= {"cat", "on", "a", "mat"}


def test_idf_subcommand_through_main(tmp_path, toy_beir, capsys):
    from splade_lightning.tools.main import main

    out = tmp_path / "idf.json"
    exit_info = main(["idf", "--corpus", str(toy_beir), "--output", str(out), "--no_progress", "--compare", str(IDF)])
    assert exit_info == 0
    table = json.loads(out.read_text())
    assert table["python"] == pytest.approx(math.log(7 / 3) + 1)  # in 2 of the 6 toy documents
    out_text = capsys.readouterr().out
    assert "wrote 30522 tokens from 6 documents" in out_text and "Spearman rank correlation" in out_text
    exit_info = main(["idf", "--corpus", str(tmp_path / "missing"), "--output", str(out)])
    assert exit_info == 2 and "missing" in capsys.readouterr().err
