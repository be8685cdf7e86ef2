"""Shared data for the scale benchmarks: real BBC passage vectors and texts, scaled up synthetically.

Real part: an index of the BBC News articles built by ``rag ingest`` (the jsonl, or the .txt
files bench/bench_ingest.py writes: about 5.7k passages of up to 1,100 characters with the default
settings; all-MiniLM-L6-v2 vectors). Larger sizes repeat the real vectors with Gaussian noise
(a noise vector of norm ``NOISE_NORM``, then renormalised: cosine ~0.89 to the original, about what
near-duplicate passages reach) and repeat the passage texts for BM25. Queries are real text: BBC
article titles embedded with the same model (their articles are in the collection, as a user's
question would be about them).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BBC = Path(__file__).resolve().parents[2] / "shared/eval/bbc-news/bbc_news.jsonl"
NOISE_NORM = 0.5


def load_real(index_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """(vectors, rowids, passage texts, snapshot path) of the committed BBC index."""
    from rag.store.folder import IndexStore
    from rag.store.reader import IndexReader
    from rag.store.vectors import ids_of, reconstruct_many

    reader = IndexReader(IndexStore(index_dir))
    ids = np.sort(ids_of(reader._snap.vectors))
    vecs = reconstruct_many(reader._snap.vectors, ids)
    rows = reader.passages([int(i) for i in ids])
    texts = [rows[int(i)][0].text for i in ids]
    return vecs, ids, texts, str(reader._snap.path)


def titles(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = BBC.read_text(encoding="utf-8").splitlines()
    pick = rng.choice(len(lines), size=min(n, len(lines)), replace=False)
    return [json.loads(lines[i])["title"] for i in pick]


def scaled(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors: the real ones first, then noisy copies of them (float32)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), np.float32)
    m = min(n, len(real))
    out[:m] = real[:m]
    step = 200_000
    for start in range(m, n, step):
        end = min(n, start + step)
        src = real[np.arange(start, end) % len(real)]
        noise = rng.standard_normal(src.shape).astype(np.float32)
        noise *= NOISE_NORM / np.linalg.norm(noise, axis=1, keepdims=True)
        block = src + noise
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:end] = block
    return out


def percentiles(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs) * 1000
    return float(np.median(a)), float(np.percentile(a, 95))


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


class Timer:
    def __enter__(self) -> Timer:
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.perf_counter() - self.t


def build_scaled_index(real_dir: Path, n: int, out_dir: Path, exact_max: int = 200_000) -> Path:
    """An index folder of ``n`` passages made from the real BBC index: articles repeated (ids and
    sources suffixed ``#rN``) with their texts, noisy copies of their vectors, and the same BM25
    tokens. Committed like a real one (manifest, checksums); the vector index is what
    ``maybe_upgrade`` makes of it. Returns ``out_dir``; reused when it already holds ``n``."""
    import sqlite3

    from rag.ingest.pipeline import embedding_text
    from rag.store.folder import SCHEMA, IndexStore, Manifest, new_staging, write_snapshot_files
    from rag.store.lexical import LexicalIndex
    from rag.store.reader import IndexReader
    from rag.store.vectors import VectorPolicy, maybe_upgrade, new_index, reconstruct_many
    from rag.text.tokens import tokenize

    store = IndexStore(out_dir)
    if store.exists() and Manifest.read(store.current_snapshot()).chunks == n:
        return out_dir
    reader = IndexReader(IndexStore(real_dir))
    articles = reader.list_articles()
    src = reader._snap.db
    rows = src.execute(
        'SELECT rowid, id, article_id, ordinal, start, "end", embed_hash FROM chunks '
        "ORDER BY article_id, ordinal"
    ).fetchall()
    by_article: dict[str, list[sqlite3.Row]] = {}
    for r in rows:
        by_article.setdefault(r["article_id"], []).append(r)
    real_ids = np.array([r["rowid"] for r in rows], np.int64)
    real_vecs = reconstruct_many(reader._snap.vectors, real_ids)
    full = {a["id"]: reader.article(a["id"]) for a in articles}
    tokens = [
        tokenize(
            embedding_text(
                full[r["article_id"]].title, full[r["article_id"]].text[r["start"] : r["end"]]
            )
        )
        for r in rows
    ]
    with store.write_lock():
        staging = new_staging(store)
        db = sqlite3.connect(staging / "meta.sqlite")
        db.executescript(SCHEMA)
        vectors = new_index(real_vecs.shape[1])
        lexical = LexicalIndex()
        rowid, rep, now = 0, 0, time.time()
        while rowid < n:
            art_rows, chunk_rows = [], []
            for article_id in by_article:  # the order of ``rows``, so chunk i is real row i
                if rowid >= n:
                    break
                art = full[article_id]
                aid = art.id if rep == 0 else f"{art.id}#r{rep}"
                source = art.source if rep == 0 else f"{art.source}#r{rep}"
                art_rows.append((aid, source, art.title, art.text, art.date, None, None, None, now))
                for r in by_article[article_id]:
                    if rowid >= n:
                        break
                    rowid += 1
                    chunk_rows.append(
                        (
                            rowid,
                            f"{r['id']}#r{rep}",
                            aid,
                            r["ordinal"],
                            r["start"],
                            r["end"],
                            r["embed_hash"],
                        )
                    )
            db.executemany(
                "INSERT INTO articles (id, source, title, text, date, author, url, site, added_at) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                art_rows,
            )
            db.executemany(
                "INSERT INTO sources (source, article_id, root) VALUES (?,?,NULL)",
                [(s, a) for a, s, *_ in art_rows],
            )
            db.executemany(
                'INSERT INTO chunks (rowid, id, article_id, ordinal, start, "end", embed_hash) '
                "VALUES (?,?,?,?,?,?,?)",
                chunk_rows,
            )
            m = len(chunk_rows)
            ids = np.array([c[0] for c in chunk_rows], np.int64)
            # Rows of one replica follow the real rows' order: row i of the replica is real row i.
            vecs = real_vecs[:m] if rep == 0 else _noisy(real_vecs[:m], rep)
            vectors.add_with_ids(vecs, ids)
            lexical.add_tokens(ids, tokens[:m])
            rep += 1
        db.commit()
        vectors = maybe_upgrade(vectors, VectorPolicy(exact_max=exact_max))
        write_snapshot_files(staging, db, vectors, lexical, reader.manifest.model_id)
        store.publish(staging)
    return out_dir


def scaled_vectors(real_dir: Path, n: int) -> np.ndarray:
    """The float32 vectors ``build_scaled_index`` gives rowids 1..n, in rowid order."""
    from rag.store.folder import IndexStore
    from rag.store.reader import IndexReader
    from rag.store.vectors import reconstruct_many

    reader = IndexReader(IndexStore(real_dir))
    real_ids = np.array(
        [
            r[0]
            for r in reader._snap.db.execute(
                "SELECT rowid FROM chunks ORDER BY article_id, ordinal"
            )
        ],
        np.int64,
    )
    real_vecs = reconstruct_many(reader._snap.vectors, real_ids)
    parts, done, rep = [], 0, 0
    while done < n:
        m = min(len(real_vecs), n - done)
        parts.append(real_vecs[:m] if rep == 0 else _noisy(real_vecs[:m], rep))
        done, rep = done + m, rep + 1
    return np.concatenate(parts)


def _noisy(src: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(src.shape).astype(np.float32)
    noise *= NOISE_NORM / np.linalg.norm(noise, axis=1, keepdims=True)
    out = src + noise
    return out / np.linalg.norm(out, axis=1, keepdims=True)
