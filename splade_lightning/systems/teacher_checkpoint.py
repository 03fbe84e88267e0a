"""A frozen teacher's weights stay out of training checkpoints; a fingerprint of them goes in instead.

``SpladeModule(teacher=...)`` (embedding distillation with ``EmbeddingMSELoss``) holds the teacher as a submodule, so
Lightning would write its weights into every step checkpoint although they never change and are re-loaded from the
configured teacher whenever the run is rebuilt: for a teacher the size of the student, a quarter of each checkpoint
(student weights and AdamW's two moments are the other three). Instead:

- :func:`drop_teacher_state` (``on_save_checkpoint``) removes the ``teacher.`` entries from the checkpoint's state
  dict and records the sha256 of the teacher's weights (:func:`teacher_fingerprint`, taken when the module is built)
  in the checkpoint's ``splade_lightning`` payload;
- :func:`restore_teacher_state` (``on_load_checkpoint``, which Lightning calls before it loads the state dict)
  refuses, when ``fit`` resumes, a configured teacher whose weights differ from the recorded ones (training would
  silently distil from another teacher) or a checkpoint trained without one, then puts the configured teacher's
  weights back so that the strict state-dict load succeeds.

Checkpoints written before this change still hold the teacher's weights. They load as they are, except that resuming
``fit`` from one compares those weights with the configured teacher's (:func:`same_weights`) and refuses a different
teacher, as for a fingerprint: otherwise the resumed run would distil from the checkpoint's teacher while recording the
configured one's fingerprint, and its next resume would silently switch to the configured teacher.
"""

from __future__ import annotations

import torch
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.formats.fingerprints import state_fingerprint

PREFIX = "teacher."
KEY = "teacher_fingerprint"  # in checkpoint["splade_lightning"]


def teacher_fingerprint(teacher: nn.Module | None) -> str | None:
    """sha256 of the teacher's weights (its state dict), or None without a teacher. Take it when the module is built:
    a ``*-true`` precision converts the teacher (dtype and bytes) after that, but before a checkpoint is restored."""
    return None if teacher is None else state_fingerprint(teacher.state_dict())


def drop_teacher_state(checkpoint: dict, fingerprint: str | None) -> None:
    """Remove the teacher's ``teacher.*`` tensors from ``checkpoint["state_dict"]`` and record ``fingerprint``
    (:func:`teacher_fingerprint` of the configured teacher; None: no teacher, nothing to do)."""
    if fingerprint is None:
        return
    state = checkpoint.get("state_dict", {})
    for key in [key for key in state if key.startswith(PREFIX)]:
        del state[key]
    checkpoint.setdefault("splade_lightning", {})[KEY] = fingerprint


def same_weights(current: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]) -> bool:
    """Whether two state dicts hold the same tensors, each pair compared bitwise in the narrower of their two float
    dtypes: a teacher saved by a ``bf16-true`` run equals its float32 original cast to bfloat16."""
    if current.keys() != saved.keys():
        return False
    for key, a in current.items():
        b = saved[key]
        if a.shape != b.shape:
            return False
        if a.dtype != b.dtype and a.is_floating_point() and b.is_floating_point():
            narrow = a.dtype if a.element_size() <= b.element_size() else b.dtype
            a, b = a.to(narrow), b.to(narrow)
        if not torch.equal(a.cpu(), b.cpu()):
            return False
    return True


def restore_teacher_state(checkpoint: dict, teacher: nn.Module | None, fingerprint: str | None, resuming: bool,
                          source: str = "the checkpoint") -> None:
    """Put the configured teacher's weights into a checkpoint written by :func:`drop_teacher_state`.

    Args:
        checkpoint: a loaded Lightning checkpoint (modified in place).
        teacher: the module's teacher (``None``: nothing to do).
        fingerprint: :func:`teacher_fingerprint` of ``teacher``, taken when the module was built.
        resuming: training continues from the checkpoint (``fit``), so its teacher must be the configured one;
            evaluation (``validate``/``test``) never uses the teacher and only gets its weights back.
        source: how to name the checkpoint in an error (its path when known).

    Raises:
        ConfigError: when ``resuming``, the checkpoint was trained with a teacher whose weights differ from the
            configured teacher's (by fingerprint, or by the weights a checkpoint from before this change holds), or
            without a teacher.
    """
    state = checkpoint.get("state_dict")
    if teacher is None or state is None:
        return
    name = source[0].upper() + source[1:]
    inside = {key[len(PREFIX):]: value for key, value in state.items() if key.startswith(PREFIX)}
    if inside:  # a checkpoint from before this change holds its teacher's weights: they load as they are
        if resuming and not same_weights(teacher.state_dict(), inside):
            raise ConfigError(f"{name} holds the weights of a teacher that differs from the configured "
                              "--model.init_args.teacher; resume with the same teacher, or start a new run (a fresh "
                              "--trainer.default_root_dir) to distil from this one")
        return
    recorded = (checkpoint.get("splade_lightning") or {}).get(KEY)
    if resuming and recorded is None:
        raise ConfigError(f"{name} was trained without a teacher, but --model.init_args.teacher is set; resume "
                          "without it, or start a new run (a fresh --trainer.default_root_dir) to distil from it")
    if resuming and recorded != fingerprint:
        raise ConfigError(f"{name} was trained with a teacher whose weights have sha256 {recorded[:12]}..., but the "
                          f"configured --model.init_args.teacher has {fingerprint[:12]}...; resume with the same "
                          "teacher, or start a new run (a fresh --trainer.default_root_dir) to distil from this one")
    state.update({PREFIX + key: value for key, value in teacher.state_dict().items()})
