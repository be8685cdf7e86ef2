"""Finding the passages: ``retriever`` (dense + BM25 candidates, fusion, the sentence boost,
near-duplicate collapse, MMR), ``fusion`` (how rankings combine: change the weights there and in
the settings), ``followup`` (follow-up questions made standalone) and ``langchain`` (adapters)."""
