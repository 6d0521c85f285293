"""The small exception tree every layer speaks.

OS errors are translated once, where a file or socket is touched, into one
of these, always chained (``raise ... from err``).  Each carries *what*
failed, *where*, and *what to do*, so the CLI can print it without a
traceback.
"""

from __future__ import annotations


class CtguardError(Exception):
    """Base of every error ctguard reports to a user."""

    def __init__(self, what: str, *, where: str = "", hint: str = "") -> None:
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [self.what]
        if self.where:
            parts.append(f"({self.where})")
        text = " ".join(parts)
        if self.hint:
            text += f"\n  what to do: {self.hint}"
        return text


class SourceMissing(CtguardError):
    """A file, tool or kernel facility ctguard needs does not exist."""


class AccessDenied(CtguardError):
    """The data exists but this process may not read or change it."""


class ParseError(CtguardError):
    """Input exists but is not in any format ctguard knows."""

    def __init__(
        self, what: str, *, where: str = "", line: int | None = None, hint: str = ""
    ) -> None:
        self.line = line
        if line is not None:
            where = f"{where}, line {line}" if where else f"line {line}"
        super().__init__(what, where=where, hint=hint)


class UsageError(CtguardError):
    """The command line asks for something impossible or contradictory."""


class ChangeFailed(CtguardError):
    """A change was attempted and rolled back (exit status 4)."""


class Terminated(BaseException):
    """SIGTERM/SIGHUP arrived mid-change: unwind through the rollback."""
