"""A frozen teacher (``SpladeModule(teacher=...)``, embedding distillation) stays out of the training checkpoints:
they hold a fingerprint of its weights, resuming puts the configured teacher back (bitwise), a different teacher is
refused, and a checkpoint written with the teacher's weights inside (before this change) still loads."""

import lightning.pytorch as pl
import pytest
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.serialization.checkpoint import torch_load_checkpoint as load


def teacher_module(tiny_bert_dir, shift=0.5):
    from splade_lightning.losses import EmbeddingMSELoss
    from splade_lightning.models import SpladeEncoder
    from splade_lightning.systems import SpladeModule

    torch.manual_seed(1)
    teacher = SpladeEncoder(tiny_bert_dir)
    with torch.no_grad():  # a teacher that differs from the student
        teacher.mlm.cls.predictions.bias.add_(shift)
    return SpladeModule(SpladeEncoder(tiny_bert_dir), loss=EmbeddingMSELoss(), teacher=teacher, lr=1e-3)


def trainer(root, steps, precision="32-true"):
    from lightning.pytorch.callbacks import ModelCheckpoint

    return pl.Trainer(accelerator="cpu", max_steps=steps, limit_val_batches=0, logger=False, default_root_dir=root,
                      precision=precision,
                      callbacks=[ModelCheckpoint(dirpath=root, every_n_train_steps=1, save_top_k=-1,
                                                 filename="{step}")],
                      enable_progress_bar=False, enable_model_summary=False)


def datamodule(tiny_bert_dir, toy_triplets):
    from splade_lightning.data import RetrievalDataModule, TextTriplets

    train = TextTriplets([str(toy_triplets)], negative_columns=["neg"], num_negatives=1)
    return RetrievalDataModule(train=train, tokenizer=tiny_bert_dir, batch_size=4, max_query_length=12,
                               max_doc_length=12)


@pytest.mark.parametrize("precision", ["32-true", "bf16-true"])  # bf16-true converts the teacher after it is built
def test_checkpoints_hold_a_teacher_fingerprint_not_its_weights_and_resume_with_it(tiny_bert_dir, toy_triplets,
                                                                                      tmp_path, precision):
    from splade_lightning.formats.fingerprints import state_fingerprint

    module = teacher_module(tiny_bert_dir)
    fingerprint = state_fingerprint(module.teacher.state_dict())  # of the configured (float32) teacher
    trainer(tmp_path, 2, precision).fit(module, datamodule=datamodule(tiny_bert_dir, toy_triplets))
    saved = load(tmp_path / "step=2.ckpt")
    assert not any(key.startswith("teacher.") for key in saved["state_dict"])
    assert any(key.startswith("encoder.") for key in saved["state_dict"])
    assert saved["splade_lightning"]["teacher_fingerprint"] == fingerprint

    source = (tmp_path / "step=2.ckpt").read_bytes()
    resumed = teacher_module(tiny_bert_dir)  # the same configured teacher, rebuilt
    trainer(tmp_path / "resumed", 3, precision).fit(resumed, datamodule=datamodule(tiny_bert_dir, toy_triplets),
                                                    ckpt_path=str(tmp_path / "step=2.ckpt"))
    assert resumed.trainer.global_step == 3
    assert (tmp_path / "step=2.ckpt").read_bytes() == source  # the teacher went back into memory, not the file
    again = load(tmp_path / "resumed" / "step=3.ckpt")
    assert not any(key.startswith("teacher.") for key in again["state_dict"])
    assert again["splade_lightning"]["teacher_fingerprint"] == fingerprint


def test_evaluating_a_checkpoint_with_another_teacher_is_allowed(tiny_bert_dir, toy_triplets, tmp_path):
    """validate/test never use the teacher: its weights are only put back, whatever teacher is configured."""
    trainer(tmp_path, 1).fit(teacher_module(tiny_bert_dir), datamodule=datamodule(tiny_bert_dir, toy_triplets))
    other = teacher_module(tiny_bert_dir, shift=0.25)
    checkpoint = load(tmp_path / "step=1.ckpt")
    other.on_load_checkpoint(checkpoint)  # no trainer: not resuming
    other.load_state_dict(checkpoint["state_dict"])
    torch.testing.assert_close(other.encoder.mlm.cls.predictions.bias,
                               checkpoint["state_dict"]["encoder.mlm.cls.predictions.bias"], rtol=0, atol=0)


