"""Action values: what a plan would change, each able to describe itself.

Actions are plain frozen data.  They say *what* to change, never how to
undo it: the executor (``ctguard.effects``) reads the original value just
before the change and keeps it in the journal, so the undo is always "put
back exactly what was there", whatever the action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ctguard.model.netns_ref import NetnsRef


def _netns_suffix(netns: NetnsRef | None) -> str:
    return f" (in {netns.label})" if netns else ""


@dataclass(frozen=True)
class SetSysctl:
    """Write ``value`` to the sysctl ``name`` (dotted), in ``netns`` or this namespace."""

    name: str
    value: str
    netns: NetnsRef | None = None
    why: str = ""

    @property
    def proc_rel(self) -> str:
        return "sys/" + self.name.replace(".", "/")

    def describe(self) -> str:
        return f"sysctl -w {self.name}={self.value}{_netns_suffix(self.netns)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "sysctl",
            "name": self.name,
            "value": self.value,
            "netns": _netns_dict(self.netns),
            "why": self.why,
        }


@dataclass(frozen=True)
class SetModuleParam:
    """Write a module parameter at runtime (/sys/module/MODULE/parameters/NAME)."""

    module: str
    param: str
    value: str
    why: str = ""

    @property
    def sys_rel(self) -> str:
        return f"module/{self.module}/parameters/{self.param}"

    def describe(self) -> str:
        return f"echo {self.value} > /sys/{self.sys_rel}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "module-param",
            "module": self.module,
            "param": self.param,
            "value": self.value,
            "why": self.why,
        }


@dataclass(frozen=True)
class WriteFile:
    """Replace a whole file (atomically) with ``content``."""

    path: str
    content: str
    mode: int = 0o644
    why: str = ""

    def describe(self) -> str:
        return f"write {self.path}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "file",
            "path": self.path,
            "content": self.content,
            "mode": self.mode,
            "why": self.why,
        }


@dataclass(frozen=True)
class LoadNftables:
    """Replace nftables table ``table`` (e.g. ``inet ctguard``) with ``script`` atomically."""

    table: str
    script: str
    netns: NetnsRef | None = None
    why: str = ""

    def describe(self) -> str:
        verb = "delete" if self.removes else "load"
        return f"nft -f - ({verb} table {self.table}){_netns_suffix(self.netns)}"

    @property
    def removes(self) -> bool:
        return "{" not in self.script

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "nftables",
            "table": self.table,
            "script": self.script,
            "netns": _netns_dict(self.netns),
            "why": self.why,
        }


@dataclass(frozen=True)
class DeleteEntries:
    """Delete the conntrack entries whose original source is in ``networks`` (one-way).

    ``match`` narrows it with conntrack's own filters (``-p udp --sport 53``).
    """

    networks: tuple[str, ...]
    netns: NetnsRef | None = None
    why: str = ""
    match: tuple[str, ...] = ()

    def describe(self) -> str:
        nets = " ".join(self.networks)
        narrow = "".join(f" {word}" for word in self.match)
        return (
            f"conntrack -D -s NET{narrow} for {nets} (cannot be undone){_netns_suffix(self.netns)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "delete-entries",
            "networks": list(self.networks),
            "match": list(self.match),
            "netns": _netns_dict(self.netns),
            "why": self.why,
        }


@dataclass(frozen=True)
class LoadIptables:
    """Replace one iptables/ip6tables table with ``content`` (`*-save` format) atomically."""

    tool: str  # "iptables" or "ip6tables"
    table: str
    content: str
    netns: NetnsRef | None = None
    why: str = ""

    def describe(self) -> str:
        return f"{self.tool}-restore (table {self.table}){_netns_suffix(self.netns)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "iptables",
            "tool": self.tool,
            "table": self.table,
            "content": self.content,
            "netns": _netns_dict(self.netns),
            "why": self.why,
        }


@dataclass(frozen=True)
class LoadIpset:
    """Make ipset ``name`` hold exactly ``script`` (`ipset restore` input), or destroy it."""

    name: str
    script: str | None
    netns: NetnsRef | None = None
    why: str = ""

    def describe(self) -> str:
        verb = "destroy" if self.script is None else "ipset restore"
        return f"{verb} {self.name}{_netns_suffix(self.netns)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "ipset",
            "name": self.name,
            "script": self.script,
            "netns": _netns_dict(self.netns),
            "why": self.why,
        }


Action = (
    SetSysctl | SetModuleParam | WriteFile | LoadNftables | DeleteEntries | LoadIptables | LoadIpset
)


def _netns_dict(netns: NetnsRef | None) -> dict[str, Any] | None:
    if netns is None:
        return None
    return {"inode": netns.inode, "path": netns.path, "names": list(netns.names)}


def action_from_dict(data: dict[str, Any]) -> Action:
    """Rebuild an action from its journal form (``to_dict``)."""
    kind = data.get("kind")
    ns = data.get("netns")
    netns = NetnsRef(int(ns["inode"]), str(ns["path"]), tuple(ns.get("names", ()))) if ns else None
    if kind == "nftables":
        return LoadNftables(str(data["table"]), str(data["script"]), netns, str(data["why"]))
    if kind == "iptables":
        return LoadIptables(
            str(data["tool"]), str(data["table"]), str(data["content"]), netns, str(data["why"])
        )
    if kind == "ipset":
        script = data.get("script")
        return LoadIpset(
            str(data["name"]), None if script is None else str(script), netns, str(data["why"])
        )
    if kind == "delete-entries":
        return DeleteEntries(
            tuple(data["networks"]),
            netns,
            str(data.get("why", "")),
            tuple(str(word) for word in data.get("match", ())),
        )
    if kind == "sysctl":
        return SetSysctl(str(data["name"]), str(data["value"]), netns, str(data.get("why", "")))
    if kind == "module-param":
        return SetModuleParam(
            str(data["module"]), str(data["param"]), str(data["value"]), str(data.get("why", ""))
        )
    if kind == "file":
        return WriteFile(
            str(data["path"]),
            str(data["content"]),
            int(data.get("mode", 0o644)),
            str(data.get("why", "")),
        )
    raise ValueError(f"unknown action kind {kind!r}")


@dataclass(frozen=True)
class Plan:
    """An ordered list of actions with what a person should know before running it."""

    title: str
    actions: tuple[Action, ...]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()  # already at the wanted value: nothing to do

    @property
    def empty(self) -> bool:
        return not self.actions

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "actions": [action.to_dict() for action in self.actions],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "unchanged": list(self.unchanged),
        }
