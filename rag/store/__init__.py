"""The index on disk and in memory, and everything that knows how it is stored.

``folder`` is the index folder (commit pointer, writer lock, integrity check), ``snapshot`` one
committed state loaded and cross-checked, ``reader`` the read side (search with filters, passages,
articles), ``writer`` the write side, ``vectors`` the FAISS index by size, ``lexical`` the BM25
index and ``lexical_files`` its files. Nothing outside this package names FAISS, SQLite or the BM25
arrays: a vector backend is changed here."""
