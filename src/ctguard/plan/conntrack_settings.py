"""Plan conntrack setting changes: runtime values and the files that survive reboot.

Runtime: sysctls (dotted names, legacy ``net.ipv4.netfilter.ip_conntrack_*``
on legacy kernels) and the hash size through the module parameter, which
resizes the hash without touching max (FACTS.md §1).

Persistent (host namespace only), three files because of boot order
(FACTS.md §7): ``sysctl.d`` holds the values, ``modules-load.d`` loads the
module before systemd-sysctl applies them (otherwise: "unknown key"), and
``modprobe.d`` passes ``hashsize=`` at load (the only way to size the hash
at boot).  Each file is ctguard's own: values from earlier applies are kept
and only the keys being changed are replaced.

The neighbour tables' gc_thresh1/2/3 (global, like max) go in the same
sysctl.d file; they need no module, and are written in an order that keeps
gc_thresh1 <= gc_thresh2 <= gc_thresh3 at every step (and so does the
rollback, which undoes the steps in reverse).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ctguard.advise.neighbours import INT_MAX, KERNEL_DEFAULTS, KEYS
from ctguard.advise.sizing import MAX_ENTRIES_LIMIT, round_up_to_page
from ctguard.advise.timeouts import MAX_TIMEOUT_SECONDS
from ctguard.errors import UsageError
from ctguard.model.netns_ref import NetnsRef
from ctguard.model.snapshot import Snapshot
from ctguard.plan.actions import Action, Plan, SetModuleParam, SetSysctl, WriteFile

SYSCTL_FILE = "sysctl.d/95-ctguard-conntrack.conf"
MODPROBE_FILE = "modprobe.d/ctguard-conntrack.conf"
MODULES_LOAD_FILE = "modules-load.d/ctguard-conntrack.conf"
HEADER = "# Written by `ctguard apply`; undo with `ctguard rollback`.\n"
_SYSCTL_LINE = re.compile(r"^\s*([\w.\-/]+)\s*=\s*(\S.*?)\s*$")
_OPTION_LINE = re.compile(r"^\s*options\s+(\S+)\s+(.*)$")


@dataclass(frozen=True)
class SettingTargets:
    """What to set: global sizing and per-netns timeouts (seconds, by short key)."""

    max: int | None = None
    buckets: int | None = None
    timeouts: dict[str, int] = field(default_factory=dict)
    # net.{ipv4,ipv6}.neigh.default.gc_thresh{1,2,3} -> value (global)
    neighbours: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return (
            self.max is None and self.buckets is None and not self.timeouts and not self.neighbours
        )


@dataclass(frozen=True)
class Naming:
    module: str
    prefix: str  # dotted prefix of every conntrack sysctl

    @classmethod
    def of(cls, snapshot: Snapshot) -> Naming:
        return LEGACY_NAMING if snapshot.legacy else NF_NAMING

    def sysctl(self, key: str) -> str:
        return self.prefix + key


NF_NAMING = Naming("nf_conntrack", "net.netfilter.nf_conntrack_")
LEGACY_NAMING = Naming("ip_conntrack", "net.ipv4.netfilter.ip_conntrack_")
# the table size, as `ctguard apply` names it on either kind of kernel
MAX_SYSCTLS = frozenset(naming.sysctl("max") for naming in (NF_NAMING, LEGACY_NAMING))


def validate_targets(
    snapshot: Snapshot, targets: SettingTargets, netns: NetnsRef | None, *, force: bool
) -> list[str]:
    """Raise UsageError for impossible values; return warnings for risky ones."""
    warnings: list[str] = []
    if netns is not None and (targets.max is not None or targets.buckets is not None):
        raise UsageError(
            "nf_conntrack_max and the hash size are global: they cannot be set for one "
            "network namespace (read-only there since ~5.13)",
            hint="run without --netns to size the table for the whole host; --netns applies "
            "to the per-namespace timeouts",
        )
    if netns is not None and targets.neighbours:
        raise UsageError(
            "the neighbour tables' gc_thresh1/2/3 are global: they cannot be set for one "
            "network namespace (they do not exist there)",
            hint="run without --netns to size them for the whole host",
        )
    _validate_neighbours(snapshot, targets.neighbours)
    if targets.max is not None:
        if not 1 <= targets.max <= MAX_ENTRIES_LIMIT:
            raise UsageError(f"--max {targets.max} is out of range (1 .. {MAX_ENTRIES_LIMIT:,})")
        count = snapshot.count or 0
        if targets.max < count:
            if not force:
                raise UsageError(
                    f"--max {targets.max:,} is below the {count:,} entries in the table now",
                    hint="new connections would be dropped at once; pick a larger value, or "
                    "add --force if that is really what you want",
                )
            warnings.append(
                f"max {targets.max:,} is below the current count {count:,}: new flows will be "
                "dropped until entries expire (--force)"
            )
    if targets.buckets is not None and not 1 <= targets.buckets <= MAX_ENTRIES_LIMIT:
        raise UsageError(f"--buckets {targets.buckets} is out of range")
    known = {t.key: t for t in snapshot.timeouts}
    for key, seconds in targets.timeouts.items():
        if key not in known:
            raise UsageError(
                f"unknown timeout {key!r}",
                hint="known here: " + ", ".join(sorted(known)),
            )
        if not 1 <= seconds <= MAX_TIMEOUT_SECONDS:
            raise UsageError(
                f"timeout {key}={seconds} is out of range (1 .. {MAX_TIMEOUT_SECONDS} seconds)"
            )
    return warnings


def neighbour_values(snapshot: Snapshot, family: str) -> tuple[int | None, ...]:
    """gc_thresh1/2/3 of one family as read (None: not readable)."""
    for table in snapshot.neighbours:
        if table.family == family:
            return (table.gc_thresh1, table.gc_thresh2, table.gc_thresh3)
    return (None, None, None)


def _neighbour_key(name: str) -> tuple[str, int]:
    """net.ipv4.neigh.default.gc_thresh2 -> ("ipv4", 1); UsageError for anything else."""
    parts = name.split(".")
    if (
        len(parts) != 5
        or parts[0] != "net"
        or parts[1] not in ("ipv4", "ipv6")
        or parts[2:4] != ["neigh", "default"]
        or parts[4] not in KEYS
    ):
        raise UsageError(
            f"{name!r} is not a neighbour table threshold",
            hint="expected net.ipv4|ipv6.neigh.default.gc_thresh1|2|3",
        )
    return parts[1], KEYS.index(parts[4])


def _validate_neighbours(snapshot: Snapshot, values: dict[str, int]) -> None:
    """Each value in 0 .. INT_MAX, and gc_thresh1 <= gc_thresh2 <= gc_thresh3 once set."""
    wanted: dict[str, list[int | None]] = {}
    for name, value in values.items():
        family, index = _neighbour_key(name)
        if not 0 <= value <= INT_MAX:
            raise UsageError(f"{name} = {value} is out of range (0 .. {INT_MAX:,})")
        wanted.setdefault(family, list(neighbour_values(snapshot, family)))[index] = value
    for family, result in wanted.items():
        final = [
            default if value is None else value
            for value, default in zip(result, KERNEL_DEFAULTS, strict=True)
        ]
        if not final[0] <= final[1] <= final[2]:
            raise UsageError(
                f"net.{family}.neigh.default gc_thresh1/2/3 would be "
                + "/".join(f"{value:,}" for value in final)
                + ": the kernel uses them as gc_thresh1 <= gc_thresh2 <= gc_thresh3",
                hint="raise gc_thresh3 (and gc_thresh2) together with the lower ones",
            )


def neighbour_write_order(snapshot: Snapshot, values: dict[str, int]) -> list[str]:
    """The names in an order that keeps every intermediate state ordered.

    Raised values first, from gc_thresh3 down, then lowered ones from
    gc_thresh1 up: a raised value is never above the one after it (already
    raised, or lowered only to at least the new value) nor below the one
    before it (not yet raised), and the other way round for lowered ones.
    """

    def key(name: str) -> tuple[int, str, int]:
        family, index = _neighbour_key(name)
        old = neighbour_values(snapshot, family)[index]
        raised = old is None or values[name] >= old
        return (0, family, -index) if raised else (1, family, index)

    return sorted(values, key=key)


def plan_settings(
    snapshot: Snapshot,
    targets: SettingTargets,
    *,
    netns: NetnsRef | None,
    etc_dir: Path,
    persist: bool = True,
    force: bool = False,
    title: str = "conntrack settings",
) -> Plan:
    warnings = validate_targets(snapshot, targets, netns, force=force)
    naming = Naming.of(snapshot)
    actions: list[Action] = []
    unchanged: list[str] = []
    notes: list[str] = []

    def runtime(action: SetSysctl | SetModuleParam, current: int | None) -> None:
        if current is not None and str(current) == action.value:
            unchanged.append(f"{action.describe()} (already)")
        else:
            actions.append(action)

    buckets = targets.buckets
    if buckets is not None:
        rounded = round_up_to_page(buckets)
        if rounded != buckets:
            notes.append(
                f"buckets {buckets:,} rounded up to {rounded:,}: the kernel allocates the hash "
                "in whole pages (512 buckets each) and would do the same"
            )
        buckets = rounded
        runtime(
            SetModuleParam(naming.module, "hashsize", str(buckets), "resize the hash"),
            snapshot.buckets,
        )
    if targets.max is not None:
        runtime(
            SetSysctl(naming.sysctl("max"), str(targets.max), None, "table size"),
            snapshot.max,
        )
    for name in neighbour_write_order(snapshot, targets.neighbours):
        family, index = _neighbour_key(name)
        runtime(
            SetSysctl(name, str(targets.neighbours[name]), None, "neighbour table threshold"),
            neighbour_values(snapshot, family)[index],
        )
    for key, seconds in sorted(targets.timeouts.items()):
        setting = snapshot.timeout(key)
        name = setting.sysctl if setting else naming.sysctl(key)
        runtime(
            SetSysctl(name, str(seconds), netns, "timeout"), setting.seconds if setting else None
        )

    if persist and netns is None:
        actions.extend(
            _persistent_files(
                etc_dir, naming, targets, buckets, unchanged=unchanged, warnings=warnings
            )
        )
    elif netns is not None:
        notes.append(
            f"runtime only: {netns.label}'s sysctls are set by whoever creates it (container "
            "runtime, CNI, systemd unit); make the change there to keep it"
        )
    else:
        notes.append("runtime only (--runtime-only): the values are lost at reboot")
    return Plan(title, tuple(actions), tuple(warnings), tuple(notes), tuple(unchanged))


def _persistent_files(
    etc_dir: Path,
    naming: Naming,
    targets: SettingTargets,
    buckets: int | None,
    *,
    unchanged: list[str],
    warnings: list[str],
) -> list[WriteFile]:
    files: list[WriteFile] = []
    values = {}
    if targets.max is not None:
        values[naming.sysctl("max")] = str(targets.max)
    for key, seconds in sorted(targets.timeouts.items()):
        values[naming.sysctl(key)] = str(seconds)
    conntrack = bool(values)
    values.update({name: str(value) for name, value in sorted(targets.neighbours.items())})
    if values:
        path = etc_dir / SYSCTL_FILE
        warnings.extend(sysctl_conflicts(etc_dir, values))
        merged = {**read_own_sysctl_file(path), **values}
        content = HEADER + "".join(f"{key} = {value}\n" for key, value in sorted(merged.items()))
        files.append(WriteFile(str(path), content, why="values applied at boot by systemd-sysctl"))
    if conntrack:
        files.append(
            WriteFile(
                str(etc_dir / MODULES_LOAD_FILE),
                HEADER + f"# load {naming.module} before systemd-sysctl applies {SYSCTL_FILE}\n"
                f"{naming.module}\n",
                why="module loaded early, so the sysctls above exist when they are applied",
            )
        )
    if buckets is not None:
        path = etc_dir / MODPROBE_FILE
        options = {**read_own_module_options(path, naming.module), "hashsize": str(buckets)}
        line = " ".join(f"{key}={value}" for key, value in sorted(options.items()))
        files.append(
            WriteFile(
                str(path),
                HEADER + f"options {naming.module} {line}\n",
                why="hash size at module load (the hash cannot be sized by sysctl at boot)",
            )
        )
    result = []
    for item in files:
        try:
            current = Path(item.path).read_text()
        except OSError:
            current = None
        if current == item.content:
            unchanged.append(f"{item.path} (already up to date)")
        else:
            result.append(item)
    return result


def sysctl_conflicts(etc_dir: Path, values: dict[str, str]) -> list[str]:
    """Other files setting the same keys that are applied after ctguard's (and so win).

    systemd-sysctl and `sysctl --system` read every *.conf of the sysctl.d
    directories in file-name order, the last value winning; /etc/sysctl.conf
    comes last (Debian links it as 99-sysctl.conf).
    """
    own = Path(SYSCTL_FILE).name
    candidates: list[tuple[str, Path]] = []
    for directory in (etc_dir / "sysctl.d", Path("/run/sysctl.d"), Path("/usr/lib/sysctl.d")):
        if directory.is_dir() and (directory.parent == etc_dir or etc_dir == Path("/etc")):
            candidates += [(p.name, p) for p in directory.glob("*.conf") if p.name > own]
    candidates.append(("~sysctl.conf", etc_dir / "sysctl.conf"))
    warnings = []
    seen: set[Path] = set()
    for _, path in sorted(candidates):
        resolved = path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        for key, value in read_own_sysctl_file(path).items():
            if key in values and value != values[key]:
                warnings.append(
                    f"{path} sets {key} = {value} and is applied after ctguard's file, so at "
                    f"boot it wins over {values[key]}: remove that line"
                )
    return warnings


def read_own_sysctl_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        if line.lstrip().startswith(("#", ";")):
            continue
        match = _SYSCTL_LINE.match(line)
        if match:
            values[match.group(1).replace("/", ".")] = match.group(2)
    return values


def read_own_module_options(path: Path, module: str) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    options = {}
    for line in text.splitlines():
        match = _OPTION_LINE.match(line)
        if match and match.group(1) == module:
            for word in match.group(2).split():
                key, _, value = word.partition("=")
                options[key] = value
    return options


def parse_timeout_assignments(items: list[str]) -> dict[str, int]:
    """``--timeout tcp_timeout_established=86400`` (short key, or the full sysctl name)."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        for prefix in ("net.netfilter.nf_conntrack_", "net.ipv4.netfilter.ip_conntrack_"):
            key = key.removeprefix(prefix)
        if not sep or not key:
            raise UsageError(
                f"--timeout {item!r}: expected KEY=SECONDS",
                hint="e.g. --timeout tcp_timeout_established=86400",
            )
        try:
            seconds = int(value)
        except ValueError as err:
            raise UsageError(
                f"--timeout {item!r}: {value!r} is not a whole number of seconds",
                hint="timeouts are in seconds: 3 hours is 10800",
            ) from err
        result[key] = seconds
    return result
