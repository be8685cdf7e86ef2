"""The ``rag`` command: ingest, search, ask, stats, inspect, check, delete, eval, serve, keys.

Exit codes: 0 success, 2 bad input or an index problem (one line on stderr), 1 an unexpected failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.cli.console import progress_bars, stream_answer
from rag.cli.history import read_history
from rag.cli.parser import build_parser, check_common
from rag.errors import EXIT_BAD_INPUT, EXIT_OK, InputError, RagError, outcome
from rag.serialize import answer_json, hit_json
from rag.settings import Settings
from rag.types import Filters


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
        report = system.ingest(args.paths, progress=progress, sync=not args.no_sync, ray=args.ray)
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
            elif not system.words_found(q):
                print("no word of the query occurs in any passage; the closest by meaning:\n")
            for i, h in enumerate(hits, start=1):
                print(f"[{i}] {h.article.title} ({h.article.source}) score {h.score:.3f}")
                print(f"    {h.chunk.text}\n")
    return EXIT_OK


def _cmd_ask(system: Any, args: argparse.Namespace) -> int:
    filters = _filters(args)
    history = read_history(args.history) if args.history else []
    for qid, q in _questions(args):
        if args.json or args.batch:
            a = system.ask(q, k=args.k, filters=filters, history=history, mode=args.mode)
            out: dict[str, Any] = {"id": qid} if qid is not None else {"question": q}
            out.update(answer_json(a))
            _print_json(out)
            continue
        a = stream_answer(
            system.ask_stream(q, k=args.k, filters=filters, history=history, mode=args.mode)
        )
        if a.standalone_question:
            print(f"(understood as: {a.standalone_question})")
    return EXIT_OK


def _cmd_chat(system: Any, args: argparse.Namespace) -> int:
    """One answer per line of input; with --json one JSON object per turn, ``rag ask --json``'s
    shape (its ``standalone_question`` is the rewritten follow-up), and nothing else on stdout."""
    history: list[tuple[str, str]] = []
    filters = _filters(args)
    if not args.json:
        print("Ask a question (an empty line or Ctrl-D ends the chat).")
    for line in sys.stdin:
        q = line.strip()
        if not q:
            break
        try:
            if args.json:
                a = system.ask(q, k=args.k, filters=filters, history=history, mode=args.mode)
                _print_json({"question": q, **answer_json(a)})
                sys.stdout.flush()
            else:
                a = stream_answer(
                    system.ask_stream(q, k=args.k, filters=filters, history=history, mode=args.mode)
                )
        except RagError as e:
            print(f"rag: error: {e}", file=sys.stderr)
            continue
        if a.standalone_question and not args.json:
            print(f"(understood as: {a.standalone_question})")
        history.append((a.standalone_question or q, a.text))
        if not args.json:
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
    print(
        f"near-duplicate groups: {len(groups)} ({stats['groups_with_differences']} versions "
        f"with differences, {stats['reprint_groups']} plain reprints)"
    )
    for g in sorted(groups, key=lambda g: not g["differs"]):
        first, *rest = g["articles"]
        label = "versions with differences" if g["differs"] else "plain reprints"
        print(f"  {first['title']} ({first['source']}, fullest; {label})")
        for a in rest:
            print(f"    also: {a['title']} ({a['source']})")
            for d in a["differences"]:
                print(f"      differs: {d['this']} (fullest: {d['fullest']}, {d['kind']})")
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
    from rag.store.base import open_store

    store = open_store(settings)
    problems = store.check()
    if args.json:
        _print_json({"ok": not problems, "problems": problems})
    elif problems:
        for p in problems:
            print(f"problem: {p}")
        print(
            f"to rebuild: rm -r {settings.index_dir} && rag ingest PATH --index {settings.index_dir}"
        )
    else:
        print(f"index {store.location} is consistent")
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
    if args.json:
        _print_json(report.to_dict())
    else:
        print(f"removed {len(report.removed)} source(s)")
    return EXIT_OK


def _cmd_compact(system: Any, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    system.compact()
    seconds = time.perf_counter() - started
    if args.json:
        _print_json({"index_dir": str(system.settings.index_dir), "seconds": round(seconds, 3)})
    else:
        print(f"index {system.settings.index_dir} compacted in {seconds:.1f} s")
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

    k = args.k or 10

    def retrieve(q: str) -> list[Passage]:
        return [Passage(h.article.source, h.chunk.text) for h in system.search(q, k=k)]

    answer = None if args.no_answers else (lambda q: system.ask(q))
    report = evaluate(questions, retrieve, answer, k=k)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(format_table({"ours": report}))
    return EXIT_OK


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from rag.api.server import serve

    serve(settings, host=args.host, port=args.port)
    return EXIT_OK


def _cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    from rag.api.keys import add_key, read_keys, remove_key

    path = settings.api_keys_file
    if path is None:
        raise InputError("name the keys file: --keys FILE (or set RAG_API_KEYS_FILE)")
    if args.action in ("add", "remove") and not args.name:
        raise InputError(f"rag keys {args.action} needs the key's NAME")
    if args.action == "add":
        key = add_key(path, args.name, args.role)
        if args.json:
            _print_json({"name": args.name, "role": args.role, "key": key})
        else:
            print(key)
            print(
                f"key {args.name!r} ({args.role}) added to {path}; it is shown only this once",
                file=sys.stderr,
            )
    elif args.action == "remove":
        remove_key(path, args.name)
        print(f"key {args.name!r} removed from {path}", file=sys.stderr)
    else:
        keys = read_keys(path)
        if args.json:
            _print_json([{"name": k.name, "role": k.role} for k in keys])
        for k in [] if args.json else keys:
            print(f"{k.name}\t{k.role}")
    return EXIT_OK


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_common(args)
        overrides: dict[str, Any] = {"index_dir": args.index} if args.index else {}
        if getattr(args, "keys", None):
            overrides["api_keys_file"] = args.keys
        settings = Settings(**overrides)
        if args.command == "serve":
            return _cmd_serve(settings, args)
        if args.command == "keys":
            return _cmd_keys(settings, args)
        if args.command == "inspect":
            return _cmd_inspect(settings, args)
        if args.command == "check":
            return _cmd_check(settings, args)
        if args.command == "settings":
            from rag.settings import settings_table

            print(settings_table())
            return EXIT_OK
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
            "compact": _cmd_compact,
            "eval": _cmd_eval,
            "chat": _cmd_chat,
            "watch": _cmd_watch,
        }[args.command]
        return handler(system, args)
    except BrokenPipeError:
        raise
    except (Exception, KeyboardInterrupt) as e:
        o = outcome(e)
        if not o.expected and not isinstance(e, OSError):
            raise  # a bug: its traceback is what a report needs
        print(f"rag: error: {o.message}", file=sys.stderr)
        return o.exit_code


def main() -> None:
    try:
        code = run()
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (``rag search ... | head``): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_OK
    sys.exit(code)
