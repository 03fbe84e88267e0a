"""Convert the SMART/Glasgow TIME collection (TIME magazine world-news articles, 1963) to the BEIR layout.

Usage: python data/tools/convert_time.py RAW_DIR OUT_DIR

RAW_DIR holds TIME.ALL, TIME.QUE and TIME.REL (see data/time/README.md for where they come from); OUT_DIR receives
corpus.jsonl, queries.jsonl and qrels/test.tsv. Whitespace is collapsed to single spaces; text is otherwise unchanged
(upper case as in the original). Relevance is binary: every listed pair gets grade 1. Only queries with at least one
judged document are written. Standard library only.

Document ids. TIME.ALL opens each article with a header ``*TEXT nnn mm/dd/yy PAGE ppp``; ``nnn`` runs from 017 to
563 with gaps. The corpus uses ``nnn`` (without leading zeros) as ``_id``. TIME.REL does not use ``nnn``: it numbers
the articles by their position (1-based) in the original 425-article file. The copies of TIME.ALL found on GitHub
hold 423 articles: two articles are missing between the articles at original positions 370 (``*TEXT 498``) and 380
(``*TEXT 511``). So TIME.REL's number ``n`` is the article at position ``n`` of this file for ``n <= 370`` and at
position ``n - 2`` for ``n >= 380``; no TIME.REL row names a number from 371 to 379 (checked below). Evidence (see the
README): with this mapping every judged article from 380 on is about its query (query 7, Sihanouk's rejection of U.S.
aid, gets the two Cambodia articles ``*TEXT 519`` and ``*TEXT 544``; without the shift it would get Iraq and Kenya).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from convert_glasgow import read, squash, write  # same folder: run as `python data/tools/convert_time.py`

LAST_BEFORE_GAP = 370  # TIME.REL numbers up to here are positions in this file
FIRST_AFTER_GAP = 380  # TIME.REL numbers from here on are positions + 2
MISSING = 2


def articles(text: str) -> list[tuple[str, str, dict[str, str]]]:
    docs = []
    for block in re.split(r"^\*TEXT\s+", text, flags=re.M)[1:]:
        header, _, body = block.partition("\n")
        number = header.split()[0]
        date = re.search(r"\d\d/\d\d/\d\d", header)
        page = re.search(r"PAGE\s+(\d+)", header)
        body = re.sub(r"^\*STOP\s*$", "", body, flags=re.M)
        meta = {"text_number": number, "date": date.group(0) if date else "", "page": page.group(1) if page else ""}
        docs.append((str(int(number)), squash(body), meta))
    return docs


def queries_of(text: str) -> list[tuple[str, str]]:
    return [(str(int(m.group(1))), squash(m.group(2)))
            for m in re.finditer(r"^\*FIND\s+(\d+)\s*\n(.*?)(?=^\*FIND|^\*STOP|\Z)", text, flags=re.M | re.S)]


def relevance(text: str) -> list[tuple[str, int]]:
    pairs = []
    for line in text.split("\n"):
        parts = line.split()
        if parts:  # "qid n1 n2 ..." (n = position in the original 425-article file)
            pairs.extend((str(int(parts[0])), int(n)) for n in parts[1:])
    return pairs


def convert(raw: Path, out: Path) -> None:
    docs = articles(read(raw / "TIME.ALL"))
    queries = queries_of(read(raw / "TIME.QUE"))
    pairs = relevance(read(raw / "TIME.REL"))
    if len(docs) != 425 - MISSING:
        raise ValueError(f"expected {425 - MISSING} articles, found {len(docs)}")
    ambiguous = [(q, n) for q, n in pairs if LAST_BEFORE_GAP < n < FIRST_AFTER_GAP]
    if ambiguous:
        raise ValueError(f"TIME.REL names articles inside the gap: {ambiguous}")
    ids = [d[0] for d in docs]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate *TEXT numbers")
    qrels = sorted({(q, ids[n - 1 if n <= LAST_BEFORE_GAP else n - 1 - MISSING]) for q, n in pairs},
                   key=lambda p: (int(p[0]), int(p[1])))
    query_text = dict(queries)
    unknown = [q for q, _ in qrels if q not in query_text]
    if unknown:
        raise ValueError(f"qrels name unknown queries {unknown}")
    # the BEIR writer of the Glasgow converter: title "", grade 1, only judged queries (its checks pass here)
    write(out, [(i, "", text, meta) for i, text, meta in docs], queries, [(q, d, 1) for q, d in qrels])

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
