"""The CLI's common options work on either side of the subcommand, and errors map in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.cli.parser import COMMON, USES, build_parser, check_common
from rag.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAIL,
    CorruptIndex,
    IndexBusy,
    IndexMissing,
    InputError,
    LLMError,
    NotFound,
    RagError,
    outcome,
)
from rag.settings import Settings


def parse(*argv: str):  # type: ignore[no-untyped-def]
    args = build_parser().parse_args(list(argv))
    check_common(args)
    return args


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (["--index", "X", "ingest", "DIR"], ["ingest", "DIR", "--index", "X"]),
        (["--json", "--k", "3", "search", "q"], ["search", "q", "--json", "--k", "3"]),
        (
            ["--source", "002_*", "--date-from", "2009-01-01", "ask", "q"],
            ["ask", "q", "--source", "002_*", "--date-from", "2009-01-01"],
        ),
        (["--index", "X", "--json", "stats"], ["stats", "--json", "--index", "X"]),
        (["--k", "7", "eval", "q.jsonl"], ["eval", "q.jsonl", "--k", "7"]),
    ],
)
def test_common_options_mean_the_same_before_and_after(before: list[str], after: list[str]) -> None:
    assert vars(parse(*before)) == vars(parse(*after))


def test_an_option_given_on_both_sides_takes_the_later_one() -> None:
    assert parse("--index", "A", "ingest", "DIR", "--index", "B").index == Path("B")
    assert parse("--index", "A", "ingest", "DIR").index == Path("A")


def test_defaults_when_not_given() -> None:
    args = parse("search", "q")
    assert (args.index, args.json, args.k, args.source) == (None, False, None, None)


def test_an_option_a_command_does_not_use_is_refused_on_either_side() -> None:
    with pytest.raises(InputError, match="--k does not apply to 'rag stats'"):
        parse("--k", "3", "stats")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["stats", "--k", "3"])


def test_every_command_help_lists_the_common_options_it_uses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command, uses in USES.items():
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        out = capsys.readouterr().out
        for name in COMMON:
            flag = "--" + name.replace("_", "-")
            assert (f"{flag} " in out or f"{flag}\n" in out) == (name in uses), (command, flag)


def test_outcome_maps_each_error_class_once() -> None:
    busy = outcome(IndexBusy("index x is busy"))
    assert (busy.kind, busy.http_status, busy.exit_code, busy.level) == (
        "index_busy",
        409,
        EXIT_BAD_INPUT,
        "warning",
    )
    assert outcome(NotFound("no article abc")).http_status == 404
    assert outcome(InputError("empty question")).http_status == 400
    assert outcome(IndexMissing.at("idx")).http_status == 503
    assert "rag ingest PATH" in str(IndexMissing.at("idx"))
    assert outcome(CorruptIndex("bad")).http_status == 503
    assert outcome(LLMError("down")).kind == "llm_error"
    assert outcome(ValueError("k must be at least 1")).http_status == 400
    disk = outcome(OSError(28, "No space left on device", "/x"))
    assert disk.exit_code == EXIT_FAIL and disk.message == "No space left on device: /x"
    bug = outcome(KeyError("boom"))
    assert not bug.expected and bug.http_status == 500 and bug.kind == "internal"
    for cls in RagError.__subclasses__():
        assert outcome(cls("x")).expected and outcome(cls("x")).title


def test_invalid_setting_names_the_variable() -> None:
    with pytest.raises(Exception) as info:
        Settings(k=0)
    o = outcome(info.value)
    assert o.kind == "invalid_setting" and o.message.startswith("setting k:")
