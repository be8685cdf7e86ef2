"""Answering from the passages: ``extractive`` (the offline answerer that quotes sentences),
``llm`` (chat-model answers), ``citations`` (checking an LLM answer against what it cites) and
``abstention`` (what every answerer says when the articles don't answer)."""
