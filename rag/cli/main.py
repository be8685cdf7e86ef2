"""The ``rag`` command: ingest, search, ask, stats, inspect, check, delete, eval.

Exit codes: 0 success, 2 bad input or an index problem (one line on stderr), 1 an unexpected failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rag.cli.console import answer_json, hit_json, progress_bars, stream_answer
from rag.errors import InputError, RagError
from rag.retrieval.retriever import Filters
from rag.settings import Settings

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Cited answers over a folder of articles.")
    p.add_argument(
        "--index", type=Path, help="index folder (default: RAG_INDEX_DIR or ./rag_index)"
    )
    sub = p.add_subparsers(dest="command", required=True)

    ing = sub.add_parser("ingest", help="add files and folders (recursive) to the index")
    ing.add_argument("paths", nargs="+", type=Path)
    ing.add_argument("--no-sync", action="store_true", help="keep sources whose files are gone")
    ing.add_argument("--json", action="store_true")

    for name, helptext in (("search", "list the best passages"), ("ask", "answer with citations")):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("question", nargs="?", help="the question (or use --batch)")
        q.add_argument("--batch", type=Path, help='JSONL file of {"id", "question"} lines')
        q.add_argument("--k", type=int, help="passages to retrieve")
        q.add_argument("--source", help="only sources matching this glob or substring")
        q.add_argument("--date-from", help="only articles dated on or after YYYY-MM-DD")
        q.add_argument("--date-to", help="only articles dated on or before YYYY-MM-DD")
        q.add_argument("--json", action="store_true")
    ask_parser = sub.choices["ask"]
    ask_parser.add_argument(
        "--mode", choices=["extractive", "llm"], help="answerer (default: llm when RAG_LLM is set)"
    )

    ch = sub.add_parser("chat", help="ask questions line by line; follow-ups use the history")
    ch.add_argument("--mode", choices=["extractive", "llm"])
    ch.add_argument("--k", type=int)

    st = sub.add_parser("stats", help="index statistics and near-duplicate groups")
    st.add_argument("--json", action="store_true")

    ins = sub.add_parser("inspect", help="show what cleaning keeps and cuts from a file")
    ins.add_argument("file", type=Path)
    ins.add_argument("--json", action="store_true")

    chk = sub.add_parser("check", help="verify that vectors, lexical index and metadata agree")
    chk.add_argument("--json", action="store_true")

    wa = sub.add_parser("watch", help="keep the index in line with folders as files change")
    wa.add_argument("paths", nargs="+", type=Path)
    wa.add_argument("--interval", type=float, default=5.0, help="seconds between checks")

    dl = sub.add_parser("delete", help="remove sources from the index")
    dl.add_argument("sources", nargs="+")

    ev = sub.add_parser("eval", help="score retrieval and answers on a questions file")
    ev.add_argument("questions", type=Path)
    ev.add_argument("--k", type=int, default=10)
    ev.add_argument("--limit", type=int, help="only the first N questions")
    ev.add_argument("--no-answers", action="store_true", help="score retrieval only")
    ev.add_argument("--json", action="store_true")
    return p


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False))


def _read_batch(path: Path) -> list[tuple[str, str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read batch file {path}: {e}") from e
    items = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            qid, question = str(obj["id"]), str(obj["question"])
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f'{path}:{n}: expected {{"id", "question"}} JSON ({e})') from e
        items.append((qid, question))
    return items


def _filters(args: argparse.Namespace) -> Filters:
    for name in ("date_from", "date_to"):
        v = getattr(args, name)
        if v and not (len(v) == 10 and v[4] == "-" and v[7] == "-"):
            raise InputError(
                f"--{name.replace('_', '-')} must be a date like 2009-03-24, not {v!r}"
            )
    return Filters(source=args.source, date_from=args.date_from, date_to=args.date_to)


def _cmd_ingest(system: Any, args: argparse.Namespace) -> int:
    progress, close = progress_bars()
    try:
        report = system.ingest(args.paths, progress=progress, sync=not args.no_sync)
    finally:
        close()
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary())
        for source, reason in report.skipped:
            print(f"  skipped {source}: {reason}")
        for source in report.removed:
            print(f"  removed {source}")
    return EXIT_OK


def _questions(args: argparse.Namespace) -> list[tuple[str | None, str]]:
    if args.batch and args.question:
        raise InputError("give either a question or --batch FILE, not both")
    if args.batch:
        return list(_read_batch(args.batch))
    if not args.question or not args.question.strip():
        raise InputError('the question is empty: rag ask "Who leads the police unit?"')
    return [(None, args.question)]


def _cmd_search(system: Any, args: argparse.Namespace) -> int:
    filters = _filters(args)
    for qid, q in _questions(args):
        hits = system.search(q, k=args.k, filters=filters)
        if args.json or args.batch:
            out: dict[str, Any] = {"id": qid} if qid is not None else {"query": q}
            out["hits"] = [hit_json(h) for h in hits]
            _print_json(out)
        else:
            if not hits:
                print("no passages found")
            for i, h in enumerate(hits, start=1):
                print(f"[{i}] {h.article.title} ({h.article.source}) score {h.score:.3f}")
                print(f"    {h.chunk.text}\n")
    return EXIT_OK


def _cmd_ask(system: Any, args: argparse.Namespace) -> int:
    filters = _filters(args)
    for qid, q in _questions(args):
        if args.json or args.batch:
            a = system.ask(q, k=args.k, filters=filters, mode=args.mode)
            out: dict[str, Any] = {"id": qid} if qid is not None else {"question": q}
            out.update(answer_json(a))
            _print_json(out)
            continue
        stream_answer(system.ask_stream(q, k=args.k, filters=filters, mode=args.mode))
    return EXIT_OK


def _cmd_chat(system: Any, args: argparse.Namespace) -> int:
    history: list[tuple[str, str]] = []
    print("Ask a question (an empty line or Ctrl-D ends the chat).")
    for line in sys.stdin:
        q = line.strip()
        if not q:
            break
        try:
            a = stream_answer(system.ask_stream(q, k=args.k, history=history, mode=args.mode))
        except RagError as e:
            print(f"rag: error: {e}", file=sys.stderr)
            continue
        if a.standalone_question:
            print(f"(understood as: {a.standalone_question})")
        history.append((q, a.text))
        print()
    return EXIT_OK


def _cmd_stats(system: Any, args: argparse.Namespace) -> int:
    stats = system.stats()
    if args.json:
        _print_json(stats)
        return EXIT_OK
    print(f"index     {stats['index_dir']} ({stats['snapshot']}, updated {stats['updated']})")
    print(f"articles  {stats['articles']}")
    print(f"passages  {stats['chunks']}")
    print(f"model     {stats['model']} ({stats['dimension']} dimensions)")
    groups = stats["duplicate_groups"]
    print(f"near-duplicate groups: {len(groups)}")
    for g in groups:
        first, *rest = g["articles"]
        print(f"  {first['title']} ({first['source']}, fullest)")
        for a in rest:
            print(f"    also: {a['title']} ({a['source']})")
    return EXIT_OK


def _cmd_inspect(settings: Settings, args: argparse.Namespace) -> int:
    from rag.ingest.loaders import inspect_file

    if not args.file.is_file():
        raise InputError(f"no such file: {args.file}")
    docs = inspect_file(args.file, settings)
    if args.json:
        _print_json(docs[0] if len(docs) == 1 else docs)
        return EXIT_OK
    for d in docs:
        for key in ("title", "date", "author", "url", "site"):
            if d.get(key):
                print(f"{key:7} {d[key]}")
        print(f"\n{d['text']}\n")
        print(f"removed ({len(d['removed'])} pieces):")
        for r in d["removed"]:
            snippet = " ".join(r["text"].split())
            print(f"  [{r['reason']}] {snippet[:100]}{'...' if len(snippet) > 100 else ''}")
    return EXIT_OK


def _cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    from rag.store.folder import IndexStore, verify_snapshot

    store = IndexStore(settings.index_dir)
    problems = verify_snapshot(store.current_snapshot(), checksums=True)
    if args.json:
        _print_json({"ok": not problems, "problems": problems})
    elif problems:
        for p in problems:
            print(f"problem: {p}")
        print(
            f"to rebuild: rm -r {settings.index_dir} && rag ingest PATH --index {settings.index_dir}"
        )
    else:
        print(f"index {settings.index_dir} is consistent")
    return EXIT_OK if not problems else EXIT_BAD_INPUT


def _cmd_watch(system: Any, args: argparse.Namespace) -> int:
    from rag.ingest.discovery import discover

    if args.interval <= 0:
        raise InputError("--interval must be positive")

    def state() -> set[tuple[str, int, int]]:
        out = set()
        for path, _ in discover(args.paths):
            with contextlib.suppress(OSError):
                st = path.stat()
                out.add((str(path), st.st_size, st.st_mtime_ns))
        return out

    print(f"watching {', '.join(map(str, args.paths))} (Ctrl-C stops)")
    seen: set[tuple[str, int, int]] | None = None
    while True:
        now = state()
        if now != seen:
            report = system.ingest(args.paths)
            if seen is None or report.added or report.updated or report.removed:
                print(time.strftime("%H:%M:%S"), report.summary(), flush=True)
            seen = now
        time.sleep(args.interval)


def _cmd_delete(system: Any, args: argparse.Namespace) -> int:
    report = system.delete(args.sources)
    print(f"removed {len(report.removed)} source(s)")
    return EXIT_OK


def _cmd_eval(system: Any, args: argparse.Namespace) -> int:
    from rag.eval.metrics import Passage
    from rag.eval.questions import load_questions
    from rag.eval.runner import evaluate, format_table

    try:
        questions = load_questions(args.questions)
    except (OSError, ValueError) as e:
        raise InputError(str(e)) from e
    if args.limit:
        questions = questions[: args.limit]

    def retrieve(q: str) -> list[Passage]:
        return [Passage(h.article.source, h.chunk.text) for h in system.search(q, k=args.k)]

    answer = None if args.no_answers else (lambda q: system.ask(q))
    report = evaluate(questions, retrieve, answer, k=args.k)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(format_table({"ours": report}))
    return EXIT_OK


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        overrides = {"index_dir": args.index} if args.index else {}
        settings = Settings(**overrides)
    except ValidationError as e:
        err = e.errors()[0]
        print(f"rag: error: setting {err['loc'][0]}: {err['msg']}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.command == "inspect":
            return _cmd_inspect(settings, args)
        if args.command == "check":
            return _cmd_check(settings, args)
        from rag.system import System, require_index

        system = System(settings)
        if args.command not in ("ingest", "watch"):
            require_index(system)
        handler = {
            "ingest": _cmd_ingest,
            "search": _cmd_search,
            "ask": _cmd_ask,
            "stats": _cmd_stats,
            "delete": _cmd_delete,
            "eval": _cmd_eval,
            "chat": _cmd_chat,
            "watch": _cmd_watch,
        }[args.command]
        return handler(system, args)
    except RagError as e:
        print(f"rag: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as e:
        print(f"rag: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as e:  # the disk or the system failed us: not the input, still one line
        where = f": {e.filename}" if e.filename else ""
        print(f"rag: error: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("rag: interrupted; the index keeps its last committed state", file=sys.stderr)
        return 130


def main() -> None:
    sys.exit(run())
