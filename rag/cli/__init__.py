"""The ``rag`` command: argument parsing, one handler per subcommand, and what it prints."""

from rag.cli.main import main, run

__all__ = ["main", "run"]
