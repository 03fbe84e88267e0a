"""The shipped distillation configs end to end on a tiny random BERT: mine -> score -> fit through the CLI."""

import json
from pathlib import Path

import pytest
from conftest import write_jsonl

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def toy_train_beir(tmp_path) -> Path:
    """A BEIR dir with 8 training questions (split ``train``), each on its own topic with 4 documents (the first is
    the positive), so every question's mined negatives are its own topic's documents."""
    root = tmp_path / "train_beir"
    topics = ["apple", "river", "guitar", "volcano", "castle", "rocket", "garden", "winter"]
    write_jsonl(root / "corpus.jsonl", [{"_id": f"d{t}_{j}", "title": "", "text": f"{topic} {topic} fact {j} {topic}"}
                                        for t, topic in enumerate(topics) for j in range(4)])
    write_jsonl(root / "queries.jsonl", [{"_id": f"q{t}", "text": f"tell me about the {topic}"}
                                         for t, topic in enumerate(topics)])
    (root / "qrels").mkdir()
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                              + "".join(f"q{t}\td{t}_0\t1\n" for t in range(len(topics))))
    return root


@pytest.mark.parametrize("config", ["kl", "marginmse"])
def test_mine_score_fit(config, tiny_bert_dir, tiny_encoder_dir, toy_train_beir, toy_beir, tmp_path, capsys):
    from splade_lightning.tools.main import main

    negatives, scores = tmp_path / "negatives.jsonl", tmp_path / "scores.jsonl"
    for argv in (["mine", "--data", str(toy_train_beir), "--split", "train", "--retriever", "bm25",
                  "--num_negatives", "3", "--output", str(negatives), "--no_progress"],
                 ["score", "--input", str(negatives), "--queries", str(toy_train_beir), "--corpus", str(toy_train_beir),
                  "--teacher", f"dense:{tiny_encoder_dir}", "--teacher", f"sparse:{tiny_bert_dir}",
                  "--normalize", "minmax", "--scale", "30", "--output", str(scores), "--no_progress"]):
        exit_info = main(argv)
        assert exit_info == 0, capsys.readouterr().err
    groups = [json.loads(line) for line in scores.read_text().splitlines()]
    assert len(groups) == 8 and all(len(g["doc_ids"]) == len(g["scores"]) >= 2 for g in groups)

    main(["fit", "--config", str(REPO / "configs" / "distill" / f"{config}.yaml"),
          f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
          f"--data.init_args.train.init_args.corpus={toy_train_beir / 'corpus.jsonl'}",
          f"--data.init_args.train.init_args.queries={toy_train_beir / 'queries.jsonl'}",
          f"--data.init_args.train.init_args.teacher_scores=[{scores}]",
          "--data.init_args.train.init_args.num_negatives=2",
          f"--data.init_args.val_sets=[{{path: {toy_beir}, split: test, name: toy}}]",
          "--data.init_args.batch_size=4", "--data.init_args.eval_batch_size=4",
          "--data.init_args.max_doc_length=16", "--data.init_args.eval_max_doc_length=16",
          "--data.init_args.max_query_length=8", "--trainer.max_epochs=2", "--trainer.check_val_every_n_epoch=2",
          f"--data.init_args.train.init_args.cache_dir={tmp_path / 'cache'}",
          f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    assert "fine-tuned" in capsys.readouterr().out
    header = next(tmp_path.rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    assert {"train/loss", "train/loss_rank", "train/flops_doc", "val/toy/ndcg@10"} <= set(header)
    assert json.loads(next(tmp_path.rglob("report.json")).read_text())["fine_tuned"]["toy"]["ndcg@10"] >= 0
