"""``python -m splade_lightning score``: teacher scores (one teacher or an OpenSearch-style ensemble) for
distillation. The normalisation / ensembling math is pure numpy in :mod:`.ensemble`."""

from .ensemble import MINMAX_EPS, ensemble_scores, minmax_normalize
from .io import Group, load_inputs, read_groups
from .teachers import TeacherSpec, load_teacher, parse_teacher_spec

__all__ = [
    "MINMAX_EPS",
    "Group",
    "TeacherSpec",
    "ensemble_scores",
    "load_inputs",
    "load_teacher",
    "minmax_normalize",
    "parse_teacher_spec",
    "read_groups",
]
