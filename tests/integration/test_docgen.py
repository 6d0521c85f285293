"""The man page and the bash completion say what `--help` says, for every command.

They are generated from the parser at build time; these tests compare the
generated text with each command's real `--help` output, so a command or an
option cannot be added, renamed or dropped without both following.
"""

import shutil
import subprocess

import pytest

from ctguard.cli.docgen import bash_completion, command_tree, man_page, walk
from ctguard.cli.env import ExitStatus
from ctguard.cli.main import COMMANDS

TREE = command_tree()
COMMAND_PATHS = [command.path for command in walk(TREE)]


def help_options(help_text: str) -> set[str]:
    """The option names --help lists (lines of the options section)."""
    found: set[str] = set()
    in_options = seen_options = False
    for line in help_text.splitlines():
        if line and not line.startswith(" "):
            # "options:" and the argument groups after it (e.g. "filters:")
            header = line.endswith(":") and line != "positional arguments:"
            seen_options = seen_options or line in ("options:", "optional arguments:")
            in_options = header and seen_options
            continue
        stripped = line.strip()
        if not in_options or not stripped.startswith("-") or line.startswith("   "):
            continue
        spec = stripped.split("  ")[0]
        found.update(part.split()[0] for part in spec.split(", "))
    return found


def help_of(cli, path):
    result = cli(*path, "--help")
    assert result.status == ExitStatus.OK, result.stderr
    return result.stdout


def roff(text: str) -> str:
    return text.replace("-", "\\-")


def test_every_registered_command_is_in_the_tree():
    assert [command.path[0] for command in TREE.subcommands] == list(COMMANDS)


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "ctguard")
def test_man_page_lists_every_option_help_shows(cli, path):
    page = man_page(date="2026-01-01")
    options = help_options(help_of(cli, path)) - {"-h", "--help"}
    section = page
    if path:
        heading = f".SS {roff(' '.join(['ctguard', *path]))}"
        # the heading itself, not a longer one it begins ("lab list" vs "lab list|run|clean")
        starts = [f"{heading} ", f"{heading}\n"]
        found = [page.split(start, 1)[1] for start in starts if start in page]
        assert found, f"no man page section for {' '.join(path)}"
        section = found[0].split("\n.SS ", 1)[0]
    for option in options:
        assert f".B {roff(option)}" in section or f", {roff(option)}" in section, option
    # and nothing the parser no longer has
    command = next(c for c in walk(TREE) if c.path == path)
    assert {o for a in command.options for o in a.option_strings} == options


def test_man_page_sections_are_the_commands():
    page = man_page(date="2026-01-01")
    headings = [line.split()[2:] for line in page.splitlines() if line.startswith(".SS ")]
    named = [[w.replace("\\-", "-") for w in h if not w.startswith(("[", "|"))] for h in headings]
    expected = [p for p in COMMAND_PATHS if p]
    assert [h[: len(p)] for h, p in zip(named, expected, strict=True)] == expected


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "ctguard")
def test_bash_completion_offers_what_help_shows(cli, path, tmp_path):
    script = tmp_path / "ctguard.bash"
    script.write_text(bash_completion())
    words = ["ctguard", *path]

    def complete(cur: str) -> set[str]:
        probe = (
            f"source {script}\n"
            f"COMP_WORDS=({' '.join(repr(w) for w in [*words, cur])})\n"
            "COMP_CWORD=$((${#COMP_WORDS[@]}-1))\n"
            "_ctguard\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
        return set(out.stdout.split())

    help_text = help_of(cli, path)
    long_options = {o for o in help_options(help_text) if o.startswith("--")}
    assert complete("--") == long_options
    command = next(c for c in walk(TREE) if c.path == path)
    if command.subcommands:
        names = {sub.path[-1] for sub in command.subcommands}
        assert complete("") == names
        assert all(name in help_text for name in names)
