"""The evaluation harness: ``questions`` (question files), ``metrics`` (per-question scores) and
``runner`` (running a set and reporting it; ``rag eval``)."""
