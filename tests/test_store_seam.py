"""The store seam holds: outside rag/store (and the benchmarks) nothing names the engine underneath.

Everything else reaches the index through rag.store.base (Store, StoreReader, StoreWriter,
NewArticle, open_store), so another backend plugs in without touching the pipeline, the
retriever, the answerers, the CLI or the page.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
# Engine names and the local backend's internals: FAISS, SQLite (and its rowids), the BM25
# arrays and their files, the segment layout; Milvus and its client.
BANNED = re.compile(
    r"faiss|sqlite|rowid|LexicalIndex|lexical_files|postings|doc_ptr|term_ids|segment|milvus",
    re.IGNORECASE,
)
# Only the interface module of rag.store may be imported from outside the package.
STORE_IMPORT = re.compile(
    r"^\s*(from\s+rag\.store(?!\.base\b)(\.\w+)?\s+import|import\s+rag\.store|from\s+rag\s+import\s+store)"
)


def outside_files() -> list[Path]:
    files = [ROOT / "app.py", *ROOT.glob("ui/**/*.py"), *ROOT.glob("embeddings/**/*.py")]
    files += [p for p in ROOT.glob("rag/**/*.py") if "store" not in p.relative_to(ROOT).parts]
    return sorted(files)


def test_nothing_outside_the_store_names_its_engine() -> None:
    found = []
    for path in outside_files():
        # The settings describe the local store's knobs (segments, merges) in words; they are
        # passed to the store, never used outside it.
        words = path != ROOT / "rag" / "settings.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if (words and BANNED.search(line)) or STORE_IMPORT.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_check_would_catch_a_leak() -> None:
    for line in (
        "import faiss",
        "from rag.store.reader import IndexReader",
        "db = sqlite3.connect(path)",
        "reader._view.segments",
        "from rag.store import vectors",
        "from pymilvus import MilvusClient",
    ):
        assert BANNED.search(line) or STORE_IMPORT.search(line), line
    assert not (
        BANNED.search("from rag.store.base import open_store")
        or STORE_IMPORT.search("from rag.store.base import open_store")
    )
    assert len(outside_files()) > 20
