"""Convert the statute-retrieval task of the FIRE 2019 AILA track (Indian law) to the BEIR layout.

Usage: python data/tools/convert_aila.py RAW_DIR OUT_DIR

RAW_DIR is the ``AILA_2019_dataset`` folder (``Object_statutes/S<n>.txt``, ``Query_doc.txt``,
``relevance_judgments_statutes.txt``; see data/aila-statutes/README.md for where it comes from). OUT_DIR receives
corpus.jsonl, queries.jsonl and qrels/test.tsv.

- corpus: one record per statute file; ``_id`` ``S<n>``, ``title`` from the ``Title:`` line, ``text`` from the
  ``Desc:`` line.
- queries: ``AILA_Q<n>||<text>`` lines of Query_doc.txt.
- qrels: ``<query> Q0 <statute> <0|1>`` rows, kept with their grade (0 = judged not relevant, 1 = relevant). Rows
  that name a statute without a file are dropped (and counted); queries without a relevant statute are dropped.
Whitespace is collapsed to single spaces; text is otherwise unchanged. Standard library only.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def squash(text: str) -> str:
    return " ".join(text.split())


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="strict").replace("\r", "")


def convert(raw: Path, out: Path) -> None:
    docs = []
    for path in sorted((raw / "Object_statutes").glob("S*.txt"), key=lambda p: int(p.stem[1:])):
        text = read(path)
        title = re.search(r"^Title:\s*(.*)$", text, flags=re.M)
        desc = re.search(r"^Desc:\s*(.*)", text, flags=re.M | re.S)
        if not title or not desc:
            raise ValueError(f"{path.name}: expected 'Title:' and 'Desc:' lines")
        docs.append((path.stem, squash(title.group(1)), squash(desc.group(1))))
    known = {d[0] for d in docs}
    queries = []
    for line in read(raw / "Query_doc.txt").split("\n"):
        if line.strip():
            qid, _, text = line.partition("||")
            queries.append((qid.strip(), squash(text)))
    query_ids = {q for q, _ in queries}
    rows, dropped = {}, []
    for line in read(raw / "relevance_judgments_statutes.txt").split("\n"):
        parts = line.split()
        if not parts:
            continue
        qid, _, did, grade = parts
        if qid not in query_ids:
            raise ValueError(f"unknown query {qid}")
        if did not in known:
            dropped.append((qid, did, grade))
            continue
        if (qid, did) in rows and rows[(qid, did)] != int(grade):
            raise ValueError(f"conflicting judgments for {(qid, did)}")
        rows[(qid, did)] = int(grade)
    judged = {q for (q, _), g in rows.items() if g >= 1}
    qnum = lambda q: int(q.rsplit("Q", 1)[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for i, title, text in docs:
            f.write(json.dumps({"_id": i, "title": title, "text": text}, ensure_ascii=False) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for i, text in queries:
            if i in judged:
                f.write(json.dumps({"_id": i, "text": text}, ensure_ascii=False) + "\n")
    kept = sorted(((q, d, g) for (q, d), g in rows.items() if q in judged), key=lambda r: (qnum(r[0]), int(r[1][1:])))
    with open(out / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q, d, g in kept:
            f.write(f"{q}\t{d}\t{g}\n")
    positives = sum(1 for r in kept if r[2] >= 1)
    print(f"aila-statutes: {len(docs)} statutes, {len(judged)} of {len(queries)} queries with a relevant statute, "
          f"{len(kept)} qrels rows ({positives} relevant); dropped {len(dropped)} rows naming a statute without a "
          f"file: {sorted(set((d, g) for _, d, g in dropped))}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
