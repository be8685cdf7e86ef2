"""README stays true: the CI script runs its test command, and the settings table matches the code."""

from __future__ import annotations

import re
from pathlib import Path

from rag.settings import settings_table

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


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
    assert settings_table() in README, "regenerate with: python -m rag.settings"
