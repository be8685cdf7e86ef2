"""Reaching Milvus: an embedded Milvus Lite file or a server, and the index's five collections.

``RAG_MILVUS_URI`` is either a path ending in ``.db`` (Milvus Lite: the engine runs inside this
process and locks the file, so a second process cannot open it) or ``http://HOST:19530`` (a
Milvus standalone or cluster, with ``RAG_MILVUS_TOKEN``). Every failure to get there becomes a
one-line :class:`~rag.errors.StoreUnavailable` or :class:`~rag.errors.StoreLocked`.

The collections, named after ``RAG_MILVUS_COLLECTION``:

- ``_passages``: one row per passage version: ids, offsets, source, date as ``YYYYMMDD``, title,
  the dense vector, the BM25 terms (our tokens, encoded for the ``standard`` analyzer) and the
  sparse vector Milvus's BM25 function makes of them;
- ``_articles``: the cleaned text in parts of at most :data:`TEXT_PART_CHARS` characters, the
  metadata (JSON, on part 0), the near-duplicate group and the 64 MinHash band keys;
- ``_sources``: which file (or ``file#record``) holds which article, and the folder it was
  synced from;
- ``_terms``: the document frequency of every BM25 term, keyed by the term (a key lookup is
  fast where a scalar filter scans), with the value before the last change and both versions
  (Milvus keeps BM25 statistics of its own but does not expose them, and counts rows a later
  commit removed until they are collected);
- ``_meta``: the published state (version, counts, BM25 totals, model) and the writer's lease.

Rows carry ``added``/``removed`` versions, so a reader filters on the commit it sees
(rag.store.milvus.rows.visible).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import StoreLocked, StoreUnavailable

__all__ = [
    "LIVE",
    "MIN_SERVER",
    "TEXT_PART_CHARS",
    "Names",
    "check_server_version",
    "connect",
    "create_collections",
    "resolve_uri",
]

LIVE = 2**62  # the `removed` of a row no commit has removed yet
TEXT_PART_CHARS = 16_000  # 4 bytes a character at most: a part stays under VARCHAR's 65,535 bytes
VARCHAR_MAX = 65_535
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://", "unix:")
_CONNECT_TIMEOUT = 10.0
MIN_SERVER = (2, 5)  # the BM25 function (full-text search) came with Milvus 2.5
# pymilvus pings an idle connection every 10 s. Milvus Lite's gRPC server (the engine of a Lite
# file, and `milvus-lite server`) keeps gRPC's default ping policy and may answer with GOAWAY
# "too_many_pings", after which pymilvus failed to reconnect: a process idle for 30-60 s could
# no longer reach its index (docs/scaling.md). So pings only during calls.
_GRPC_OPTIONS = {"grpc.keepalive_permit_without_calls": 0}


@dataclass(frozen=True)
class Names:
    """The collection names of one index."""

    prefix: str

    @property
    def passages(self) -> str:
        return f"{self.prefix}_passages"

    @property
    def articles(self) -> str:
        return f"{self.prefix}_articles"

    @property
    def sources(self) -> str:
        return f"{self.prefix}_sources"

    @property
    def terms(self) -> str:
        return f"{self.prefix}_terms"

    @property
    def meta(self) -> str:
        return f"{self.prefix}_meta"

    def versioned(self) -> list[str]:
        """The collections whose rows carry added/removed versions."""
        return [self.passages, self.articles, self.sources]

    def all(self) -> list[str]:
        return [*self.versioned(), self.terms, self.meta]


def resolve_uri(uri: str, index_dir: Path) -> tuple[str, bool]:
    """(the URI to use, whether it is Milvus Lite). Empty: ``milvus.db`` in the index folder."""
    uri = uri.strip()
    if not uri:
        return str(Path(index_dir) / "milvus.db"), True
    if uri.startswith(_SERVER_SCHEMES):
        return uri, False
    if "://" in uri:
        raise StoreUnavailable(
            f"RAG_MILVUS_URI {uri!r} is neither a Milvus Lite file (a path ending in .db) "
            "nor a server address (http://HOST:19530)"
        )
    if not uri.endswith(".db"):
        raise StoreUnavailable(
            f"RAG_MILVUS_URI {uri!r}: a Milvus Lite file must end in .db "
            "(or give a server as http://HOST:19530)"
        )
    return uri, True


def _lite_endpoint(path: Path, create: bool) -> str:
    """Start (or reuse) this process's Milvus Lite engine for ``path``; its local endpoint."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        raise StoreUnavailable("Milvus Lite is not installed: pip install -e '.[scale]'") from None
    if not path.parent.is_dir():
        if not create:
            raise StoreUnavailable(f"folder {path.parent} does not exist (RAG_MILVUS_URI={path})")
        path.parent.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger("milvus_lite.server_manager")
    was, log.disabled = log.disabled, True  # it logs a traceback; we say it in one line below
    try:
        endpoint = server_manager_instance.start_and_get_uri(str(path))
    finally:
        log.disabled = was
    if endpoint is not None:
        return endpoint
    lock = path / "LOCK"
    if lock.is_file():
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            raise StoreLocked(
                f"the Milvus Lite file {path} is open in another process (one at a time): stop it, "
                f"or serve the file (milvus-lite server --data-dir {path} --host 127.0.0.1 "
                "--port 19530) and set RAG_MILVUS_URI=http://127.0.0.1:19530 for both"
            ) from None
        finally:
            os.close(fd)
    raise StoreUnavailable(f"Milvus Lite could not open {path} (is it a Milvus Lite file?)")


