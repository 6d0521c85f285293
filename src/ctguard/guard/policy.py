"""The guard's policy: a TOML file read into frozen values, or refused with its line.

Pure: :func:`parse_policy` takes the file's text and its name for messages.
Every key has a default, so an empty file is a working policy.  An unknown
key, a value of the wrong kind or range, or a bad CIDR raises
:class:`~ctguard.errors.ParseError` naming the file, the line and the key:
tomllib reports the line of a syntax error but not of a bad value, so the
key's line is looked up in the text here.

Per-namespace overrides live under ``[netns.NAME.detect]``,
``[netns.NAME.ban]`` and ``[netns.NAME.allow]``; NAME is the namespace's
`ip netns` name or its inode number (what the guard's log lines call it).
An override replaces only the keys it names; allowlisted networks add up.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, replace
from typing import Any

from ctguard.errors import ParseError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_FILE = "ctguard/guard.toml"  # under the etc directory (/etc, CTGUARD_ETC_DIR)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True)
class Detect:
    """When a source, or one network's sources together, is flooding."""

    new_flows_per_source: int = 1000  # new entries per second from one address, sustained
    new_flows_per_net24: int = 5000  # from one IPv4 /24 (many spoofed or rotating addresses)
    new_flows_per_net64: int = 5000  # from one IPv6 /64
    sustain_ticks: int = 2  # ticks in a row above the rate before acting
    table_share: float = 0.2  # one source holding more than this share of the entries ...
    table_fill: float = 0.8  # ... of a table filled above this (count / max)
    min_entries: int = 1000  # the share rule ignores a source with fewer entries than this
    scan_interval: float = 10.0  # at most one table scan per namespace this often
    scan_budget: int = 300_000  # entries read per scan at most
    tracked_sources: int = 4096  # heavy-hitter slots per namespace and per key kind


@dataclass(frozen=True)
class Ban:
    """What a decision does, how long, and how many per minute at most."""

    duration: float = 600.0  # first ban
    escalation_factor: float = 2.0  # each repeat within `remember` multiplies the duration
    max_duration: float = 86400.0  # escalation stops here
    remember: float = 7 * 86400.0  # how long past bans count as repeats
    max_per_minute: int = 10  # the guard's own bans, all namespaces together
    delete_entries: bool = True  # delete the banned source's entries at once


@dataclass(frozen=True)
class Allow:
    networks: tuple[Network, ...] = ()


@dataclass(frozen=True)
class Service:
    tick: float = 1.0  # seconds between readings
    reconcile_interval: float = 5.0  # seconds between kernel-vs-database checks


@dataclass(frozen=True)
class NetnsPolicy:
    """The policy in force for one namespace (the defaults with its overrides)."""

    detect: Detect
    ban: Ban
    allow: Allow


@dataclass(frozen=True)
class Policy:
    detect: Detect = field(default_factory=Detect)
    ban: Ban = field(default_factory=Ban)
    allow: Allow = field(default_factory=Allow)
    service: Service = field(default_factory=Service)
    overrides: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[Network, ...]]] = field(
        default_factory=dict
    )
    source: str = "(defaults)"

    def for_netns(self, label: str) -> NetnsPolicy:
        override = self.overrides.get(label)
        if override is None:
            return NetnsPolicy(self.detect, self.ban, self.allow)
        detect, ban, allow = override
        return NetnsPolicy(
            replace(self.detect, **detect),
            replace(self.ban, **ban),
            Allow(self.allow.networks + allow),
        )


# key -> (dataclass field, kind, lower bound, upper bound); kinds: int, share, float,
# duration, bool.  TOML names are the field names unless mapped here.
_DETECT_KEYS: dict[str, tuple[str, str, float, float]] = {
    "new_flows_per_source": ("new_flows_per_source", "int", 1, 10**9),
    "new_flows_per_net24": ("new_flows_per_net24", "int", 1, 10**9),
    "new_flows_per_net64": ("new_flows_per_net64", "int", 1, 10**9),
    "sustain": ("sustain_ticks", "int", 1, 60),
    "table_share": ("table_share", "share", 0.0, 1.0),
    "table_fill": ("table_fill", "share", 0.0, 1.0),
    "min_entries": ("min_entries", "int", 1, 10**9),
    "scan_interval": ("scan_interval", "duration", 1, 86400),
    "scan_budget": ("scan_budget", "int", 1000, 10**8),
    "tracked_sources": ("tracked_sources", "int", 16, 1 << 20),
}
_BAN_KEYS: dict[str, tuple[str, str, float, float]] = {
    "duration": ("duration", "duration", 1, 365 * 86400),
    "escalation_factor": ("escalation_factor", "float", 1.0, 100.0),
    "max_duration": ("max_duration", "duration", 1, 365 * 86400),
    "remember": ("remember", "duration", 0, 365 * 86400),
    "max_per_minute": ("max_per_minute", "int", 1, 10000),
    "delete_entries": ("delete_entries", "bool", 0, 1),
}
_SERVICE_KEYS: dict[str, tuple[str, str, float, float]] = {
    "tick": ("tick", "duration", 0.1, 60),
    "reconcile_interval": ("reconcile_interval", "duration", 1, 3600),
}
_TOP = ("detect", "ban", "allow", "service", "netns")


