"""CollapseGuard: collapse detection on a real tiny SPLADE fit, and the non-finite-loss policies (skip leaves the
weights untouched, stop raises with the step and the terms, no guard keeps raising FloatingPointError)."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from splade_lightning.callbacks import CollapseGuard
from splade_lightning.data import RetrievalDataModule, TextTriplets
from splade_lightning.errors import ConfigError, TrainingCollapsed, TrainingDiverged
from splade_lightning.models import SpladeEncoder
from splade_lightning.systems import SpladeModule


def fit(tiny_bert_dir, toy_triplets, callbacks, max_steps, accumulate=1, **module_args):
    torch.manual_seed(0)
    module = SpladeModule(SpladeEncoder(tiny_bert_dir), lr_warmup_steps=0, **module_args)
    data = RetrievalDataModule(TextTriplets([str(toy_triplets)], negative_columns=["neg"], sampling="first"),
                               tokenizer=tiny_bert_dir, batch_size=2, max_query_length=8, max_doc_length=8)
    trainer = pl.Trainer(accelerator="cpu", max_steps=max_steps, accumulate_grad_batches=accumulate, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=callbacks, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, datamodule=data)
    return module, trainer


class NanAt(pl.Callback):
    """Makes the loss of the training micro-batches ``batches`` (counted from 0 over the whole run) NaN, through the
    module's ``compute_loss``, and records the weights before every micro-batch."""

    def __init__(self, batches):
        self.batches, self.snapshots = set(batches), []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.snapshots.append([p.detach().clone() for p in pl_module.parameters()])
        original, poisoned = type(pl_module).compute_loss, len(self.snapshots) - 1 in self.batches

        def compute_loss(*args, **kwargs):
            terms = original(pl_module, *args, **kwargs)
            if poisoned:
                terms["loss"] = terms["loss"] * float("nan")
            return terms

        pl_module.compute_loss = compute_loss

    def changed(self, start, end):
        """Whether any weight differs between the starts of micro-batches ``start`` and ``end``."""
        return not all(torch.equal(a, b) for a, b in zip(self.snapshots[start], self.snapshots[end]))


def constant_lr(optimizer):
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)


# λ_d = 1e4 with AdamW at lr 0.05 takes the tiny random BERT from ~25,000 active dims per document to ~20 within two
# steps (measured); a floor of 64 active dims catches it at once
COLLAPSING = {"query_reg_weight": 0.0, "doc_reg_weight": 1e4, "lr": 0.05, "lr_scheduler": constant_lr}


def test_absurd_doc_lambda_collapses_and_the_guard_stops_with_the_causes(tiny_bert_dir, toy_triplets):
    guard = CollapseGuard(patience=2, min_active_dims=64, on_collapse="stop")
    with pytest.raises(TrainingCollapsed) as info:
        fit(tiny_bert_dir, toy_triplets, [guard], max_steps=20, **COLLAPSING)
    message = str(info.value)
    # batch 0 (the initial weights) is healthy; batches 1 and 2, after one and two updates, are not
    assert "representation collapse: 2 consecutive training batches up to step 3" in message and "doc:" in message
    assert "current λ_d=1e+04, λ_q=0" in message and "warm-up too short" in message and "lr=0.05" in message
    assert guard.collapsed_batches == 2


def test_collapse_warn_mode_keeps_training(tiny_bert_dir, toy_triplets):
    guard = CollapseGuard(patience=2, min_active_dims=64, on_collapse="warn")
    with pytest.warns(UserWarning, match="representation collapse"):
        _, trainer = fit(tiny_bert_dir, toy_triplets, [guard], max_steps=3, **COLLAPSING)
    assert trainer.global_step == 3 and guard.collapsed_batches == 2  # batch 0 is healthy, batches 1-2 are not


@pytest.mark.parametrize("accumulate", [1, 2])
def test_warn_skip_leaves_the_weights_of_a_nan_step_unchanged(tiny_bert_dir, toy_triplets, accumulate):
    """The NaN is in the last micro-batch of optimizer step 2: that whole step leaves every weight unchanged, the
    steps before and after train; a healthy run is never flagged as collapsed (on_collapse='stop')."""
    nan = NanAt({2 * accumulate - 1})
    guard = CollapseGuard(patience=1, min_active_dims=64, on_collapse="stop", on_nonfinite="warn_skip")
    with pytest.warns(UserWarning, match="non-finite training loss at step 1"):
        _, trainer = fit(tiny_bert_dir, toy_triplets, [nan, guard, Final(nan)], max_steps=3, accumulate=accumulate,
                         lr=1e-3)
    assert trainer.global_step == 3 and guard.nonfinite_steps == 1 and guard.collapsed_batches == 0
    first, second, third = 0, accumulate, 2 * accumulate  # first micro-batch of each optimizer step
    assert not nan.changed(second, third)
    assert nan.changed(first, second) and nan.changed(third, len(nan.snapshots) - 1)
    assert trainer.callback_metrics["train/nonfinite_steps"] == 1.0


