"""Lab network namespaces with guaranteed cleanup."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ctguard.errors import AccessDenied, CtguardError, SourceMissing
from ctguard.kernel.netns import entered_netns, resolve_netns
from ctguard.model.netns_ref import NetnsRef

PREFIX = "ctg"
JOURNAL_DIR = Path("/run/ctguard/lab")
COMMAND_TIMEOUT = 30.0
KMSG = Path("/dev/kmsg")


def mark_kernel_log(text: str, kmsg: Path | None = KMSG) -> bool:
    """Write ``text`` into the kernel log (level info; the kernel gives lines
    written from user space the user facility).

    A lab run marks each namespace it makes, by inode, and marks the run
    closed once they are gone: the 'table full' lines its rehearsals cause
    then read as the lab's (see analyze.log_episodes.mark_lab_lines), not as
    the host's trouble, in `ctguard logs`, `doctor` and `advise`.  Best
    effort: a kernel log that cannot be written to only loses the marks.
    """
    if kmsg is None:
        return False
    try:
        # one write() per record; O_APPEND without the seek to the end that
        # Python's "a" mode does, which /dev/kmsg refuses
        fd = os.open(kmsg, os.O_WRONLY | os.O_APPEND)  # never created: it is a device
        try:
            os.write(fd, f"<6>{text}\n".encode("ascii"))
        finally:
            os.close(fd)
    except OSError:
        return False
    return True


def lab_marker_text(run_id: str, inode: int | None = None) -> str:
    """The marker of a namespace made (``inode``) or of the run closed."""
    what = f"netns={inode} added" if inode is not None else "closed"
    return f"ctguard-lab: run={run_id} {what}"


def run_command(argv: list[str], *, input_text: str | None = None, check: bool = True) -> str:
    """Run argv (never a shell); raise CtguardError with its stderr on failure."""
    try:
        done = subprocess.run(
            argv,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as err:
        raise SourceMissing(
            f"{argv[0]} is not installed", hint="apt-get install iproute2 nftables"
        ) from err
    if check and done.returncode != 0:
        raise CtguardError(
            f"{' '.join(argv[:4])} failed (exit {done.returncode}): {done.stderr.strip()[:300]}"
        )
    return done.stdout


def lab_preflight() -> None:
    """Refuse clearly when the lab cannot run here."""
    if os.geteuid() != 0:
        raise AccessDenied("the lab needs root (network namespaces, netlink)", hint="run as root")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            raise SourceMissing(
                f"{tool} is not installed", hint="apt-get install iproute2 nftables"
            )
    if not Path("/proc/self/ns/net").exists():
        raise SourceMissing("this kernel has no network namespace support")


def process_start_time(pid: int) -> int | None:
    """Start time in clock ticks since boot (field 22 of /proc/PID/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


@dataclass
class LabNamespace:
    name: str
    ref: NetnsRef

    def exec(self, argv: list[str], *, input_text: str | None = None, check: bool = True) -> str:
        return run_command(
            ["ip", "netns", "exec", self.name, *argv], input_text=input_text, check=check
        )

    def nft(self, script: str) -> None:
        self.exec(["nft", "-f", "-"], input_text=script)

    @contextmanager
    def entered(self) -> Iterator[None]:
        with entered_netns(self.ref):
            yield

    def enable_conntrack(self) -> None:
        """Add a `ct state` rule: only then does this netns register conntrack hooks."""
        self.nft(
            "table inet ctg_lab_track {\n"
            "  chain pre { type filter hook prerouting priority 0; ct state new counter; }\n"
            "  chain out { type filter hook output priority 0; ct state new counter; }\n"
            "}\n"
        )

    def read_sysctl(self, dotted: str) -> str:
        with self.entered(), open("/proc/sys/" + dotted.replace(".", "/")) as handle:
            return handle.read().strip()

    def write_sysctl(self, dotted: str, value: str) -> None:
        """Per-netns sysctls only (timeouts, acct, ...); global ones are read-only here."""
        with self.entered(), open("/proc/sys/" + dotted.replace(".", "/"), "w") as handle:
            handle.write(value)


@dataclass
class Lab:
    """A set of namespaces and links; use as a context manager."""

    journal_dir: Path = JOURNAL_DIR
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    namespaces: list[LabNamespace] = field(default_factory=list)
    kmsg: Path | None = KMSG  # where the run marks its namespaces (see mark_kernel_log)

    @property
    def journal(self) -> Path:
        return self.journal_dir / f"{self.run_id}.json"

    @property
    def state_dir(self) -> Path:
        """The run's own ctguard state (change journal, firewall state): undone at close."""
        return self.journal_dir / f"{self.run_id}.state"

    def _record(self, name: str) -> None:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        names = [ns.name for ns in self.namespaces] + [name]
        tmp = self.journal.with_suffix(".tmp")
        owner = {"pid": os.getpid(), "start": process_start_time(os.getpid())}
        record = {**owner, "namespaces": names, "state_dir": str(self.state_dir)}
        tmp.write_text(json.dumps(record))
        tmp.replace(self.journal)

    def add_namespace(self, short: str) -> LabNamespace:
        name = f"{PREFIX}-{self.run_id}-{short}"
        self._record(name)  # journal first: a crash right after still gets cleaned
        run_command(["ip", "netns", "add", name])
        namespace = LabNamespace(name, resolve_netns(name))
        self.namespaces.append(namespace)
        mark_kernel_log(lab_marker_text(self.run_id, namespace.ref.inode), self.kmsg)
        namespace.exec(["ip", "link", "set", "lo", "up"])
        # No duplicate address detection: a tentative link-local address
        # stalls neighbour discovery for seconds after a veth comes up.
        for scope in ("all", "default"):
            namespace.write_sysctl(f"net.ipv6.conf.{scope}.accept_dad", "0")
        return namespace

    def link(self, a: LabNamespace, b: LabNamespace, subnet: int = 77) -> tuple[str, str]:
        """A veth pair a<->b with 10.<subnet>.0.1/.2 and fd00:<subnet>::1/::2; returns v4 addrs."""
        tag = f"{self.run_id[:4]}{len(self.namespaces)}{subnet % 100}"
        left, right = f"cga{tag}"[:15], f"cgb{tag}"[:15]
        run_command(
            [
                "ip",
                "link",
                "add",
                left,
                "netns",
                a.name,
                "type",
                "veth",
                "peer",
                "name",
                right,
                "netns",
                b.name,
            ]
        )
        for ns, dev, host in ((a, left, 1), (b, right, 2)):
            ns.exec(["ip", "addr", "add", f"10.{subnet}.0.{host}/24", "dev", dev])
            ns.exec(["ip", "-6", "addr", "add", f"fd00:{subnet}::{host}/64", "dev", dev, "nodad"])
            ns.exec(["ip", "link", "set", dev, "up"])
        return f"10.{subnet}.0.1", f"10.{subnet}.0.2"

    def close(self) -> None:
        # Changes first (a global nf_conntrack_max must go back even if a
        # namespace refuses to die), while the namespaces they touch exist.
        errors = undo_changes(self.state_dir)
        deleted = bool(self.namespaces)
        for namespace in reversed(self.namespaces):
            try:
                run_command(["ip", "netns", "del", namespace.name])
            except CtguardError as err:
                errors.append(str(err))
                deleted = False
        if deleted:  # else `ctguard lab clean` marks the run closed once they are gone
            mark_kernel_log(lab_marker_text(self.run_id), self.kmsg)
        self.namespaces.clear()
        if errors:  # the journal stays, so `ctguard lab clean` can finish the job
            raise CtguardError(
                "lab cleanup failed: " + "; ".join(errors), hint="run `ctguard lab clean`"
            )
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.journal.unlink(missing_ok=True)
        remove_empty_journal_dir(self.journal_dir)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def undo_changes(state_dir: Path) -> list[str]:
    """Roll back every change a lab run made through ctguard (newest first).

    The run's remedies and its temporary global values all go through the
    journaled executor with ``state_dir`` as their state, so this restores
    exactly what was there before, also after a crash.  Changes made only
    inside the lab's namespaces are left to die with them.  Returns the errors.
    """
    from ctguard.effects.executor import recover_interrupted, rollback_change
    from ctguard.effects.journal import Journal
    from ctguard.effects.slots import System

    if not (state_dir / "changes").is_dir():
        return []
    journal, system = Journal(state_dir), System()
    errors: list[str] = []
    try:
        reports = recover_interrupted(journal, system)
        for change in reversed(journal.all()):
            touches_host = any(getattr(s.action, "netns", None) is None for s in change.steps)
            if change.status == "applied" and touches_host:
                reports.append(rollback_change(change, journal, system))
    except CtguardError as err:
        return [err.what]
    for report in reports:
        errors.extend(report.errors)
    return errors


def clean_leftovers(journal_dir: Path = JOURNAL_DIR, kmsg: Path | None = KMSG) -> list[str]:
    """Delete namespaces of lab runs whose process is gone; return their names."""
    removed: list[str] = []
    for journal in sorted(journal_dir.glob("*.json")) if journal_dir.is_dir() else []:
        try:
            data = json.loads(journal.read_text())
        except (OSError, ValueError):
            journal.unlink(missing_ok=True)
            continue
        pid = int(data.get("pid", 0))
        if pid and process_start_time(pid) == data.get("start"):
            continue  # that run is still alive (same pid, same start: not a reused pid)
        state_dir = Path(data.get("state_dir") or journal.with_suffix(".state"))
        problems = undo_changes(state_dir)
        if problems:
            raise CtguardError(
                "could not undo a crashed lab run's changes: " + "; ".join(problems),
                where=str(state_dir),
                hint="see `CTGUARD_STATE_DIR=" + str(state_dir) + " ctguard rollback --list`",
            )
        shutil.rmtree(state_dir, ignore_errors=True)
        for name in data.get("namespaces", []):
            if Path(f"/run/netns/{name}").exists():
                run_command(["ip", "netns", "del", name], check=False)
                removed.append(name)
        mark_kernel_log(lab_marker_text(journal.stem), kmsg)
        journal.unlink(missing_ok=True)
    remove_empty_journal_dir(journal_dir)
    return removed


def remove_empty_journal_dir(journal_dir: Path) -> None:
    """Remove /run/ctguard/lab, and /run/ctguard, once nothing is left in them
    (another run's journal, or other ctguard state, keeps them)."""
    if journal_dir != JOURNAL_DIR:
        return
    for directory in (journal_dir, journal_dir.parent):
        try:
            directory.rmdir()
        except OSError:  # not empty, or already gone
            return
