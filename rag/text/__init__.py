"""Text as every stage sees it: sentences (``sentences``), BM25 terms (``tokens``), the idf-weighted
share of a question's terms (``terms``) and near-duplicate shingles (``shingles``)."""
