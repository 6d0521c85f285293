"""Read and write the one value each action changes (a sysctl, a parameter, a file).

Every action has a *slot* holding text.  The executor reads the slot before
changing it (the original, kept in the journal), writes the wanted value,
reads it back to verify, and writes the original back to undo.  ``None``
means "absent" and only exists for files (undo = delete).

OS errors are translated here, once, into ctguard errors that say what to do.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ctguard.errors import AccessDenied, CtguardError, SourceMissing
from ctguard.kernel.netns import entered_netns
from ctguard.model.netns_ref import NetnsRef
from ctguard.plan.actions import (
    Action,
    DeleteEntries,
    LoadIpset,
    LoadIptables,
    LoadNftables,
    SetModuleParam,
    SetSysctl,
    WriteFile,
)


@dataclass(frozen=True)
class System:
    """Where runtime values live: the host's /proc and /sys (a tree in tests)."""

    proc: Path = Path("/proc")
    sys: Path = Path("/sys")


def normalized(value: str | None) -> str | None:
    """Kernel values compare by whitespace-separated words (sysctls end in a newline)."""
    return None if value is None else " ".join(value.split())


# iptables-save: comments with dates, counters; ipset save: time left, hash seeds.
_SAVE_VOLATILE = re.compile(r"^#.*$|\[\d+:\d+\]|\stimeout \d+|\sinitval 0x[0-9a-f]+", re.M)
_NFT_VOLATILE = re.compile(
    r"\s(?:expires|timeout) \S+?(?=[\s,}])|(?<=counter) packets \d+ bytes \d+"
)


def same_value(action: Action, first: str | None, second: str | None) -> bool:
    """Whether two slot values are the same setting.

    nftables listings carry counters and the time left of set elements, which
    change by themselves; they are not part of the ruleset's meaning.
    """
    if isinstance(action, LoadNftables) and first is not None and second is not None:
        first, second = _NFT_VOLATILE.sub("", first), _NFT_VOLATILE.sub("", second)
    if isinstance(action, LoadIptables | LoadIpset) and first is not None and second is not None:
        first, second = _SAVE_VOLATILE.sub("", first), _SAVE_VOLATILE.sub("", second)
    return normalized(first) == normalized(second)


def wanted_value(action: Action) -> str | None:
    """The value the action puts in its slot (None: the slot ends up absent)."""
    if isinstance(action, WriteFile):
        return action.content
    if isinstance(action, LoadNftables):
        return action.script
    if isinstance(action, LoadIptables):
        return action.content
    if isinstance(action, LoadIpset):
        return action.script
    if isinstance(action, DeleteEntries):
        return ""
    return action.value


def reversible(action: Action) -> bool:
    return not isinstance(action, DeleteEntries)


def precheck_slot(action: Action) -> None:
    """Validate a ruleset against the kernel without committing it (nft --check, --test)."""
    if isinstance(action, LoadNftables) and not action.removes:
        from ctguard.effects.commands import nft_check

        nft_check(action.script, action.netns)
    elif isinstance(action, LoadIptables):
        from ctguard.effects.commands import iptables_restore

        if "--match-set" not in action.content:  # sets are created by an earlier step
            iptables_restore(action.tool, action.content, action.netns, test=True)


def verify_slot(system: System, action: Action) -> str | None:
    """None when the slot holds what the action wanted; otherwise the problem."""
    if isinstance(action, DeleteEntries):
        return None  # new entries may legitimately appear; deletion itself was checked
    now = read_slot(system, action)
    if isinstance(action, LoadIpset):
        if action.script is None:
            return None if now is None else f"ipset {action.name} still exists"
        return f"ipset {action.name} is missing after loading" if now is None else None
    if isinstance(action, LoadIptables):
        from ctguard.rules.backends.iptables import ctguard_rule_count

        want, have = ctguard_rule_count(action.content), ctguard_rule_count(now or "")
        if want != have:
            return f"{slot_label(action)} holds {have} ctguard rules, wanted {want}"
        return None
    if isinstance(action, LoadNftables):
        if action.removes:
            return None if now is None else f"table {action.table} still exists"
        return f"table {action.table} is missing after loading" if now is None else None
    if normalized(now) != normalized(wanted_value(action)):
        return f"{slot_label(action)} is {normalized(now)!r}, wanted {wanted_value(action)!r}"
    return None


def slot_label(action: Action) -> str:
    if isinstance(action, LoadIptables | LoadIpset):
        suffix = f" in {action.netns.label}" if action.netns else ""
        if isinstance(action, LoadIptables):
            return f"{action.tool} table {action.table}{suffix}"
        return f"ipset {action.name}{suffix}"
    if isinstance(action, LoadNftables | DeleteEntries):
        suffix = f" in {action.netns.label}" if action.netns else ""
        if isinstance(action, LoadNftables):
            return f"nftables table {action.table}{suffix}"
        return f"conntrack entries of {' '.join(action.networks)}{suffix}"
    if isinstance(action, SetSysctl):
        return action.name + (f" in {action.netns.label}" if action.netns else "")
    if isinstance(action, SetModuleParam):
        return f"/sys/{action.sys_rel}"
    return action.path