def parse_duration_value(value: object) -> float | None:
    """30, "30s", "10m", "4h", "1d" -> seconds; None if it is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value.lower())
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    return None


def key_line(text: str, table: tuple[str, ...], key: str | None) -> int | None:
    """The line (1-based) of ``key`` in table ``table``, or of the table's header.

    Understands ``[a.b]`` headers (bare or quoted parts), ``key = ...`` lines
    and dotted keys within a parent table (``b.key = ...`` under ``[a]``).
    """
    current: tuple[str, ...] = ()
    header_line: int | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if '"' not in raw else raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            inner = line.strip("[]").strip()
            current = tuple(part.strip().strip('"').strip("'") for part in inner.split("."))
            if current == table:
                header_line = number
            if key is not None and current[: len(table) + 1] == (*table, key):
                return number  # the key names a table: its header
            continue
        if "=" not in line or key is None:
            continue
        name = tuple(p.strip().strip('"').strip("'") for p in line.split("=", 1)[0].split("."))
        if current + name == (*table, key):
            return number
    if header_line is None and key is not None and table:
        return key_line(text, table[:-1], table[-1])
    return header_line


class _Reader:
    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where

    def fail(self, table: tuple[str, ...], key: str | None, what: str, hint: str) -> ParseError:
        name = ".".join((*table, key) if key else table) or "(top level)"
        return ParseError(
            f"{what} at key {name}",
            where=self.where,
            line=key_line(self.text, table, key),
            hint=hint,
        )

    def table(self, data: dict[str, Any], path: tuple[str, ...], allowed: tuple[str, ...]) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(
                    path,
                    key,
                    "unknown key",
                    f"known here: {', '.join(sorted(allowed))} (see docs/guard.md)",
                )

    def values(
        self,
        data: object,
        path: tuple[str, ...],
        keys: dict[str, tuple[str, str, float, float]],
    ) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(
                path[:-1], path[-1], "expected a table", f"write it as [{'.'.join(path)}]"
            )
        self.table(data, path, tuple(keys))
        result: dict[str, Any] = {}
        for key, value in data.items():
            attr, kind, low, high = keys[key]
            result[attr] = self.value(path, key, value, kind, low, high)
        return result

    def value(
        self, path: tuple[str, ...], key: str, value: object, kind: str, low: float, high: float
    ) -> Any:
        if kind == "bool":
            if not isinstance(value, bool):
                raise self.fail(path, key, f"{value!r} is not true or false", "write true or false")
            return value
        if kind == "duration":
            seconds = parse_duration_value(value)
            if seconds is None:
                raise self.fail(
                    path, key, f"{value!r} is not a duration", 'e.g. 30, "30s", "10m", "4h"'
                )
            if not low <= seconds <= high:
                raise self.fail(
                    path, key, f"{value!r} is out of range", f"between {low:g} s and {high:g} s"
                )
            return seconds
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, key, f"{value!r} is not a number", f"a number from {low:g}")
        if kind == "int" and not isinstance(value, int):
            raise self.fail(path, key, f"{value!r} is not a whole number", "e.g. 500")
        if not low <= value <= high:
            raise self.fail(path, key, f"{value} is out of range", f"from {low:g} to {high:g}")
        if kind == "share" and not 0 < value < 1:
            raise self.fail(path, key, f"{value} is not a share", "between 0 and 1, e.g. 0.2")
        return value

    def networks(self, data: object, path: tuple[str, ...]) -> tuple[Network, ...]:
        if not isinstance(data, dict):
            raise self.fail(
                path[:-1], path[-1], "expected a table", f"write it as [{'.'.join(path)}]"
            )
        self.table(data, path, ("networks",))
        items = data.get("networks", [])
        if not isinstance(items, list):
            raise self.fail(path, "networks", "expected a list", 'e.g. ["192.0.2.0/24", "::1"]')
        result = []
        for item in items:
            try:
                if not isinstance(item, str):
                    raise ValueError(item)
                result.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError as err:
                raise self.fail(
                    path,
                    "networks",
                    f"{item!r} is not an IP address or CIDR",
                    "e.g. 203.0.113.7, 203.0.113.0/24 or 2001:db8::/48",
                ) from err
        return tuple(result)


def parse_policy(text: str, where: str) -> Policy:
    """The policy in ``text`` (the file's content); ``where`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        found = re.search(r"line (\d+)", str(err))
        line = int(found.group(1)) if found else None
        raise ParseError(
            f"not valid TOML: {err}", where=where, line=line, hint="fix the syntax"
        ) from err
    reader = _Reader(text, where)
    reader.table(data, (), _TOP)
    detect = replace(Detect(), **reader.values(data.get("detect", {}), ("detect",), _DETECT_KEYS))
    ban = replace(Ban(), **reader.values(data.get("ban", {}), ("ban",), _BAN_KEYS))
    service = replace(
        Service(), **reader.values(data.get("service", {}), ("service",), _SERVICE_KEYS)
    )
    allow = Allow(reader.networks(data.get("allow", {}), ("allow",)))
    overrides: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[Network, ...]]] = {}
    namespaces = data.get("netns", {})
    if not isinstance(namespaces, dict):
        raise reader.fail((), "netns", "expected a table", "write [netns.NAME.detect] etc.")
    for name, body in namespaces.items():
        path = ("netns", name)
        if not isinstance(body, dict):
            raise reader.fail(("netns",), name, "expected a table", f"write [netns.{name}.ban]")
        reader.table(body, path, ("detect", "ban", "allow"))
        overrides[name] = (
            reader.values(body.get("detect", {}), (*path, "detect"), _DETECT_KEYS),
            reader.values(body.get("ban", {}), (*path, "ban"), _BAN_KEYS),
            reader.networks(body.get("allow", {}), (*path, "allow")),
        )
    policy = Policy(detect, ban, allow, service, overrides, where)
    for label in ("", *overrides):
        effective = policy.for_netns(label)
        if effective.ban.max_duration < effective.ban.duration:
            table = ("ban",) if not label else ("netns", label, "ban")
            raise reader.fail(
                table, "max_duration", "shorter than duration", "make it at least the duration"
            )
    return policy
