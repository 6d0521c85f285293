"""Commands ctguard prints for an operator to copy and paste.

Each is built as argv and shell-quoted word by word, so a file or namespace
name with spaces or shell characters runs exactly what was meant (never a
string split back into words later).
"""

from __future__ import annotations

import shlex


def ctguard_command(*argv: str, comment: str = "", sudo: bool = False) -> str:
    """``ctguard ARGV...`` quoted for a POSIX shell, with an optional ``# comment``."""
    line = shlex.join([*(["sudo"] if sudo else []), "ctguard", *argv])
    return f"{line}   # {comment}" if comment else line