def read_slot(system: System, action: Action) -> str | None:
    if isinstance(action, LoadIptables):
        from ctguard.effects.commands import iptables_save

        return iptables_save(action.tool, action.table, action.netns)
    if isinstance(action, LoadIpset):
        from ctguard.effects.commands import ipset_save

        return ipset_save(action.name, action.netns)
    if isinstance(action, LoadNftables):
        from ctguard.effects.commands import nft_list_table

        return nft_list_table(action.table, action.netns)
    if isinstance(action, DeleteEntries):
        return None
    if isinstance(action, WriteFile):
        try:
            return Path(action.path).read_text()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise _os_error(err, "read", action) from err
    path = _kernel_path(system, action)
    try:
        with entered_netns(_netns(action)):
            return path.read_text()
    except FileNotFoundError as err:
        raise SourceMissing(
            f"{slot_label(action)} does not exist",
            where=str(path),
            hint="is nf_conntrack loaded (modprobe nf_conntrack)? legacy kernels use the "
            "net.ipv4.netfilter.ip_conntrack_* names",
        ) from err
    except OSError as err:
        raise _os_error(err, "read", action) from err


def missing_dirs(action: Action) -> list[str]:
    """The directories writing ``action``'s file would create, outermost first."""
    if not isinstance(action, WriteFile):
        return []
    missing: list[str] = []
    parent = Path(action.path).parent
    while not parent.exists() and parent != parent.parent:
        missing.append(str(parent))
        parent = parent.parent
    return missing[::-1]


def remove_created_dirs(paths: list[str]) -> tuple[list[str], list[str]]:
    """Remove directories a change created, deepest first, only while they are empty.

    Returns (removed, kept): a directory that now holds something ctguard did
    not write is kept, with the reason.
    """
    removed: list[str] = []
    kept: list[str] = []
    for path in sorted(set(paths), key=lambda item: item.count("/"), reverse=True):
        directory = Path(path)
        if not directory.is_dir() or directory.is_symlink():
            continue
        try:
            directory.rmdir()
        except OSError as err:
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST):
                kept.append(f"{path} kept: it holds files ctguard did not write")
            else:
                kept.append(f"{path} kept: {err.strerror}")
            continue
        removed.append(path)
    return removed, kept


def write_slot(system: System, action: Action, value: str | None) -> None:
    if isinstance(action, LoadIptables):
        from ctguard.effects.commands import iptables_restore

        iptables_restore(action.tool, value or "", action.netns)
        return
    if isinstance(action, LoadIpset):
        from ctguard.effects.commands import ipset_load

        ipset_load(action.name, value, action.netns)
        return
    if isinstance(action, LoadNftables):
        from ctguard.effects.commands import nft_replace_table

        nft_replace_table(action.table, value, action.netns)
        return
    if isinstance(action, DeleteEntries):
        from ctguard.effects.commands import delete_entries

        for network in action.networks:
            delete_entries(network, action.netns, action.match)
        return
    if isinstance(action, WriteFile):
        _write_file(action, value)
        return
    if value is None:
        raise CtguardError(f"cannot remove {slot_label(action)}: it is not a file")
    path = _kernel_path(system, action)
    try:
        with entered_netns(_netns(action)), open(path, "w") as handle:
            handle.write(value)
    except OSError as err:
        raise _os_error(err, "write", action) from err


def _netns(action: SetSysctl | SetModuleParam) -> NetnsRef | None:
    return action.netns if isinstance(action, SetSysctl) else None


def _kernel_path(system: System, action: SetSysctl | SetModuleParam) -> Path:
    if isinstance(action, SetSysctl):
        return system.proc / action.proc_rel
    return system.sys / action.sys_rel


def _write_file(action: WriteFile, value: str | None) -> None:
    path = Path(action.path)
    try:
        if value is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(value)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, action.mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise _os_error(err, "write", action) from err


def _os_error(err: OSError, verb: str, action: Action) -> CtguardError:
    label = slot_label(action)
    where = getattr(err, "filename", None) or label
    if err.errno == errno.EROFS:
        return AccessDenied(
            f"cannot {verb} {label}: the file system is read-only",
            where=str(where),
            hint="in a container /proc/sys is usually mounted read-only: change this on the "
            "host (or give the container its own writable net.* sysctls)",
        )
    if err.errno in (errno.EACCES, errno.EPERM):
        hint = "run as root (sudo)"
        if isinstance(action, SetSysctl) and action.netns is not None:
            hint = (
                "nf_conntrack_max, _buckets and _expect_max are global and read-only inside a "
                "network namespace: set them from the host's namespace (without --netns)"
            )
        return AccessDenied(f"permission denied to {verb} {label}", where=str(where), hint=hint)
    if err.errno == errno.EOPNOTSUPP:
        return AccessDenied(
            f"the kernel refuses to {verb} {label} here",
            where=str(where),
            hint="the hash size can only be changed from the host's (init) network namespace",
        )
    if err.errno == errno.EINVAL:
        return CtguardError(
            f"the kernel rejected the value for {label}",
            where=str(where),
            hint="check the value's range; see `ctguard advise` for sensible ones",
        )
    return CtguardError(f"cannot {verb} {label}: {err.strerror}", where=str(where))
