"""Lightning callbacks and plugins."""

from .checkpoint_io import AtomicCheckpointIO
from .collapse_guard import CollapseGuard
from .exact_resume import ExactResume
from .expansion_logger import ExpansionLogger
from .regularizer_warmup import RegularizerWarmup, warmup_factor
from .sparsity_controller import SparsityController
from .sparsity_monitor import SparsityMonitor

__all__ = [
    "AtomicCheckpointIO", "CollapseGuard", "ExactResume", "ExpansionLogger", "RegularizerWarmup",
    "SparsityController", "SparsityMonitor", "warmup_factor",
]
