"""The man page and the bash completion, generated from the real parser.

Both are written at package build time (`python3 -m ctguard.cli.docgen man`,
`... bash-completion`) from the same parser `ctguard --help` prints, so a new
command or option appears in them without anyone writing it twice.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

from ctguard import __version__
from ctguard.cli.env import Environment, ExitStatus

# Options whose value is a path: the completion offers file names for them.
_PATH_METAVARS = ("DIR", "FILE", "PATH", "SOURCE", "BUNDLE", "OUT")


@dataclass
class Command:
    """One (sub)command as the parser knows it."""

    path: list[str]  # e.g. ["lab", "run"]
    summary: str
    parser: argparse.ArgumentParser
    subcommands: list[Command] = field(default_factory=list)

    @property
    def options(self) -> list[argparse.Action]:
        return [
            a
            for a in self.parser._actions
            if a.option_strings and not isinstance(a, argparse._HelpAction)
        ]

    @property
    def positionals(self) -> list[argparse.Action]:
        return [
            a
            for a in self.parser._actions
            if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
        ]


def _subcommands(parser: argparse.ArgumentParser, path: list[str]) -> list[Command]:
    found: list[Command] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, subparser in action.choices.items():
            command = Command([*path, name], summaries.get(name, ""), subparser)
            command.subcommands = _subcommands(subparser, command.path)
            found.append(command)
    return found


def command_tree(parser: argparse.ArgumentParser | None = None) -> Command:
    """Every command of the real parser (all of COMMANDS imported)."""
    if parser is None:
        from ctguard.cli.main import build_parser

        parser = build_parser(Environment(stdout=io.StringIO(), stderr=io.StringIO()))
    top = Command([], parser.description or "", parser)
    top.subcommands = _subcommands(parser, [])
    return top


def walk(command: Command) -> Iterator[Command]:
    yield command
    for sub in command.subcommands:
        yield from walk(sub)


def _option_label(action: argparse.Action) -> str:
    names = ", ".join(action.option_strings)
    if action.nargs == 0:
        return names
    metavar = action.metavar or action.dest.upper()
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    return f"{names} {metavar}"


def _help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The option's help exactly as --help expands it (%(default)s, %%)."""
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    return " ".join(text.split())


# --- man page -------------------------------------------------------------