class Final(pl.Callback):
    """Appends the final weights to ``nan.snapshots``."""

    def __init__(self, nan):
        self.nan = nan

    def on_train_end(self, trainer, pl_module):
        self.nan.snapshots.append([p.detach().clone() for p in pl_module.parameters()])


def test_stop_raises_naming_the_step_and_terms(tiny_bert_dir, toy_triplets):
    with pytest.raises(TrainingDiverged) as info:
        fit(tiny_bert_dir, toy_triplets, [NanAt({1}), CollapseGuard(on_nonfinite="stop")], max_steps=2, lr=1e-3)
    message = str(info.value)
    assert "non-finite training loss at step 1" in message and "loss=nan" in message and "loss_rank=" in message
    assert "flops_doc=" in message and "learning rate too high" in message and "fp16" in message
    assert isinstance(info.value, FloatingPointError)


def test_without_the_guard_a_nan_loss_still_raises(tiny_bert_dir):
    module = SpladeModule(SpladeEncoder(tiny_bert_dir))
    terms = {"loss": torch.tensor(float("nan"), requires_grad=True), "loss_rank": torch.tensor(1.5)}
    with pytest.raises(FloatingPointError, match="non-finite training loss at step 0: loss=nan, loss_rank=1.5"):
        module.log_training(terms, batch_size=2)
    assert module.nonfinite_terms is None
    module.defer_nonfinite_loss(True)  # what CollapseGuard.setup does: the terms are kept for its message
    module.log_training(terms, batch_size=2)
    assert module.nonfinite_terms == {"loss": pytest.approx(float("nan"), nan_ok=True), "loss_rank": 1.5}
    module.defer_nonfinite_loss(False)  # CollapseGuard.teardown: raising again
    with pytest.raises(FloatingPointError):
        module.log_training(terms, batch_size=2)


def test_guard_refuses_a_module_without_the_interface():
    """A LightningModule that cannot defer a non-finite loss: a ConfigError naming the module and the callback."""
    with pytest.raises(ConfigError, match=r"CollapseGuard: the module LightningModule does not implement "
                                          r"DeferrableLoss \(missing: defer_nonfinite_loss, nonfinite_terms\)"):
        CollapseGuard().setup(None, pl.LightningModule(), "fit")


@pytest.mark.parametrize(("args", "bad"), [({"patience": 0}, "patience=0"), ({"min_active_dims": -1}, "min_active"),
                                           ({"max_zero_fraction": 1.5}, "max_zero_fraction"),
                                           ({"on_collapse": "halt"}, "on_collapse"),
                                           ({"on_nonfinite": "skip"}, "on_nonfinite")])
def test_bad_arguments_are_config_errors(args, bad):
    with pytest.raises(ConfigError, match=bad):
        CollapseGuard(**args)


def test_cli_exits_non_zero_and_says_why(tiny_bert_dir, toy_triplets, toy_beir, tmp_path, capsys):
    """Through ``python -m splade_lightning fit``: a floor no model can reach stops the run at the first batch (the
    overlay's callback list replaces the quickstart's, so there is no warm-up here)."""
    from splade_lightning.tools.main import main

    overlay = tmp_path / "guard.yaml"
    overlay.write_text("trainer:\n  callbacks:\n    - class_path: splade_lightning.callbacks.CollapseGuard\n"
                       "      init_args: {patience: 1, min_active_dims: 1.0e9}\n")
    quickstart = Path(__file__).resolve().parents[3] / "configs" / "splade" / "quickstart.yaml"
    exit_info = main(["fit", "--config", str(quickstart), "--config", str(overlay),
          f"--model.init_args.encoder.init_args.backbone={tiny_bert_dir}",
          f"--data.init_args.train.init_args.files=[{toy_triplets}]",
          "--data.init_args.train.init_args.negative_columns=[neg]",
          f"--data.init_args.val_sets=[{{path: {toy_beir}, split: test}}]", "--data.init_args.batch_size=2",
          "--data.init_args.max_doc_length=8", "--data.init_args.max_query_length=8", "--eval_before_fit=false",
          f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    assert exit_info == 2
    err = capsys.readouterr().err
    assert "error: representation collapse: 1 consecutive training batches up to step 1" in err
    assert "current λ_d=" in err and "on_collapse='stop'" in err


def test_causes_without_a_regulariser_name_dead_latents():
    """CSR has no λ: the collapse message names dead latents (and an unknown lr outside a Trainer)."""
    from splade_lightning.callbacks.collapse_guard import _likely_causes

    assert _likely_causes(pl.LightningModule()) == ("dead latents / a dead encoder (no regulariser drives codes to "
                                                    "zero here), or learning rate too high (lr=unknown)")
