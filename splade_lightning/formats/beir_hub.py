"""BEIR evaluation sets from the HF hub, named ``hf://<owner>/<name>`` wherever a BEIR directory is accepted.

The BEIR hub layout (the one sentence-transformers 6.2 reads in its examples,
``sparse_encoder/evaluation/sparse_information_retrieval.py``): the dataset repository ``<owner>/<name>`` has a
``corpus`` config (split ``corpus``: ``_id``, ``title``, ``text``) and a ``queries`` config (split ``queries``:
``_id``, ``text``); the qrels are a second repository ``<owner>/<name>-qrels`` whose splits (``test``, ``dev``,
``train``) hold ``query-id``, ``corpus-id``, ``score`` rows. Everything goes through :func:`datasets.load_dataset`,
which keeps its own cache (``HF_DATASETS_CACHE``), so a set downloaded once loads offline afterwards. The rows are
validated like a BEIR directory's lines by :mod:`splade_lightning.formats.beir` (which this module does not import)
and held in memory as its ``EvalData``. No torch here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from splade_lightning.errors import ConfigError, DataError

#: how a hub dataset is written where a BEIR directory is expected
HUB_PREFIX = "hf://"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def is_hub_path(path: str | Path) -> bool:
    """Whether an evaluation-set path names a hub dataset (``hf://<owner>/<name>``) rather than a directory."""
    return isinstance(path, str) and path.startswith(HUB_PREFIX)


def hub_repo_id(path: str) -> str:
    """``<owner>/<name>`` of ``hf://<owner>/<name>``.

    Raises:
        ConfigError: the part after ``hf://`` is not of the form ``owner/name``.
    """
    repo_id = path[len(HUB_PREFIX):]
    if not _REPO_ID.fullmatch(repo_id):
        raise ConfigError(f"{path!r}: expected a hub dataset id of the form hf://<owner>/<name>, e.g. hf://BeIR/scifact")
    return repo_id


def hub_source(repo_id: str) -> str:
    """What :func:`datasets.load_dataset` is given for ``repo_id``: the id itself (tests map it to a local copy)."""
    return repo_id


def _load(repo_id: str, config: str | None, split: str | None, path: str):
    """One split (``None``: every split) of a hub dataset, or a :class:`DataError` that names the id and says what to
    do offline."""
    import datasets

    what = f"{repo_id!r}" + (f" (config {config!r}, split {split!r})" if config else "")
    try:
        return datasets.load_dataset(hub_source(repo_id), config, split=split)
    except (ConnectionError, OSError) as e:
        raise DataError(f"cannot load hub dataset {what} through datasets.load_dataset: {e}; the hub is unreachable "
                        "(offline machine, or HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set) and it is not in the datasets "
                        "cache. Load it once where the hub is reachable (it is then cached under HF_DATASETS_CACHE), "
                        "or save it as a BEIR directory and give that directory as the path", path=path) from e
    except Exception as e:  # datasets raises ValueError, DatasetNotFoundError, ... for a wrong id/config/split
        raise DataError(f"cannot load hub dataset {what} through datasets.load_dataset: {type(e).__name__}: {e}; "
                        "expected the BEIR hub layout (configs 'corpus' and 'queries' in <owner>/<name>, qrels "
                        "splits in <owner>/<name>-qrels)", path=path) from e


def _qrels_split(splits, repo_id: str, split: str, path: str):
    """``split`` of the qrels repository; ``dev`` and ``validation`` name the same split (datasets renames a
    ``dev.tsv`` file to the split ``validation``)."""
    for name in (split, {"dev": "validation", "validation": "dev"}.get(split)):
        if name in splits:
            return splits[name]
    raise DataError(f"hub dataset {repo_id!r} has no qrels split {split!r}; its splits are {sorted(splits)}",
                    path=path)


def _columns(dataset, needed: tuple[str, ...], what: str, path: str) -> None:
    missing = [c for c in needed if c not in dataset.column_names]
    if missing:
        raise DataError(f"{what} has no column(s) {missing}; its columns are {dataset.column_names}", path=path)


@dataclass
class HubRows:
    """The three row sets of a hub dataset in the BEIR hub layout, with how errors name each.

    Attributes:
        corpus: rows ``{"_id", "title"?, "text"}``, named ``hf://<owner>/<name>/corpus``.
        queries: rows ``{"_id", "text"}``, named ``hf://<owner>/<name>/queries``.
        qrels: rows ``{"query-id", "corpus-id", "score"}``, named ``hf://<owner>/<name>/qrels/<split>``.
        names: ``{"corpus" | "queries" | "qrels": name}``.
    """

    corpus: Iterable[dict]
    queries: Iterable[dict]
    qrels: Iterable[dict]
    names: dict[str, str]


def hub_rows(path: str, split: str) -> HubRows:
    """Load the rows of ``hf://<owner>/<name>`` (see the module docstring) with :func:`datasets.load_dataset`;
    :func:`~splade_lightning.formats.beir.load_beir_set` validates them.

    Args:
        path: ``hf://<owner>/<name>``.
        split: the qrels split (a split of ``<owner>/<name>-qrels``; ``dev`` also finds ``validation``).

    Raises:
        ConfigError: ``path`` is not ``hf://<owner>/<name>``.
        DataError: the dataset cannot be loaded (offline and not cached, unknown id, config or split) or lacks a
            column.
    """
    repo_id = hub_repo_id(path)
    rows = HubRows(_load(repo_id, "corpus", "corpus", path), _load(repo_id, "queries", "queries", path),
                   _qrels_split(_load(f"{repo_id}-qrels", None, None, path), f"{repo_id}-qrels", split, path),
                   {kind: f"{path}/{kind}" for kind in ("corpus", "queries")} | {"qrels": f"{path}/qrels/{split}"})
    _columns(rows.corpus, ("_id", "text"), rows.names["corpus"], path)
    _columns(rows.queries, ("_id", "text"), rows.names["queries"], path)
    _columns(rows.qrels, ("query-id", "corpus-id", "score"), rows.names["qrels"], path)
    return rows
