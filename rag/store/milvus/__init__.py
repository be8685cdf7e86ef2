"""The Milvus backend (``RAG_STORE=milvus``): the index in Milvus collections, embedded (Milvus
Lite, a ``.db`` file) or on a server. ``connect`` reaches Milvus and makes the collections,
``rows`` converts values and writes filter expressions, ``reader`` and ``writer`` are the two
sides of the store interface, ``store`` ties them together with the writer lock and the check.
Needs the ``scale`` extra (pymilvus, milvus-lite); nothing here is imported by the local store."""

from rag.store.milvus.store import MilvusStore

__all__ = ["MilvusStore"]
