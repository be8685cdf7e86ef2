"""The docs stay true: the CI script runs the README's test command, the settings table matches the
code, the README stays short, every relative link resolves, and no file names a machine's paths."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from rag.settings import settings_table

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
README_MAX_BYTES = 10_240
# Written in two pieces so that this file does not contain what it looks for.
MACHINE_PATH = "/" + "work" + "/"


def setup_commands() -> list[str]:
    section = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_exactly_two_setup_commands_install_torch_first() -> None:
    commands = setup_commands()
    assert len(commands) == 2
    for cmd in commands:
        assert "\n" not in cmd.strip()
        assert cmd.index("torch==2.13.0") < cmd.index(
            "install -q -e" if "-q -e" in cmd else "install -e"
        )
    assert commands[0].rstrip().endswith("streamlit run app.py")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert setup_commands()[1].strip() in ci.splitlines()


def test_settings_table_is_current() -> None:
    docs = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert settings_table() in docs, (
        "regenerate with: rag settings (and paste it into docs/settings.md)"
    )


def test_readme_is_short() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail into docs/"


# --- links ------------------------------------------------------------------------------------

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def links(text: str) -> list[str]:
    """Link and image targets outside code blocks and inline code."""
    prose = _INLINE_CODE.sub("", _FENCE.sub("", text))
    return _LINK.findall(prose)


def anchors(text: str) -> set[str]:
    """The fragment ids GitHub gives a file's headings (lowercase, punctuation dropped, - for space)."""
    out = set()
    for title in _HEADING.findall(_FENCE.sub("", text)):
        plain = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", title).strip().lower()
        out.add(re.sub(r"[^\w\- ]", "", plain).replace(" ", "-"))
    return out


def test_markdown_links_scanner_finds_links_and_skips_code() -> None:
    text = "See [a](docs/a.md#x) and ![img](p.png).\n`[no](code.md)`\n```\n[no](block.md)\n```\n"
    assert links(text) == ["docs/a.md#x", "p.png"]
    assert anchors("# Query latency, warm\n## SQuAD v2.0: no `answer`\n") == {
        "query-latency-warm",
        "squad-v20-no-answer",
    }


def test_every_relative_link_points_to_an_existing_file() -> None:
    broken = []
    for md in markdown_files():
        if not md.exists():
            continue
        for target in links(md.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                continue
            path_part, _, fragment = target.partition("#")
            dest = (md.parent / path_part).resolve() if path_part else md
            where = f"{md.relative_to(ROOT)} -> {target}"
            if not dest.exists():
                broken.append(f"{where}: no such file")
            elif (
                fragment
                and dest.suffix == ".md"
                and fragment.lower() not in anchors(dest.read_text(encoding="utf-8"))
            ):
                broken.append(f"{where}: no heading with that anchor")
    assert not broken, "\n".join(broken)


# --- no machine-specific paths ------------------------------------------------------------------

_SKIP_DIRS = {".git", ".venv", "__pycache__", "build", "dist", "node_modules"}


def repository_files() -> list[Path]:
    """The files git tracks, or (outside a git checkout) every file not in a tool's folder."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout
        names = [n for n in out.decode("utf-8", "surrogateescape").split("\0") if n]
        if names:
            return [ROOT / n for n in names]
    except (OSError, subprocess.SubprocessError):
        pass
    return [
        p
        for p in ROOT.rglob("*")
        if p.is_file()
        and not any(
            part in _SKIP_DIRS or part.startswith(".") or part.endswith(".egg-info")
            for part in p.relative_to(ROOT).parts[:-1]
        )
        and "bench/data" not in p.relative_to(ROOT).as_posix()
    ]


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file or one that is gone or unreadable."""
    try:
        data = path.read_bytes()
    except OSError:  # deleted in the working tree, a broken link, a folder (a submodule)
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_repository_finds_files() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in repository_files()}
    assert {"README.md", "tests/test_readme.py"} <= files


def test_no_file_names_a_machine_path() -> None:
    offenders = []
    for path in repository_files():
        text = text_of(path)
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), start=1):
            if MACHINE_PATH in line:
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not offenders, "machine-specific paths:\n" + "\n".join(offenders)
