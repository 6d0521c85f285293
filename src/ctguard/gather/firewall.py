"""The firewall rules in place, as the firewall planner needs to know them (read with the tools)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from ctguard.effects.commands import ipset_save, nft_list_table, run_tool
from ctguard.model.netns_ref import NetnsRef
from ctguard.rules.backends.nft import TABLE


@dataclass(frozen=True)
class LiveReader:
    """The rules in place, read with the tools (empty when a tool is missing)."""

    netns: NetnsRef | None

    def nft_table_exists(self) -> bool:
        return shutil.which("nft") is not None and nft_list_table(TABLE, self.netns) is not None

    def iptables_save(self, tool: str, table: str) -> str:
        if shutil.which(f"{tool}-save") is None:
            return ""
        done = run_tool([f"{tool}-save", "-t", table], self.netns)
        return done.stdout if done.returncode == 0 else ""

    def ipset_exists(self, name: str) -> bool:
        return shutil.which("ipset") is not None and ipset_save(name, self.netns) is not None
