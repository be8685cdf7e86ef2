"""The ``rag`` command line: subcommands, and the common options they accept on either side.

``rag --index X ingest DIR`` and ``rag ingest DIR --index X`` mean the same: each common option is
declared on the top-level parser and again on every subcommand that uses it. The subcommand's
copy has no default (``SUPPRESS``), so a value given before the subcommand is not overwritten by a
default after it. A common option given before a subcommand that has no use for it is an error
(:func:`check_common`), as it is after it (argparse says "unrecognized arguments").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rag.errors import InputError

# Which subcommands use which common options (``--index`` is used by every one that has an index).
_FILTERS = ("source", "date_from", "date_to")
USES: dict[str, tuple[str, ...]] = {
    "ingest": ("index", "json"),
    "search": ("index", "json", "k", *_FILTERS),
    "ask": ("index", "json", "k", *_FILTERS),
    "chat": ("index", "json", "k", *_FILTERS),
    "stats": ("index", "json"),
    "inspect": ("json",),
    "check": ("index", "json"),
    "watch": ("index",),
    "delete": ("index", "json"),
    "compact": ("index", "json"),
    "eval": ("index", "json", "k"),
    "settings": (),
    "serve": ("index",),
    "keys": ("json",),
}
COMMON = ("index", "json", "k", *_FILTERS)


def _add_common(p: argparse.ArgumentParser, names: tuple[str, ...], top: bool) -> None:
    """Add the common options ``names`` to ``p``; below the top level they default to nothing."""
    group = p.add_argument_group(
        "common options (before or after the command)" if not top else "common options"
    )

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    if "index" in names:
        group.add_argument(
            "--index",
            type=Path,
            default=default(None),
            help="index folder (default: RAG_INDEX_DIR or ./rag_index)",
        )
    if "json" in names:
        group.add_argument(
            "--json", action="store_true", default=default(False), help="machine-readable output"
        )
    if "k" in names:
        group.add_argument("--k", type=int, default=default(None), help="passages to retrieve")
    if "source" in names:
        group.add_argument(
            "--source",
            default=default(None),
            help="only sources whose file name or path matches this glob, or contains this text",
        )
    if "date_from" in names:
        group.add_argument(
            "--date-from", default=default(None), help="only articles dated on or after YYYY-MM-DD"
        )
    if "date_to" in names:
        group.add_argument(
            "--date-to", default=default(None), help="only articles dated on or before YYYY-MM-DD"
        )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Cited answers over a folder of articles.")
    _add_common(p, COMMON, top=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, helptext: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=helptext, description=helptext)
        _add_common(c, USES[name], top=False)
        return c

    ing = command("ingest", "add files and folders (recursive) to the index")
    ing.add_argument("paths", nargs="+", type=Path)
    ing.add_argument("--no-sync", action="store_true", help="keep sources whose files are gone")
    ing.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="read, chunk and embed on a Ray cluster: auto, HOST:PORT or ray://HOST:PORT "
        "(default RAG_RAY_ADDRESS; none: a Ray instance on this machine). Needs the scale extra",
    )

    for name, helptext in (
        ("search", "list the best passages (where did we read that?)"),
        ("ask", "answer a question with cited quotes"),
    ):
        q = command(name, helptext)
        q.add_argument("question", nargs="?", help="the question (or use --batch)")
        q.add_argument("--batch", type=Path, help='JSONL file of {"id", "question"} lines')
    sub.choices["ask"].add_argument(
        "--mode", choices=["extractive", "llm"], help="answerer (default: llm when RAG_LLM is set)"
    )
    sub.choices["ask"].add_argument(
        "--history",
        type=Path,
        help="earlier turns as JSON lines (what rag chat --json or rag ask --json print): "
        "the question is read as a follow-up to them",
    )

    ch = command("chat", "ask questions line by line; follow-ups use the history")
    ch.add_argument("--mode", choices=["extractive", "llm"])

    command("stats", "index statistics and near-duplicate groups")

    ins = command("inspect", "show what cleaning keeps and cuts from a file")
    ins.add_argument("file", type=Path)

    command("check", "verify that vectors, lexical index and metadata agree")

    wa = command("watch", "keep the index in line with folders as files change")
    wa.add_argument("paths", nargs="+", type=Path)
    wa.add_argument("--interval", type=float, default=5.0, help="seconds between checks")

    dl = command("delete", "remove sources from the index")
    dl.add_argument("sources", nargs="+")

    command("compact", "merge the index's parts into one (maintenance: adding never waits for it)")

    ev = command("eval", "score retrieval and answers on a questions file (default --k 10)")
    ev.add_argument("questions", type=Path)
    ev.add_argument("--limit", type=int, help="only the first N questions")
    ev.add_argument("--no-answers", action="store_true", help="score retrieval only")

    command("settings", "every RAG_* setting with its default and what it does (Markdown)")

    sv = command("serve", "serve the HTTP API and an OpenAI-compatible chat endpoint")
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; another needs API keys)",
    )
    sv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sv.add_argument(
        "--keys", type=Path, help="API keys file (default RAG_API_KEYS_FILE; see 'rag keys')"
    )

    ks = command("keys", "make, list and remove API keys for 'rag serve'")
    ks.add_argument("action", choices=["add", "list", "remove"])
    ks.add_argument("name", nargs="?", help="the key's name (add, remove)")
    ks.add_argument(
        "--role", choices=["read", "write"], default="read", help="what the key may do (add)"
    )
    ks.add_argument("--keys", type=Path, help="API keys file (default RAG_API_KEYS_FILE)")
    return p


def check_common(args: argparse.Namespace) -> None:
    """Refuse a common option given before a subcommand that does not use it."""
    uses = USES[args.command]
    for name in COMMON:
        if name not in uses and getattr(args, name, None) not in (None, False):
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} does not apply to 'rag {args.command}'")
