"""Lightning callbacks and plugins."""

from .checkpoint_io import AtomicCheckpointIO
from .regularizer_warmup import RegularizerWarmup, warmup_factor
from .sparsity_monitor import SparsityMonitor

__all__ = ["AtomicCheckpointIO", "RegularizerWarmup", "SparsityMonitor", "warmup_factor"]
