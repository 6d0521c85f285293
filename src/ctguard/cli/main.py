"""Entry point: ``main(argv, env)`` parses, dispatches and maps errors to exit codes."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

from ctguard import __version__
from ctguard.cli.env import Environment, ExitStatus
from ctguard.errors import AccessDenied, ChangeFailed, CtguardError, Terminated, UsageError

# command name -> module under ctguard.cli; each module has add_parser() and run().
COMMANDS = {
    "doctor": "doctor",
    "status": "status",
    "capture": "capture",
    "logs": "logs",
    "top": "top",
    "analyze": "analyze",
    "advise": "advise",
    "apply": "apply",
    "rollback": "rollback",
    "notrack": "notrack",
    "block": "block",
    "unblock": "unblock",
    "blocked": "blocked",
    "guard": "guard",
    "trace": "trace",
    "audit": "audit",
    "report": "report",
    "lab": "lab",
    "explain": "explain",
    "watch": "watch",
    "exporter": "exporter",
}

# Commands that only read and print.  Nothing of theirs needs the
# interpreter's module-by-module teardown (10-20 ms once rich is loaded), so
# they leave with os._exit once their output is flushed and the exit
# handlers (a packed bundle's unpacked copy) have run.
QUICK_EXIT_COMMANDS = frozenset({"top", "analyze", "status", "doctor"})


class _Exit(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse writing to the injected streams and never calling sys.exit."""

    env: Environment

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        if message:
            stream = self.env.stderr if file is sys.stderr else self.env.stdout
            stream.write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self.env.stderr.write(message)
        raise _Exit(status)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"see `{self.prog} --help`")


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the top level has no valued options)."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in COMMANDS else None


class _VersionAction(argparse.Action):
    """--version printed as written (argparse's own action rewraps it onto one line)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        parser._print_message(version_text(), sys.stdout)
        parser.exit()


def version_text() -> str:
    """The version, and where this ctguard runs from (which copy, which Python):
    the first thing to know when a host has a package and a clone side by side."""
    import platform

    import ctguard

    package_dir = os.path.dirname(os.path.abspath(ctguard.__file__))
    return (
        f"ctguard {__version__}\n"
        f"  package: {package_dir}\n"
        f"  python:  {platform.python_version()} ({sys.executable})\n"
    )


def build_parser(env: Environment, only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's (its module alone is imported,
    which keeps `ctguard status` from importing every other command)."""
    _Parser.env = env
    parser = _Parser(
        prog="ctguard",
        description="Diagnose, explain and fix conntrack table exhaustion "
        "(nf_conntrack: table full, dropping packet).",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="show the version, where it runs from, and exit"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module_name in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(f"ctguard.cli.{module_name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> ExitStatus:
    env = env or Environment()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(env, chosen_command(argv))
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help(env.stdout)
            return ExitStatus.USAGE
        module = importlib.import_module(f"ctguard.cli.{COMMANDS[args.command]}")
        return ExitStatus(module.run(args, env))
    except _Exit as done:
        return ExitStatus.OK if done.status == 0 else ExitStatus.USAGE
    except UsageError as err:
        env.stderr.write(f"ctguard: error: {err.message}\n")
        return ExitStatus.USAGE
    except ChangeFailed as err:
        env.stderr.write(f"ctguard: {err.message}\n")
        return ExitStatus.CHANGE_FAILED
    except Terminated as err:
        env.stderr.write(f"ctguard: stopped by {err}; what it had changed was put back\n")
        return ExitStatus.INTERRUPTED
    except AccessDenied as err:
        env.stderr.write(f"ctguard: {err.message}\n")
        return ExitStatus.UNKNOWN
    except CtguardError as err:
        env.stderr.write(f"ctguard: {err.message}\n")
        return ExitStatus.UNKNOWN
    except KeyboardInterrupt:
        env.stderr.write("ctguard: interrupted\n")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        return ExitStatus.OK
    except Exception as err:  # a bug: say so plainly, details on request
        if env.environ.get("CTGUARD_DEBUG"):
            raise
        env.stderr.write(
            f"ctguard: internal error: {type(err).__name__}: {err}\n"
            "  what to do: rerun with CTGUARD_DEBUG=1 for the traceback and report it\n"
        )
        return ExitStatus.UNKNOWN


def run() -> NoReturn:
    """Console-script entry point."""
    status = main()
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    if chosen_command(sys.argv[1:]) in QUICK_EXIT_COMMANDS and _only_daemon_threads():
        with contextlib.suppress(BrokenPipeError):
            sys.stderr.flush()
        atexit._run_exitfuncs()
        os._exit(int(status))
    sys.exit(int(status))


def _only_daemon_threads() -> bool:
    """No thread is left that a normal exit would wait for."""
    main_thread = threading.main_thread()
    return all(t.daemon for t in threading.enumerate() if t is not main_thread)
