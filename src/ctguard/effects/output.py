"""Files a command writes for the operator (a report): whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ctguard.errors import CtguardError


def write_output_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temp file in the same directory,
    then a rename): a reader never sees half a file, and a failure leaves what
    was there before."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise CtguardError(
            "the output directory does not exist",
            where=str(directory),
            hint="create it, or give -o a path in an existing directory",
        )
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as err:
        raise CtguardError(f"cannot write here: {err.strerror}", where=str(directory)) from err
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise CtguardError(f"cannot write the file: {err.strerror}", where=str(path)) from err
