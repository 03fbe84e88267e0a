"""Convert classic SMART/Glasgow IR test collections (CACM, MED, LISA, ADI) to the BEIR layout.

Usage: python data/tools/convert_glasgow.py {cacm,med,lisa,adi} RAW_DIR OUT_DIR

RAW_DIR holds the original files (see each data/<name>/README.md for where they come from); OUT_DIR receives
corpus.jsonl, queries.jsonl and qrels/test.tsv. Whitespace is collapsed to single spaces; text is otherwise unchanged
(no lower-casing, no stemming). Relevance is binary in all four collections: every listed pair gets grade 1.
Only queries with at least one judged document are written. Standard library only.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def squash(text: str) -> str:
    return " ".join(text.split())


def smart_records(text: str) -> list[tuple[str, dict[str, str]]]:
    """Records of a SMART file: ``.I <id>`` then ``.<X>`` field markers (.T, .W, .A, .B, .N, .X ...)."""
    records = []
    for block in re.split(r"^\.I\s+", text, flags=re.M)[1:]:
        first, _, rest = block.partition("\n")
        fields: dict[str, list[str]] = {}
        current = None
        for line in rest.split("\n"):
            m = re.match(r"^\.([A-Z])\s*$", line)
            if m:
                current = m.group(1)
                fields.setdefault(current, [])
            elif current is not None:
                fields[current].append(line)
        records.append((first.strip(), {k: squash("\n".join(v)) for k, v in fields.items()}))
    return records


def read(path: Path) -> str:
    return path.read_text(encoding="latin-1").replace("\r", "")


def cacm(raw: Path):
    docs = [(i, f.get("T", ""), f.get("W", ""), {"authors": f.get("A", ""), "bibliography": f.get("B", "")})
            for i, f in smart_records(read(raw / "cacm.all"))]
    queries = [(i, f.get("W", "")) for i, f in smart_records(read(raw / "query.text"))]
    qrels = []
    for line in read(raw / "qrels.text").split("\n"):
        parts = line.split()
        if parts:
            qrels.append((str(int(parts[0])), str(int(parts[1])), 1))
    return docs, queries, qrels


def med(raw: Path):
    docs = [(i, "", f.get("W", ""), {}) for i, f in smart_records(read(raw / "MED.ALL"))]
    queries = [(i, f.get("W", "")) for i, f in smart_records(read(raw / "MED.QRY"))]
    qrels = []
    for line in read(raw / "MED.REL").split("\n"):
        parts = line.split()
        if parts:  # "qid 0 docid 1"
            qrels.append((parts[0], parts[2], 1))
    return docs, queries, qrels


def adi(raw: Path):
    docs = [(i, f.get("T", ""), f.get("W", ""), {"authors": f.get("A", "")})
            for i, f in smart_records(read(raw / "ADI.ALL"))]
    queries = [(i, f.get("W", "")) for i, f in smart_records(read(raw / "ADI.QRY"))]
    qrels = []
    for line in read(raw / "ADI.REL").split("\n"):
        parts = line.split()
        if parts:  # "qid docid 0 0.000000"
            qrels.append((parts[0], parts[1], 1))
    return docs, queries, qrels


LISA_DOC_FILES = ["LISA0.001", "LISA0.501", "LISA1.001", "LISA1.501", "LISA2.001", "LISA2.501", "LISA3.001",
                  "LISA3.501", "LISA4.001", "LISA4.501", "LISA5.001", "LISA5.501", "LISA5.627", "LISA5.850"]


def lisa(raw: Path):
    text = "\n".join(read(raw / name) for name in LISA_DOC_FILES)
    # The original LISA1.501 has a splice error after Document 2001: a headerless fragment of a lost abstract,
    # then Documents 1998-2001 again (identical text); Documents 1993-1997 are absent. No qrels row names a document
    # numbered 1990-2005. We drop the fragment and the exact repeats (checked identical).
    docs, first = [], {}
    for block in re.split(r"^\*{10,}\s*$", text, flags=re.M):
        m = re.match(r"\s*Document\s+(\d+)\s*\n(.*)", block, flags=re.S)
        if not m:
            if block.strip():
                print(f"lisa: dropped a block without a 'Document N' header: {squash(block)[:60]!r}...")
            continue
        title, abstract = re.split(r"\n[ \t]*\n", m.group(2).strip("\n") + "\n\n", maxsplit=1)
        record = (m.group(1), squash(title), squash(abstract), {})
        if record[0] in first:
            if first[record[0]] != record:
                raise ValueError(f"LISA document {record[0]} repeated with different text")
            print(f"lisa: dropped an identical repeat of Document {record[0]}")
            continue
        first[record[0]] = record
        docs.append(record)
    queries = []
    for m in re.finditer(r"^\s*(\d+)\s*\n(.*?)#", read(raw / "LISA.QUE"), flags=re.M | re.S):
        queries.append((m.group(1), squash(m.group(2))))
    # Relevance from LISARJ.NUM (query, count, then that many document numbers; whitespace-separated). The
    # free-text LISA.REL of the same distribution disagrees for queries 21-23 (21: 15 of its 21 documents;
    # 22 and 23: other documents); spot checks of the texts support LISARJ.NUM (e.g. query 22, participative
    # management in public libraries: LISARJ.NUM names document 5699, staff participation in a public library;
    # LISA.REL names 3384, user reactions to PRECIS). The other 32 queries agree exactly.
    numbers = read(raw / "LISARJ.NUM").split()
    qrels, i, lists = [], 0, {}
    while i < len(numbers):
        q, n = numbers[i], int(numbers[i + 1])
        lists[q] = numbers[i + 2:i + 2 + n]
        qrels.extend((q, d, 1) for d in lists[q])
        i += 2 + n
    other = {m.group(1): m.group(2).split() for m in re.finditer(
        r"Query\s+(\d+)\s*\n\s*\d+\s+Relevant Refs:\s*\n(.*?)-1", read(raw / "LISA.REL"), flags=re.S)}
    print("lisa: LISA.REL differs from LISARJ.NUM for queries",
          sorted((q for q in lists if other.get(q) != lists[q]), key=int))
    return docs, queries, qrels


def write(out: Path, docs, queries, qrels) -> None:
    doc_ids = [d[0] for d in docs]
    if len(set(doc_ids)) != len(doc_ids):
        raise ValueError("duplicate document ids")
    known = set(doc_ids)
    query_text = dict(queries)
    missing = [(q, d) for q, d, _ in qrels if d not in known or q not in query_text]
    if missing:
        raise ValueError(f"{len(missing)} qrels rows name an unknown document or query, e.g. {missing[:5]}")
    pairs = sorted(set((q, d) for q, d, _ in qrels), key=lambda p: (int(p[0]), int(p[1])))
    judged = {q for q, _ in pairs}
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for i, title, text, meta in docs:
            f.write(json.dumps({"_id": i, "title": title, "text": text, "metadata": meta}, ensure_ascii=False) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for i, text in queries:
            if i in judged:
                f.write(json.dumps({"_id": i, "text": text}, ensure_ascii=False) + "\n")
    with open(out / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q, d in pairs:
            f.write(f"{q}\t{d}\t1\n")
    print(f"{out}: {len(docs)} docs, {len(judged)} judged queries (of {len(queries)}), {len(pairs)} qrels rows "
          f"({len(qrels) - len(pairs)} duplicate rows dropped)")


def main() -> None:
    name, raw, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    write(out, *{"cacm": cacm, "med": med, "lisa": lisa, "adi": adi}[name](raw))


if __name__ == "__main__":
    main()