def connect(uri: str, token: str, lite: bool, create: bool) -> Any:
    """A MilvusClient for ``uri``; one-line errors when the package, file or server is missing."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise StoreUnavailable(
            "RAG_STORE=milvus needs pymilvus: pip install -e '.[scale]'"
        ) from None
    endpoint = _lite_endpoint(Path(uri), create) if lite else uri
    # pymilvus logs each failed call with its traceback on stderr; the one-line error below
    # says what failed instead.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    try:
        client = MilvusClient(uri=endpoint, token=token, timeout=_CONNECT_TIMEOUT,
                              grpc_options=_GRPC_OPTIONS)  # fmt: skip
        version = "" if lite else str(client.get_server_version(timeout=_CONNECT_TIMEOUT))
    except Exception as e:  # pymilvus raises several kinds; all mean "not reachable"
        raise StoreUnavailable(f"cannot reach Milvus at {uri}: {_reason(e)}") from None
    if version:
        check_server_version(version, uri)
    return _Guarded(client, uri)


def _reason(error: BaseException) -> str:
    return str(getattr(error, "message", "") or error).splitlines()[0][:200]


class _Guarded:
    """A MilvusClient whose failures are one line: a server that goes away in the middle of a
    command is a StoreUnavailable naming it, not a pymilvus traceback."""

    def __init__(self, client: Any, uri: str) -> None:
        from grpc import RpcError
        from pymilvus.exceptions import MilvusException

        self._client, self._uri, self._kinds = client, uri, (MilvusException, RpcError)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except self._kinds as e:
                raise StoreUnavailable(
                    f"Milvus at {self._uri} failed ({name}): {_reason(e)}"
                ) from None

        return call


def check_server_version(version: str, uri: str) -> None:
    """A server older than 2.5 has no BM25 function, so it would refuse the passages schema
    (or, on an index made elsewhere, every lexical search): say so in one line up front.
    A version that does not parse (a development build) is let through."""
    found = re.match(r"v?(\d+)\.(\d+)", version.strip())
    if found is None:
        return
    if (int(found[1]), int(found[2])) < MIN_SERVER:
        raise StoreUnavailable(
            f"Milvus server {version.strip().removeprefix('v')} at {uri} is older than "
            f"{MIN_SERVER[0]}.{MIN_SERVER[1]}, which BM25 full-text search needs: "
            "upgrade the server (or use a Milvus Lite file)"
        )


def _dummy(schema: Any, data_type: Any) -> None:
    """Milvus needs a vector field in every collection: a 2-d one the rows leave at zero."""
    schema.add_field("_v", data_type.FLOAT_VECTOR, dim=2)


def create_collections(client: Any, names: Names, dimension: int, lite: bool) -> None:
    """Create the index's collections that do not exist yet (a first writer does this)."""
    from pymilvus import DataType, Function, FunctionType

    def index_params(fields: dict[str, tuple[str, str, dict[str, Any]]]) -> Any:
        params = client.prepare_index_params()
        for field, (kind, metric, extra) in fields.items():
            params.add_index(field, index_type=kind, metric_type=metric, params=extra)
        return params

    scalar: tuple[str, str, dict[str, Any]] = ("INVERTED", "", {})
    dummy: tuple[str, str, dict[str, Any]] = ("FLAT", "IP", {})

    def make(name: str, schema: Any, params: Any) -> None:
        # The indexes are asked without waiting (pymilvus polls each one for half a second);
        # loading the collection waits for them.
        client.create_collection(name, schema=schema, consistency_level="Strong")
        client.create_index(name, params, sync=False)
        client.load_collection(name)

    existing = set(client.list_collections())
    if names.meta not in existing:
        s = client.create_schema(auto_id=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
        s.add_field("value", DataType.VARCHAR, max_length=VARCHAR_MAX)
        _dummy(s, DataType)
        make(names.meta, s, index_params({"_v": dummy}))
    if names.sources not in existing:
        s = client.create_schema(auto_id=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=8192)
        s.add_field("source", DataType.VARCHAR, max_length=8192)
        s.add_field("article_id", DataType.VARCHAR, max_length=64)
        s.add_field("root", DataType.VARCHAR, max_length=8192)
        s.add_field("added", DataType.INT64)
        s.add_field("removed", DataType.INT64)
        _dummy(s, DataType)
        make(names.sources, s, index_params({"_v": dummy, "article_id": scalar}))
    if names.terms not in existing:
        s = client.create_schema(auto_id=False)
        s.add_field("term", DataType.VARCHAR, is_primary=True, max_length=512)
        s.add_field("df", DataType.INT64)
        s.add_field("version", DataType.INT64)
        s.add_field("df_before", DataType.INT64)
        s.add_field("version_before", DataType.INT64)
        _dummy(s, DataType)
        make(names.terms, s, index_params({"_v": dummy}))
    if names.articles not in existing:
        s = client.create_schema(auto_id=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=128)
        s.add_field("article_id", DataType.VARCHAR, max_length=64)
        s.add_field("part", DataType.INT64)
        s.add_field("parts", DataType.INT64)
        s.add_field("text", DataType.VARCHAR, max_length=VARCHAR_MAX)
        s.add_field("meta", DataType.VARCHAR, max_length=VARCHAR_MAX)
        s.add_field("group_id", DataType.VARCHAR, max_length=64)
        s.add_field("date", DataType.INT64)
        s.add_field("bands", DataType.ARRAY, element_type=DataType.INT64, max_capacity=64)
        s.add_field("added", DataType.INT64)
        s.add_field("removed", DataType.INT64)
        _dummy(s, DataType)
        make(
            names.articles, s, index_params({"_v": dummy, "article_id": scalar, "group_id": scalar})
        )
    if names.passages not in existing:
        s = client.create_schema(auto_id=False)
        s.add_field("pid", DataType.INT64, is_primary=True)
        s.add_field("article_id", DataType.VARCHAR, max_length=64)
        s.add_field("chunk_id", DataType.VARCHAR, max_length=256)
        s.add_field("ordinal", DataType.INT64)
        s.add_field("start", DataType.INT64)
        s.add_field("end", DataType.INT64)
        s.add_field("source", DataType.VARCHAR, max_length=8192)
        s.add_field("title", DataType.VARCHAR, max_length=4096)
        s.add_field("date", DataType.INT64)
        s.add_field("embed_hash", DataType.VARCHAR, max_length=64)
        # Our own tokens, one per word: the standard analyzer splits them exactly where we did.
        s.add_field("terms", DataType.VARCHAR, max_length=VARCHAR_MAX, enable_analyzer=True,
                    analyzer_params={"tokenizer": "standard"})  # fmt: skip
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        s.add_field("dl", DataType.INT64)
        s.add_field("added", DataType.INT64)
        s.add_field("removed", DataType.INT64)
        s.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                input_field_names=["terms"], output_field_names=["sparse"]))  # fmt: skip
        # Exact search on Milvus Lite (what the tests compare); HNSW on a server.
        dense = ("FLAT", "IP", {}) if lite else ("HNSW", "IP", {"M": 16, "efConstruction": 200})
        make(
            names.passages, s, index_params({
                "vector": dense,
                "sparse": ("SPARSE_INVERTED_INDEX", "BM25", {"bm25_k1": 0.9, "bm25_b": 0.4}),
                "article_id": scalar, "embed_hash": scalar,
            }),
        )  # fmt: skip
