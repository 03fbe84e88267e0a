"""``export --format anserini`` makes a real Lucene impact index that ranks what we rank.

SPLADE-tiny encodes all of data/msmarco-trecdl-5k (5,000 passages, 43 TREC DL 2019 queries) through the CLI. pyserini
then runs the two commands written into ``export_info.json``: it builds a Lucene impact index from the shards and
searches it with ``queries.tsv``. The reference is our exact search over the same integer impacts, read back from the
exported files. Lucene's top 10 must be ours up to ties, with the same integer scores, and nDCG@10 must agree to 4
decimals (about 0.810, as in test_zero_shot.py).

Needs pyserini, pyjnius, faiss-cpu (pyserini's search module imports it) and a JDK that runs pyserini's Anserini jar:
pyserini 0.22.1 ships a Java 11 jar (runs on OpenJDK 17), later releases need Java 21. Skipped when one is missing.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import ir_measures
import pytest
import torch

from splade_lightning.retrieval.exact import exact_search, to_run
from splade_lightning.tools.main import main

pyserini = pytest.importorskip(
    "pyserini", reason="pyserini is not installed (pip install -e '.[lucene]'; see docs/serving.md)")

REPO = Path(__file__).resolve().parents[2]
MSMARCO = REPO / "data" / "msmarco-trecdl-5k"
K = 10
N_DOCS = 5000


def java_major(java: str) -> int | None:
    """Major version of ``java -version`` (8 for ``1.8.0_x``, 17 for ``17.0.15``), or None if it cannot be read."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def jar_java_major() -> int | None:
    """Java release needed by pyserini's bundled Anserini jar: class file major version minus 44."""
    jars = sorted((Path(pyserini.__file__).parent / "resources" / "jars").glob("anserini-*-fatjar.jar"))
    if not jars:
        return None
    with zipfile.ZipFile(jars[-1]) as jar:
        header = jar.read("io/anserini/index/IndexCollection.class")[:8]
    return int.from_bytes(header[6:8], "big") - 44


def missing_requirement() -> str | None:
    """Why pyserini cannot index or search here, or None."""
    for module, hint in (("jnius", "pyjnius"), ("faiss", "faiss-cpu (imported by pyserini.search)")):
        if importlib.util.find_spec(module) is None:
            return f"{hint} is not installed"
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    have, need = java_major(java) if java else None, jar_java_major()
    if need is None:
        return f"no Anserini fat jar inside pyserini {pyserini.__file__}"
    if have is None or have < need:
        found = "no java found (JAVA_HOME or PATH)" if have is None else f"found Java {have}"
        return f"pyserini's Anserini jar needs Java {need}, {found}"
    return None


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _pyserini_ready() -> None:
    """Checked only when a test here runs (not at collection), so the default suite never starts ``java``."""
    reason = missing_requirement()
    if reason is not None:
        pytest.skip(reason)


def run_documented(command: str, cwd: Path, **replace: str) -> str:
    """Run a pyserini command from ``export_info.json`` with this interpreter; return its log."""
    argv = [replace.get(arg, arg) for arg in shlex.split(command)]
    proc = subprocess.run([sys.executable, *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=1200)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    return log


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lucene") / "impacts"
    assert main(["export", "--model", "splade-tiny", "--format", "anserini", "--corpus", str(MSMARCO), "--queries",
                 str(MSMARCO), "--batch_size", "64", "--no_progress", "--output", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def lucene_run(exported) -> dict[str, list[tuple[str, float]]]:
    """``{query id: [(doc id, score), ...]}`` from pyserini's index and search commands, as documented."""
    info = json.loads((exported / "export_info.json").read_text())
    work = exported.parent
    log = run_documented(info["index_command"] + " --threads 1", work, INDEX=str(work / "index"))
    assert f"Total {N_DOCS:,} documents indexed" in log, log[-3000:]
    run_documented(info["search_command"], work, INDEX=str(work / "index"))
    run: dict[str, list[tuple[str, float]]] = {}
    for line in (work / "run.trec").read_text().splitlines():
        query_id, _, doc_id, _, score, _ = line.split()
        run.setdefault(query_id, []).append((doc_id, float(score)))
    return run


@pytest.fixture(scope="module")
def exact_run(exported) -> dict[str, dict[str, float]]:
    """Every document's integer score for every query, from the exported impacts, in our exact search's order.

    Queries are read as pyserini reads them (token counts of ``queries.tsv``); like pyserini, tokens no document has,
    or that every document has (idf log(N/df) = 0, not above its ``--min-idf 0``), are left out."""
    docs = [json.loads(line) for f in sorted(exported.glob("collection/docs-*.jsonl"))
            for line in f.read_text().splitlines()]
    df = Counter(token for doc in docs for token in doc["vector"])
    column = {token: j for j, token in enumerate(df)}
    rows = [i for i, doc in enumerate(docs) for _ in doc["vector"]]
    cols = [column[token] for doc in docs for token in doc["vector"]]
    values = [float(v) for doc in docs for v in doc["vector"].values()]
    doc_reps = torch.sparse_coo_tensor([rows, cols], values, (len(docs), len(column)), check_invariants=True)
    query_ids, query_rows = [], []
    for line in (exported / "queries.tsv").read_text().splitlines():
        query_id, text = line.split("\t")
        row = torch.zeros(len(column))
        for token, count in Counter(text.split()).items():
            if token in column and df[token] < len(docs):
                row[column[token]] = count
        query_ids.append(query_id)
        query_rows.append(row)
    scores, indices = exact_search(torch.stack(query_rows), doc_reps, len(docs))
    return to_run(query_ids, [doc["id"] for doc in docs], scores, indices)


def ndcg10(run: dict[str, dict[str, float]]) -> float:
    with open(MSMARCO / "qrels" / "test.tsv", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    qrels: dict[str, dict[str, int]] = {}
    for query_id, doc_id, grade in rows:
        qrels.setdefault(query_id, {})[doc_id] = int(grade)
    return ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10]


def test_lucene_top10_is_our_exact_top10(lucene_run, exact_run):
    """Same integer scores rank by rank; every hit scores there what it scores here; every document above the 10th
    score is a hit (documents tied at the 10th score may differ: Anserini breaks ties by doc id, we by corpus order)."""
    assert lucene_run.keys() == exact_run.keys() and len(lucene_run) == 43
    for query_id, hits in lucene_run.items():
        ours = list(exact_run[query_id].items())[:K]
        top = hits[:K]
        assert [score for _, score in top] == [score for _, score in ours], query_id
        assert all(exact_run[query_id][doc_id] == score for doc_id, score in top), query_id
        assert {doc for doc, score in ours if score > ours[-1][1]} <= {doc for doc, _ in top}, query_id


def test_lucene_ndcg_equals_ours(lucene_run, exact_run):
    theirs = ndcg10({query_id: dict(hits[:K]) for query_id, hits in lucene_run.items()})
    ours = ndcg10({query_id: dict(list(run.items())[:K]) for query_id, run in exact_run.items()})
    assert theirs == pytest.approx(ours, abs=5e-5)
    assert ours == pytest.approx(0.8096, abs=0.005)  # the float model's nDCG@10 (test_zero_shot.py)
