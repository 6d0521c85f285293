"""The change journal: originals recorded before anything is written.

One JSON file per change set under ``STATE_DIR/changes/``, written
atomically and fsynced before the first write to the system, so a crash at
any point leaves enough on disk to put every value back.  Status moves
``applying`` -> ``applied`` | ``failed`` (rolled back at once), and
``applied`` -> ``rolling-back`` -> ``rolled-back``.  A set found in
``applying`` or ``rolling-back`` on the next run was interrupted: the
executor restores its originals (``recovered``).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctguard.errors import AccessDenied, CtguardError, ParseError
from ctguard.plan.actions import Action, action_from_dict

DEFAULT_STATE_DIR = Path("/var/lib/ctguard")
JOURNAL_VERSION = 1
INTERRUPTED = ("applying", "rolling-back")


def state_dir_from(environ: dict[str, str]) -> Path:
    """``CTGUARD_STATE_DIR`` or /var/lib/ctguard."""
    return Path(environ.get("CTGUARD_STATE_DIR") or DEFAULT_STATE_DIR)


@dataclass
class Step:
    action: Action
    original: str | None  # None: the file did not exist
    # Directories missing before the change (outermost first): writing the file creates
    # them, so putting the tree back removes them again.
    created_dirs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"action": self.action.to_dict(), "original": self.original}
        if self.created_dirs:
            data["created_dirs"] = list(self.created_dirs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        dirs = data.get("created_dirs", [])
        if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
            raise TypeError("created_dirs is not a list of paths")
        return cls(action_from_dict(data["action"]), data["original"], list(dirs))


@dataclass
class ChangeSet:
    id: str
    created: float
    title: str
    status: str
    steps: list[Step]
    history: list[tuple[float, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": JOURNAL_VERSION,
            "id": self.id,
            "created": self.created,
            "title": self.title,
            "status": self.status,
            "history": [[when, status] for when, status in self.history],
            "steps": [step.to_dict() for step in self.steps],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChangeSet:
        return cls(
            id=str(data["id"]),
            created=float(data["created"]),
            title=str(data["title"]),
            status=str(data["status"]),
            steps=[Step.from_dict(step) for step in data["steps"]],
            history=[(float(when), str(status)) for when, status in data.get("history", [])],
        )


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.directory = state_dir / "changes"

    def _ensure(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except PermissionError as err:
            raise AccessDenied(
                "cannot create the change journal",
                where=str(self.directory),
                hint="run as root (sudo), or set CTGUARD_STATE_DIR to a writable directory",
            ) from err

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One changing ctguard at a time (an exclusive lock on the state directory)."""
        self._ensure()
        handle = open(self.state_dir / "lock", "a")  # noqa: SIM115 - held for the block
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                raise CtguardError(
                    "another ctguard is changing this host right now",
                    where=str(self.state_dir / "lock"),
                    hint="wait for it to finish, then run this command again",
                ) from err
            yield
        finally:
            handle.close()

    def create(self, title: str, steps: list[Step]) -> ChangeSet:
        self._ensure()
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        change = ChangeSet(f"{stamp}-{secrets.token_hex(2)}", now, title, "applying", steps)
        self.save(change, "applying")
        return change

    def save(self, change: ChangeSet, status: str) -> None:
        change.status = status
        change.history.append((time.time(), status))
        path = self.directory / f"{change.id}.json"
        fd, tmp = tempfile.mkstemp(prefix=".change.", dir=self.directory)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(change.to_dict(), handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def all(self) -> list[ChangeSet]:
        """Every recorded change set, oldest first."""
        try:
            if not self.directory.is_dir():
                return []
            paths = sorted(self.directory.glob("*.json"))
        except PermissionError as err:
            raise AccessDenied(
                "cannot read the change journal",
                where=str(self.directory),
                hint="run as root (sudo)",
            ) from err
        changes = []
        for path in paths:
            try:
                changes.append(ChangeSet.from_dict(json.loads(path.read_text())))
            except (ValueError, KeyError, TypeError) as err:
                raise ParseError(
                    "damaged change journal entry",
                    where=str(path),
                    hint="inspect it; move it away to continue (its originals are inside)",
                ) from err
        return sorted(changes, key=lambda change: (change.created, change.id))

    def get(self, change_id: str) -> ChangeSet:
        for change in self.all():
            if change.id == change_id:
                return change
        raise CtguardError(
            f"no change set {change_id!r} in the journal",
            where=str(self.directory),
            hint="list them with `ctguard rollback --list`",
        )

    def interrupted(self) -> list[ChangeSet]:
        return [change for change in self.all() if change.status in INTERRUPTED]

    def last_applied(self) -> ChangeSet | None:
        applied = [change for change in self.all() if change.status == "applied"]
        return applied[-1] if applied else None
