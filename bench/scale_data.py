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

# The BBC articles (titles are the queries); bench scripts take --bbc to point elsewhere.
BBC = Path(__file__).resolve().parents[2] / "shared/eval/bbc-news/bbc_news.jsonl"
NOISE_NORM = 0.5


def _real(index_dir: Path):  # type: ignore[no-untyped-def]
    """The committed BBC index's reader and its passages in (article, ordinal) order."""
    from rag.store.local import LocalStore

    reader = LocalStore(index_dir).reader()
    rows = reader._view.query(  # type: ignore[attr-defined]
        'SELECT pid, id, article_id, ordinal, start, "end", embed_hash FROM chunks '
        "ORDER BY article_id, ordinal"
    )
    return reader, rows


def load_real(index_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """(vectors, passage ids, passage texts, index folder) of the committed BBC index."""
    reader, rows = _real(index_dir)
    ids = np.array(sorted(r["pid"] for r in rows), np.int64)
    vecs = reader.vectors_for(ids)
    found = reader.passages([int(i) for i in ids])
    texts = [found[int(i)][0].text for i in ids]
    return vecs, ids, texts, str(index_dir)


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
    sources suffixed ``#rN``) with their texts and band keys, noisy copies of their vectors, and
    the same BM25 terms, as one segment (a trained IVF-SQ8 index above ``exact_max``). Replicas
    are not put in near-duplicate groups (so that queries cost what they did before groups of
    hundreds of copies existed). Returns ``out_dir``; reused when it already holds ``n``."""
    import shutil
    import sqlite3

    import scipy.sparse as sp

    from rag.ingest.pipeline import embedding_text
    from rag.store import rows as rowdb
    from rag.store.lexical import LexicalBuilder, LexicalSegment
    from rag.store.segment import segment_name, write_segment
    from rag.store.vectors import VectorPolicy, build_ivf, new_index
    from rag.text.minhash import band_keys, sketch_texts
    from rag.text.tokens import tokenize

    if (out_dir / "rows.sqlite").is_file():  # read the count, not the index (this process forks)
        db = sqlite3.connect(out_dir / "rows.sqlite")
        done = db.execute("SELECT value FROM meta WHERE key = 'passages'").fetchone()
        db.close()
        if done is not None and int(done[0]) == n:
            return out_dir
    reader, real_rows = _real(real_dir)
    full = {a["id"]: reader.article(a["id"]) for a in reader.list_articles()}
    order = list(full)
    by_article: dict[str, list[sqlite3.Row]] = {}
    for r in real_rows:
        by_article.setdefault(r["article_id"], []).append(r)
    real_rows = [r for aid in order for r in by_article.get(aid, [])]  # chunk i: real row i
    builder = LexicalBuilder()
    builder.add([tokenize(embedding_text(full[r["article_id"]].title,
                 full[r["article_id"]].text[r["start"] : r["end"]])) for r in real_rows])  # fmt: skip
    real_lex = builder.build(np.arange(len(real_rows)))
    real_csr, real_len = real_lex.rows_matrix(), real_lex.doc_len
    sketches = sketch_texts([full[a].text for a in order])
    keys = band_keys(np.stack([s.signature for s in sketches]))
    meta = rowdb.read_meta(reader._view.db)  # type: ignore[attr-defined]

    staging = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    db = sqlite3.connect(staging / "rows.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(rowdb.SCHEMA)
    db.execute("BEGIN")
    pid, rep, num, now = 0, 0, 0, time.time()
    lsh: list[np.ndarray] = []
    while pid < n:
        art_rows, chunk_rows = [], []
        for j, aid in enumerate(order):
            if pid >= n:
                break
            art, num = full[aid], num + 1
            rid = aid if rep == 0 else f"{aid}#r{rep}"
            source = art.source if rep == 0 else f"{art.source}#r{rep}"
            has_keys = len(sketches[j].shingles) > 0
            art_rows.append((num, rid, source, art.title, art.text, art.date, None, None, None,
                             keys[j].tobytes() if has_keys else None, now))  # fmt: skip
            if has_keys:
                lsh.append(np.stack([keys[j], np.full(len(keys[j]), num)], axis=1))
            for r in by_article.get(aid, []):
                if pid >= n:
                    break
                pid += 1
                chunk_rows.append((pid, f"{r['id']}#r{rep}", rid, r["ordinal"], r["start"],
                                   r["end"], r["embed_hash"]))  # fmt: skip
        db.executemany(
            "INSERT INTO articles (num, id, source, title, text, date, author, url, site, bands, "
            "added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            art_rows,
        )
        db.executemany("INSERT INTO sources (source, article_id, root) VALUES (?,?,NULL)",
                       [(a[2], a[1]) for a in art_rows])  # fmt: skip
        db.executemany(
            'INSERT INTO chunks (pid, id, article_id, ordinal, start, "end", embed_hash) '
            "VALUES (?,?,?,?,?,?,?)",
            chunk_rows,
        )
        rep += 1
    pairs = np.concatenate(lsh)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]  # key order: B-tree appends
    for lo in range(0, len(pairs), 1 << 20):
        db.executemany("INSERT OR IGNORE INTO lsh (key, art) VALUES (?, ?)",
                       pairs[lo : lo + (1 << 20)].tolist())  # fmt: skip
    del lsh, pairs
    ids = np.arange(1, n + 1, dtype=np.int64)
    vectors = scaled_vectors(real_dir, n)
    if n > exact_max:
        index = build_ivf(vectors, ids, VectorPolicy(exact_max=exact_max))
    else:
        index = new_index(vectors.shape[1])
        index.add_with_ids(vectors, ids)
    del vectors
    reps = -(-n // len(real_rows))
    tiled = sp.vstack([real_csr] * reps, format="csr")[:n]
    lexical = LexicalSegment.from_rows(real_lex.terms, tiled, np.tile(real_len, reps)[:n])
    del tiled
    info = write_segment(staging / "segments", segment_name(1), ids, index, lexical)
    db.execute("INSERT INTO segments VALUES (?,?,?,?,?,?,?)", info.row())
    rowdb.write_meta(db, {
        "format": str(rowdb.FORMAT), "model_id": meta["model_id"], "dimension": meta["dimension"],
        "generation": 1, "next_pid": n + 1, "next_segment": 2, "articles": num, "passages": n,
        "k1": meta["k1"], "b": meta["b"], "updated": time.time(), "previous_segments": [],
    })  # fmt: skip
    db.execute("COMMIT")
    db.close()
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return out_dir


def scaled_vectors(real_dir: Path, n: int) -> np.ndarray:
    """The float32 vectors ``build_scaled_index`` gives passage ids 1..n, in id order."""
    reader, real_rows = _real(real_dir)
    order = [a["id"] for a in reader.list_articles()]
    by_article: dict[str, list[int]] = {}
    for r in real_rows:
        by_article.setdefault(r["article_id"], []).append(r["pid"])
    real_vecs = reader.vectors_for([p for aid in order for p in by_article.get(aid, [])])
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
