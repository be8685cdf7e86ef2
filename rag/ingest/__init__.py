"""Files in, articles and passages out: ``discovery`` finds and reads files ahead of the pipeline,
``loaders`` turns each format into cleaned ``Document`` s (with ``decoding``, ``cleaning``,
``boilerplate``, ``htmlclean``, ``markdown`` and ``metadata``), ``chunking`` cuts passages with
their offsets, ``dedup`` groups near-duplicate articles, ``pipeline`` embeds and writes them
(``Ingestor``), and ``report`` says what happened to each file.

A new file format is a loader in ``loaders``."""