def _roff(text: str) -> str:
    """Escape text for roff: backslashes, hyphens in words, and lines that
    would start with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in text.split("\n")
    )


def _synopsis(command: Command) -> str:
    parts = ["ctguard", *command.path]
    if command.options:
        parts.append("[OPTIONS]")
    for action in command.positionals:
        metavar = action.metavar or action.dest.upper()
        label = " ".join(metavar) if isinstance(metavar, tuple) else str(metavar)
        if action.nargs in ("?", "*"):
            label = f"[{label}{' ...' if action.nargs == '*' else ''}]"
        elif action.nargs == "+":
            label = f"{label} ..."
        parts.append(label)
    if command.subcommands:
        parts.append("|".join(sub.path[-1] for sub in command.subcommands))
    return " ".join(parts)


def _man_command(command: Command, out: list[str]) -> None:
    out.append(f".SS {_roff(_synopsis(command))}")
    description = command.parser.description or command.summary
    out.append(_roff(" ".join(description.split())))
    for action in command.positionals:
        out.append(".TP")
        out.append(f".I {_roff(str(action.metavar or action.dest.upper()))}")
        out.append(_roff(_help_text(command.parser, action)))
    for action in command.options:
        out.append(".TP")
        out.append(f".B {_roff(_option_label(action))}")
        out.append(_roff(_help_text(command.parser, action)))
    for sub in command.subcommands:
        _man_command(sub, out)


def man_page(top: Command | None = None, date: str | None = None) -> str:
    """ctguard(1) in roff (man(7) macros)."""
    top = top or command_tree()
    if date is None:
        # reproducible builds: the date of the source, not of the build
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None
        when = datetime.datetime.fromtimestamp(epoch, datetime.UTC) if epoch else None
        date = (when or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%d")
    out = [
        '.\\" Generated by ctguard.cli.docgen from the argument parser; do not edit.',
        f'.TH CTGUARD 1 "{date}" "ctguard {__version__}" "User Commands"',
        ".SH NAME",
        "ctguard \\- diagnose, explain and fix conntrack table exhaustion",
        ".SH SYNOPSIS",
        ".B ctguard",
        "[\\fB\\-\\-version\\fR] [\\fB\\-h\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION",
        _roff(" ".join(top.summary.split())),
        "Start with",
        '.BR "ctguard doctor" .',
        "Every reading command has \\fB\\-\\-json\\fR and \\fB\\-\\-root\\fR;",
        "every command that changes the system prints its plan and changes nothing",
        "without \\fB\\-\\-yes\\fR.",
        ".SH OPTIONS",
    ]
    for action in top.options:
        out += [".TP", f".B {_roff(_option_label(action))}", _roff(_help_text(top.parser, action))]
    out.append(".SH COMMANDS")
    for sub in top.subcommands:
        _man_command(sub, out)
    out.append(".SH EXIT STATUS")
    for status in ExitStatus:
        out += [".TP", f".B {int(status)}", status.name.lower().replace("_", " ")]
    out += [
        ".SH ENVIRONMENT",
        ".TP",
        ".B CTGUARD_DEBUG",
        "set to 1 to print the traceback of an internal error",
        ".SH FILES",
        ".TP",
        ".I /var/lib/ctguard",
        "state: the journal of changes, firewall state",
        ".TP",
        ".I /etc/ctguard/guard.toml",
        "the guard's configuration",
        ".SH SEE ALSO",
        ".BR conntrack (8),",
        ".BR nft (8),",
        ".BR iptables (8),",
        "/usr/share/doc/ctguard/",
    ]
    return "\n".join(out) + "\n"


# --- bash completion ------------------------------------------------------


def _takes_path(action: argparse.Action) -> bool:
    metavar = str(action.metavar or action.dest).upper()
    return any(word in metavar for word in _PATH_METAVARS)


def _sh_words(words: list[str]) -> str:
    return " ".join(words).replace("'", "")


def bash_completion(top: Command | None = None) -> str:
    """A bash completion function for ctguard: commands, each command's
    options, the choices of options that have them, file names for paths."""
    top = top or command_tree()
    lines = [
        "# bash completion for ctguard",
        "# Generated by ctguard.cli.docgen from the argument parser; do not edit.",
        "_ctguard() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    local i word path=""',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        word="${COMP_WORDS[i]}"',
        "        [[ $word == -* ]] && continue",
        '        case "$path $word" in',
    ]
    for command in walk(top):
        for sub in command.subcommands:
            lines.append(
                f'            "{" ".join(["", *command.path])} {sub.path[-1]}") '
                f'path="$path {sub.path[-1]}" ;;'
            )
    lines += [
        "        esac",
        "    done",
        '    case "$path" in',
    ]
    for command in walk(top):
        key = " ".join(["", *command.path])
        options = [o for a in command.options for o in a.option_strings] + ["--help"]
        lines.append(f'        "{key}")')
        lines.append('            case "$prev" in')
        for action in command.options:
            if action.nargs == 0:
                continue
            pattern = "|".join(action.option_strings)
            if action.choices:
                words = _sh_words([str(c) for c in action.choices])
                lines.append(
                    f"                {pattern}) COMPREPLY=($(compgen -W '{words}' -- \"$cur\"));"
                    " return ;;"
                )
            elif _takes_path(action):
                lines.append(
                    f'                {pattern}) COMPREPLY=($(compgen -f -- "$cur")); return ;;'
                )
            else:
                lines.append(f"                {pattern}) return ;;")
        lines.append("            esac")
        words = _sh_words(options)
        lines.append(
            "            if [[ $cur == -* ]]; then "
            f"COMPREPLY=($(compgen -W '{words}' -- \"$cur\"));"
        )
        if command.subcommands:
            subs = _sh_words([sub.path[-1] for sub in command.subcommands])
            lines.append(f"            else COMPREPLY=($(compgen -W '{subs}' -- \"$cur\")); fi ;;")
        elif command.positionals:
            lines.append('            else COMPREPLY=($(compgen -f -- "$cur")); fi ;;')
        else:
            lines.append("            fi ;;")
    lines += [
        "    esac",
        "}",
        "complete -o filenames -F _ctguard ctguard",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m ctguard.cli.docgen",
        description="Write ctguard's man page or bash completion, from its argument parser.",
    )
    parser.add_argument("what", choices=["man", "bash-completion"])
    parser.add_argument("-o", "--output", help="write here instead of stdout")
    args = parser.parse_args(argv)
    text = man_page() if args.what == "man" else bash_completion()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
