"""Teacher scores for distillation: sparse, dense and cross-encoder teachers, and OpenSearch-style ensembles (the
normalisation and ensembling math is pure numpy in :mod:`splade_lightning.scoring.ensemble`). The command line is
``splade-lightning score`` (:mod:`splade_lightning.tools.score`)."""

from splade_lightning.scoring.ensemble import MINMAX_EPS, ensemble_scores, minmax_normalize
from splade_lightning.scoring.groups import Group, load_inputs, read_groups
from splade_lightning.scoring.teachers import TeacherSpec, load_teacher, parse_teacher_spec

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