def test_resuming_a_run_without_a_teacher_with_one_is_refused(tiny_bert_dir, toy_triplets, tmp_path):
    from splade_lightning.models import SpladeEncoder
    from splade_lightning.systems import SpladeModule

    plain = SpladeModule(SpladeEncoder(tiny_bert_dir), lr=1e-3)
    trainer(tmp_path, 1).fit(plain, datamodule=datamodule(tiny_bert_dir, toy_triplets))
    with pytest.raises(ConfigError, match=r"step=1.ckpt was trained without a teacher, but --model.init_args.teacher"):
        trainer(tmp_path / "resumed", 2).fit(teacher_module(tiny_bert_dir),
                                             datamodule=datamodule(tiny_bert_dir, toy_triplets),
                                             ckpt_path=str(tmp_path / "step=1.ckpt"))


def test_resuming_with_another_teacher_is_refused(tiny_bert_dir, toy_triplets, tmp_path):
    trainer(tmp_path, 1).fit(teacher_module(tiny_bert_dir), datamodule=datamodule(tiny_bert_dir, toy_triplets))
    other = teacher_module(tiny_bert_dir, shift=0.25)
    source = (tmp_path / "step=1.ckpt").read_bytes()
    with pytest.raises(ConfigError, match=r"Checkpoint .*step=1.ckpt was trained with a teacher whose weights have "
                                          r"sha256 .* resume with the same"):
        trainer(tmp_path / "resumed", 2).fit(other, datamodule=datamodule(tiny_bert_dir, toy_triplets),
                                             ckpt_path=str(tmp_path / "step=1.ckpt"))
    assert (tmp_path / "step=1.ckpt").read_bytes() == source  # refused before anything was written
    assert not list((tmp_path / "resumed").glob("*.ckpt"))


def test_a_checkpoint_with_the_teacher_inside_loads_as_before(tiny_bert_dir):
    """A checkpoint from before the fingerprints holds the teacher's weights: they load as they are; resuming from
    it with another teacher is refused (that resume's checkpoints would record the configured teacher while the run
    distils from the checkpoint's)."""
    from splade_lightning.systems.teacher_checkpoint import restore_teacher_state

    module = teacher_module(tiny_bert_dir)
    legacy = {"state_dict": {key: value.clone() for key, value in module.state_dict().items()}}
    assert any(key.startswith("teacher.") for key in legacy["state_dict"])
    other = teacher_module(tiny_bert_dir, shift=0.25)
    restore_teacher_state(legacy, other.teacher, other._teacher_fingerprint, resuming=False)  # evaluation: kept
    other.load_state_dict(legacy["state_dict"])
    assert torch.equal(other.teacher.mlm.cls.predictions.bias, module.teacher.mlm.cls.predictions.bias)
    with pytest.raises(ConfigError, match="Checkpoint x.ckpt holds the weights of a teacher that differs from the "
                                          "configured --model.init_args.teacher"):
        restore_teacher_state(legacy, teacher_module(tiny_bert_dir, shift=0.25).teacher, None, resuming=True,
                              source="checkpoint x.ckpt")
    same = teacher_module(tiny_bert_dir)
    restore_teacher_state(legacy, same.teacher, same._teacher_fingerprint, resuming=True)  # the same teacher
    same.load_state_dict(legacy["state_dict"])


def test_a_legacy_bf16_checkpoint_matches_its_float32_teacher(tiny_bert_dir):
    """A bf16-true run saved its teacher in bfloat16; the configured float32 teacher, cast, is the same one."""
    from splade_lightning.systems.teacher_checkpoint import restore_teacher_state, same_weights

    module = teacher_module(tiny_bert_dir)
    legacy = {"state_dict": {key: value.to(torch.bfloat16) if value.is_floating_point() else value.clone()
                             for key, value in module.state_dict().items()}}
    restore_teacher_state(legacy, teacher_module(tiny_bert_dir).teacher, None, resuming=True)
    with pytest.raises(ConfigError, match="differs from the configured"):
        restore_teacher_state(legacy, teacher_module(tiny_bert_dir, shift=0.25).teacher, None, resuming=True)
    teacher = module.teacher.state_dict()
    assert not same_weights(teacher, {key: value for key, value in list(teacher.items())[1:]})  # a key missing


def test_the_best_weights_load_without_the_teacher_in_the_checkpoint(tiny_bert_dir, tmp_path):
    """``--final_weights best`` loads a checkpoint into the module outside Lightning's restore."""
    from splade_lightning.tools.final_weights import load_weights

    module = teacher_module(tiny_bert_dir)
    checkpoint = {"state_dict": {key: value.clone() for key, value in module.state_dict().items()}, "global_step": 7}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "best.ckpt")
    with torch.no_grad():
        module.encoder.mlm.cls.predictions.bias.add_(1.0)
    saved = checkpoint["state_dict"]["encoder.mlm.cls.predictions.bias"]
    assert not torch.equal(module.encoder.mlm.cls.predictions.bias, saved)
    assert load_weights(module, str(tmp_path / "best.ckpt")) == 7
    assert torch.equal(module.encoder.mlm.cls.predictions.bias, saved)
