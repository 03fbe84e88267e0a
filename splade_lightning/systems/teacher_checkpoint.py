"""A frozen teacher's weights stay out of training checkpoints; a fingerprint of them goes in instead.

``SpladeModule(teacher=...)`` (embedding distillation with ``EmbeddingMSELoss``) holds the teacher as a submodule, so
Lightning would write its weights into every step checkpoint although they never change and are re-loaded from the
configured teacher whenever the run is rebuilt: for a teacher the size of the student, a quarter of each checkpoint
(student weights and AdamW's two moments are the other three). Instead:

- :func:`drop_teacher_state` (``on_save_checkpoint``) removes the ``teacher.`` entries from the checkpoint's state
  dict and records the sha256 of the teacher's weights (:func:`~splade_lightning.formats.fingerprints.
  state_fingerprint`) in the checkpoint's ``splade_lightning`` payload;
- :func:`restore_teacher_state` (``on_load_checkpoint``, which Lightning calls before it loads the state dict)
  refuses a configured teacher whose weights differ from the recorded ones (resuming would silently distil from
  another teacher), then puts the configured teacher's weights back so that the strict state-dict load succeeds.

Checkpoints written before this change still hold the teacher's weights; they load as before.
"""

from __future__ import annotations

from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.formats.fingerprints import state_fingerprint

PREFIX = "teacher."
KEY = "teacher_fingerprint"  # in checkpoint["splade_lightning"]


def teacher_fingerprint(teacher: nn.Module) -> str:
    """sha256 of the teacher's weights (its state dict), cached on the module: a frozen teacher never changes."""
    cached = getattr(teacher, "_splade_lightning_fingerprint", None)
    if cached is None:
        cached = state_fingerprint(teacher.state_dict())
        teacher._splade_lightning_fingerprint = cached
    return cached


def drop_teacher_state(checkpoint: dict, teacher: nn.Module | None) -> None:
    """Remove the teacher's ``teacher.*`` tensors from ``checkpoint["state_dict"]`` and record their fingerprint."""
    if teacher is None:
        return
    state = checkpoint.get("state_dict", {})
    for key in [key for key in state if key.startswith(PREFIX)]:
        del state[key]
    checkpoint.setdefault("splade_lightning", {})[KEY] = teacher_fingerprint(teacher)


def restore_teacher_state(checkpoint: dict, teacher: nn.Module | None, source: str = "the checkpoint") -> None:
    """Put the configured teacher's weights into a checkpoint written by :func:`drop_teacher_state`.

    Args:
        checkpoint: a loaded Lightning checkpoint (modified in place).
        teacher: the module's teacher (``None``: nothing to do).
        source: how to name the checkpoint in an error (its path when known).

    Raises:
        ConfigError: the checkpoint records a teacher whose weights differ from the configured teacher's.
    """
    state = checkpoint.get("state_dict")
    if teacher is None or state is None or any(key.startswith(PREFIX) for key in state):
        return  # no teacher, or a checkpoint that still holds its teacher's weights (loaded as they are)
    recorded = (checkpoint.get("splade_lightning") or {}).get(KEY)
    current = teacher_fingerprint(teacher)
    if recorded is not None and recorded != current:
        raise ConfigError(f"{source[0].upper()}{source[1:]} was trained with a teacher whose weights have sha256 "
                          f"{recorded[:12]}..., but the configured --model.init_args.teacher has {current[:12]}...; "
                          "resume with the same teacher, or start a new run (a fresh --trainer.default_root_dir) to "
                          "distil from this one")
    state.update({PREFIX + key: value for key, value in teacher.state_dict().items()})
