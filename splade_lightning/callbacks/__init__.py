"""Lightning callbacks and plugins."""

from splade_lightning.callbacks.checkpoint_io import AtomicCheckpointIO
from splade_lightning.callbacks.collapse_guard import CollapseGuard
from splade_lightning.callbacks.exact_resume import ExactResume
from splade_lightning.callbacks.expansion_logger import ExpansionLogger
from splade_lightning.callbacks.regularizer_warmup import RegularizerWarmup, warmup_factor
from splade_lightning.callbacks.selection_criterion import SelectionCriterion
from splade_lightning.callbacks.sparsity_controller import SparsityController
from splade_lightning.callbacks.sparsity_monitor import SparsityMonitor

__all__ = [
    "AtomicCheckpointIO", "CollapseGuard", "ExactResume", "ExpansionLogger", "RegularizerWarmup",
    "SelectionCriterion", "SparsityController", "SparsityMonitor", "warmup_factor",
]
