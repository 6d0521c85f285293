"""doctor's line about missing optional tools: which are missing, and the package for each."""

import os
import stat

from ctguard.gather.tools import OPTIONAL_TOOLS, missing_tools, missing_tools_note


def _fake_tool(directory, name):
    path = directory / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_an_empty_path_misses_every_tool(tmp_path):
    assert [tool.command for tool in missing_tools(str(tmp_path))] == [
        "conntrack",
        "nft",
        "iptables",
    ]


def test_a_tool_on_the_path_is_not_named(tmp_path):
    _fake_tool(tmp_path, "nft")
    missing = missing_tools(str(tmp_path))
    assert [tool.command for tool in missing] == ["conntrack", "iptables"]
    note = missing_tools_note(missing)
    assert "conntrack" in note and "nft " not in note
    assert note.endswith("apt install conntrack iptables")


def test_every_tool_names_its_debian_package():
    assert {tool.command: tool.package for tool in OPTIONAL_TOOLS} == {
        "conntrack": "conntrack",
        "nft": "nftables",
        "iptables": "iptables",
    }


def test_all_found_means_nothing_missing(tmp_path):
    for tool in OPTIONAL_TOOLS:
        _fake_tool(tmp_path, tool.command)
    assert missing_tools(os.fspath(tmp_path)) == []
