"""Every command and every finding code is documented, and every documented one exists.

Commands come from the registry (cli/main.py COMMANDS); finding codes from the
code that raises them (every `"CTnnn"` literal under src/ctguard).
"""

import re
from pathlib import Path

from ctguard.cli.main import COMMANDS

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
CODE_LITERAL = re.compile(r"[\"'](CT\d{3})[\"']")


def documented_commands() -> set[str]:
    """Names in the `## ` headings of docs/commands.md: "## `ctguard logs [FILE ...]`",
    "## `ctguard notrack` / `block` / `unblock`"."""
    names: set[str] = set()
    for line in (DOCS / "commands.md").read_text().splitlines():
        if not line.startswith("## "):
            continue
        for quoted in re.findall(r"`([^`]+)`", line):
            words = quoted.split()
            if words[0] == "ctguard":
                words = words[1:]
            if words:
                names.add(words[0])
    return names


def documented_codes() -> set[str]:
    text = (DOCS / "findings.md").read_text()
    return set(re.findall(r"^\|\s*(CT\d{3})\s*\|", text, flags=re.MULTILINE))


def raised_codes() -> set[str]:
    codes: set[str] = set()
    for path in (REPO / "src" / "ctguard").rglob("*.py"):
        codes.update(CODE_LITERAL.findall(path.read_text()))
    return codes


def test_every_command_is_documented_and_every_documented_one_exists():
    documented = documented_commands()
    assert sorted(set(COMMANDS) - documented) == [], "commands missing from docs/commands.md"
    assert sorted(documented - set(COMMANDS)) == [], "docs/commands.md names unknown commands"


def test_every_finding_code_is_documented_and_every_documented_one_exists():
    documented, raised = documented_codes(), raised_codes()
    assert raised, "no finding code found in the source: the scan is broken"
    assert sorted(raised - documented) == [], "codes missing from docs/findings.md"
    assert sorted(documented - raised) == [], "docs/findings.md lists codes nothing raises"


def test_the_readers_see_what_they_should():
    # the parsers above are not vacuous: known entries are found
    assert {"doctor", "logs", "block", "lab"} <= documented_commands()
    assert {"CT001", "CT403"} <= documented_codes()
