"""ExpansionLogger, SparsityMonitor's distribution figures and the logger-specific media writers, driven by hand-made
validation batches that carry their evaluation set (``batch.eval_set``; no model, no Trainer loop, no data module)."""

import ast
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

import splade_lightning
from splade_lightning.callbacks import ExpansionLogger, SparsityMonitor
from splade_lightning.callbacks.logger_media import log_histogram, log_table
from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir import EvalData
from splade_lightning.formats.tables import markdown_table
from splade_lightning.types import EncodeBatch

DATA = EvalData(name="toy set", corpus={"d1": "the cat | sat", "d2": "dogs bark", "d3": "x" * 50},
                queries={"q1": "cat", "q2": "dog"}, qrels={"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 1}})
QUERY_REPS = torch.tensor([[0.0, 1.0, 0.0, 2.0, 0.0], [0.5, 0.0, 0.0, 0.0, 0.0]])
DOC_REPS = torch.tensor([[0.0, 1.0, 0.0, 0.0, 3.0], [1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0]])


def fake_trainer(loggers, step=7):
    return SimpleNamespace(sanity_checking=False, datamodule=None, global_step=step, loggers=loggers,
                           is_global_zero=True, strategy=SimpleNamespace(reduce=lambda t, reduce_op: t))


def fake_module(encoder):
    logged = {}
    return SimpleNamespace(encoder=encoder, log_dict=lambda d, **kw: logged.update(d), logged=logged)


def batch(kind, ids, reps, eval_set=DATA):
    # the data module's evaluation loaders set eval_set on every batch
    return EncodeBatch(input_ids=torch.zeros(len(ids), 2, dtype=torch.long), attention_mask=torch.ones(len(ids), 2),
                       ids=ids, kind=kind, eval_set=eval_set)


def run_validation(callback, trainer, module):
    callback.on_validation_batch_end(trainer, module, QUERY_REPS, batch("query", ["q1", "q2"], QUERY_REPS), 0)
    callback.on_validation_batch_end(trainer, module, DOC_REPS[:2], batch("doc", ["d1", "d2"], DOC_REPS[:2]), 1)
    callback.on_validation_batch_end(trainer, module, DOC_REPS[2:], batch("doc", ["d3"], DOC_REPS[2:]), 2)
    callback.on_validation_epoch_end(trainer, module)


def test_csr_latents_table_and_df_histogram_as_csv_files(tmp_path):
    csv_logger = CSVLogger(tmp_path, name="csv")
    trainer, module = fake_trainer([csv_logger]), fake_module(
        SimpleNamespace(dimension_names=lambda ids: [f"latent_{j}" for j in ids]))
    run_validation(ExpansionLogger(num_examples=2, top_k=2, max_text_chars=10), trainer, module)

    assert module.logged == {"val/toy set/vocab_active_doc": 3.0}  # dims 0, 1, 4 are active in some document
    media = tmp_path / "csv" / "version_0" / "media" / "val" / "toy_set"
    table = json.loads((media / "expansions" / "step_0000007.json").read_text())
    assert table["columns"] == ["pair", "kind", "id", "text", "active_dims", "top_terms"]
    assert table["rows"] == [
        [0, "query", "q1", "cat", 2, "latent_3:2 latent_1:1"],
        [0, "doc", "d1", "the cat | sat"[:9] + "…", 2, "latent_4:3 latent_1:1"],
        [1, "query", "q2", "dog", 1, "latent_0:0.5"],
        [1, "doc", "d2", "dogs bark", 2, "latent_0:1 latent_1:1"],  # grade 2 beats d3's grade 1
    ]
    assert "| the cat \\|… |" in (media / "expansions" / "step_0000007.md").read_text()
    df = json.loads((media / "doc_df_log10" / "step_0000007.json").read_text())
    # df: dim 0 -> 1 document, dim 1 -> 3, dim 4 -> 1: log10 values 0, 0.477, 0
    assert df["n"] == 3 and df["min"] == 0.0 and df["max"] == pytest.approx(0.47712, abs=1e-4)
    assert sum(df["counts"]) == 3 and df["counts"][0] == 2 and df["counts"][-1] == 1


def test_token_names_come_from_the_tokenizer(tmp_path, tokenizer_dir):
    from transformers import AutoTokenizer

    trainer = fake_trainer([CSVLogger(tmp_path, name="csv")], step=0)
    module = fake_module(SimpleNamespace())
    module.tokenizer_name_or_path = tokenizer_dir
    reps = torch.zeros(2, 30522)
    cat, sat = AutoTokenizer.from_pretrained(tokenizer_dir).convert_tokens_to_ids(["cat", "sat"])
    reps[0, cat], reps[0, sat], reps[1, sat] = 2.0, 0.0123, 0.5
    callback = ExpansionLogger(num_examples=1, df_histogram=False)
    callback.on_validation_batch_end(trainer, module, reps, batch("query", ["q1", "q2"], reps), 0)
    callback.on_validation_epoch_end(trainer, module)
    table = json.loads(next(tmp_path.rglob("expansions/step_0000000.json")).read_text())
    assert table["rows"] == [[0, "query", "q1", "cat", 2, "cat:2 sat:0.0123"]]
    assert module.logged == {} and not list(tmp_path.rglob("doc_df_log10"))


def test_nothing_is_collected_during_the_sanity_check(tmp_path):
    trainer, module = fake_trainer([CSVLogger(tmp_path)]), fake_module(SimpleNamespace(dimension_names=str))
    trainer.sanity_checking = True
    run_validation(ExpansionLogger(), trainer, module)
    assert module.logged == {} and not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize("callback", [ExpansionLogger(), SparsityMonitor()], ids=["expansions", "sparsity"])
def test_a_batch_without_its_evaluation_set_is_a_config_error(tmp_path, callback):
    trainer, module = fake_trainer([CSVLogger(tmp_path)]), fake_module(SimpleNamespace(dimension_names=str))
    name = type(callback).__name__
    with pytest.raises(ConfigError, match=f"{name}: the evaluation batch .* has eval_set=None"):
        callback.on_validation_batch_end(trainer, module, QUERY_REPS, batch("query", ["q1", "q2"], QUERY_REPS, None), 0)


def test_each_dataloader_keeps_its_own_set(tmp_path):
    """Two validation dataloaders, two sets: the figures are logged under each set's own name."""
    other = EvalData(name="other", corpus=DATA.corpus, queries=DATA.queries, qrels=DATA.qrels)
    trainer, module = fake_trainer([CSVLogger(tmp_path)]), fake_module(SimpleNamespace(dimension_names=str))
    monitor = SparsityMonitor(percentiles=[50], histograms=False)
    for idx, data in enumerate((DATA, other)):
        monitor.on_validation_batch_end(trainer, module, QUERY_REPS, batch("query", ["q1", "q2"], QUERY_REPS, data),
                                        0, idx)
        monitor.on_validation_batch_end(trainer, module, DOC_REPS, batch("doc", ["d1", "d2", "d3"], DOC_REPS, data),
                                        1, idx)
    monitor.on_validation_epoch_end(trainer, module)
    assert module.logged["val/toy set/active_dims_doc_p50"] == module.logged["val/other/active_dims_doc_p50"] == 2.0


@pytest.mark.parametrize("arg", ["num_examples", "top_k", "max_text_chars"])
def test_bad_arguments_are_config_errors(arg):
    with pytest.raises(ConfigError, match=f"{arg}=0"):
        ExpansionLogger(**{arg: 0})


def test_tensorboard_gets_histograms_and_markdown_tables(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = fake_trainer([logger], step=3)
    log_histogram(trainer, "val/x/doc_df_log10", torch.tensor([0.0, 1.0, 1.0]), 3)
    log_table(trainer, "val/x/expansions", ["a", "b"], [["p|q", 1]], 3)
    log_histogram(trainer, "val/x/empty", torch.tensor([]), 3)  # nothing to draw: nothing logged
    logger.experiment.flush()
    acc = EventAccumulator(logger.log_dir)
    acc.Reload()
    (hist,) = acc.Histograms("val/x/doc_df_log10")
    assert hist.step == 3 and hist.histogram_value.num == 3 and hist.histogram_value.sum == 2.0
    assert acc.Tags()["histograms"] == ["val/x/doc_df_log10"]
    (text,) = acc.Tensors("val/x/expansions/text_summary")
    assert text.tensor_proto.string_val[0].decode() == markdown_table(["a", "b"], [["p|q", 1]]) + "\n"
    assert markdown_table(["a"], [["x\ny"]]) == "| a |\n|---|\n| x y |"


def test_sparsity_monitor_logs_percentiles_at_validation(tmp_path):
    monitor = SparsityMonitor(percentiles=[0, 50, 100])
    trainer, module = fake_trainer([TensorBoardLogger(tmp_path, name="tb")]), fake_module(None)
    run_validation(monitor, trainer, module)
    logged = module.logged
    assert logged["val/toy set/active_dims_query_p0"] == 1.0 and logged["val/toy set/active_dims_query_p100"] == 2.0
    assert logged["val/toy set/active_dims_doc_p50"] == 2.0  # docs have 2, 2, 1 active dims
    assert logged["val/toy set/active_dims_doc_max"] == 2.0 and "val/toy set/flops" not in logged
    with pytest.raises(ConfigError, match="percentiles"):
        SparsityMonitor(percentiles=[150])


def test_wandb_is_imported_only_inside_functions():
    """No module of the package imports wandb at import time (the default CSV quickstart never pays for it)."""
    for path in Path(splade_lightning.__file__).parent.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:  # module-level statements only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "wandb" for n in names), f"{path} imports wandb at module level"


def test_csv_and_tensorboard_paths_never_import_wandb(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # any `import wandb` now raises ImportError
    loggers = [CSVLogger(tmp_path), TensorBoardLogger(tmp_path)]
    trainer = fake_trainer(loggers)
    module = fake_module(SimpleNamespace(dimension_names=lambda ids: [str(i) for i in ids]))
    run_validation(ExpansionLogger(), trainer, module)
    run_validation(SparsityMonitor(), trainer, module)
    assert len(list(tmp_path.rglob("step_0000007.json"))) == 2  # CSV: the table and the df histogram
