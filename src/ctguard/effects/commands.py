"""Run firewall and conntrack tools (argv lists, scripts on stdin, never a shell).

Inside a network namespace the calling thread enters it first; the child
process inherits the thread's namespace.
"""

from __future__ import annotations

import shutil
import subprocess

from ctguard.errors import CtguardError, SourceMissing
from ctguard.kernel.netns import entered_netns
from ctguard.model.netns_ref import NetnsRef

TOOL_PACKAGES = {
    "nft": "nftables",
    "conntrack": "conntrack",
    "iptables-restore": "iptables",
    "ip6tables-restore": "iptables",
    "iptables-save": "iptables",
    "ipset": "ipset",
    "ip": "iproute2",
}
TIMEOUT = 30.0


def run_tool(
    argv: list[str],
    netns: NetnsRef | None = None,
    *,
    stdin: str | None = None,
    discard_stdout: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a tool; the caller decides what a non-zero exit means.

    ``discard_stdout``: the tool's output goes to /dev/null (``stdout`` is
    None), for tools that print a line per item they act on.
    """
    if shutil.which(argv[0]) is None:
        package = TOOL_PACKAGES.get(argv[0], argv[0])
        raise SourceMissing(
            f"`{argv[0]}` is not installed",
            hint=f"install it: apt-get install {package}",
        )
    try:
        with entered_netns(netns):
            return subprocess.run(
                argv,
                input=stdin,
                stdout=subprocess.DEVNULL if discard_stdout else subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
    except subprocess.TimeoutExpired as err:
        raise CtguardError(f"`{' '.join(argv)}` did not finish within {TIMEOUT:.0f} s") from err


def checked(argv: list[str], netns: NetnsRef | None = None, *, stdin: str | None = None) -> str:
    done = run_tool(argv, netns, stdin=stdin)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise CtguardError(
            f"`{' '.join(argv)}` failed: " + (" | ".join(message[:6]) or f"exit {done.returncode}"),
            hint="the script is shown by the dry run (without --yes)",
        )
    return done.stdout


def nft_list_table(table: str, netns: NetnsRef | None) -> str | None:
    """The table's listing, or None when it does not exist."""
    done = run_tool(["nft", "list", "table", *table.split()], netns)
    if done.returncode != 0:
        if "No such file or directory" in done.stderr:
            return None
        raise CtguardError(f"cannot list nftables table {table}: {done.stderr.strip()}")
    return done.stdout


def nft_replace_table(table: str, body: str | None, netns: NetnsRef | None) -> None:
    """Make ``table`` exactly ``body`` (a listing or ctguard script), or remove it (None)."""
    prefix = f"table {table}\ndelete table {table}\n"
    checked(["nft", "-f", "-"], netns, stdin=prefix + (body or ""))


def nft_check(script: str, netns: NetnsRef | None = None) -> None:
    """`nft --check`: parse and validate against the kernel without committing."""
    checked(["nft", "--check", "-f", "-"], netns, stdin=script)


VANISHED = "such conntrack doesn't exist"  # conntrack -D lost a race with a timeout
DELETE_ATTEMPTS = 3


def delete_entries(network: str, netns: NetnsRef | None, match: tuple[str, ...] = ()) -> int:
    """Delete entries whose original source is in ``network`` (and ``match``); how many went.

    conntrack prints every entry it deletes on stdout (hundreds of MiB for a
    flood's): discarded; the count is on stderr.  An entry that expires
    between conntrack's listing and its deletion makes it stop with "such
    conntrack doesn't exist": not a failure (the entry is gone, which was
    the point), so the deletion is run again, at most DELETE_ATTEMPTS times.
    """
    family = ["-f", "ipv6"] if ":" in network else []
    argv = ["conntrack", "-D", *family, "-s", network, *match]
    for _ in range(DELETE_ATTEMPTS):
        done = run_tool(argv, netns, discard_stdout=True)
        text = done.stderr
        for line in text.splitlines():
            if "flow entries have been deleted" in line:
                return int(line.split(":")[-1].split()[0])  # 0 deleted exits 1: fine
        if VANISHED in text:
            continue
        if done.returncode != 0:
            raise CtguardError(f"conntrack -D -s {network} failed: {text.strip()}")
        return 0
    return 0  # what is left keeps racing its timeout; it expires on its own


def iptables_save(tool: str, table: str, netns: NetnsRef | None) -> str:
    return checked([f"{tool}-save", "-t", table], netns)


def iptables_restore(
    tool: str, content: str, netns: NetnsRef | None, *, test: bool = False
) -> None:
    """Replace the tables named in ``content`` (others untouched); --test only checks."""
    checked([f"{tool}-restore", *(["--test"] if test else [])], netns, stdin=content)


def ipset_save(name: str, netns: NetnsRef | None) -> str | None:
    done = run_tool(["ipset", "save", name], netns)
    if done.returncode != 0:
        if "does not exist" in done.stderr:
            return None
        raise CtguardError(f"cannot read ipset {name}: {done.stderr.strip()}")
    return done.stdout


def ipset_load(name: str, script: str | None, netns: NetnsRef | None) -> None:
    """Make the set hold exactly ``script`` (emptied after its create line), or destroy it."""
    if script is None:
        done = run_tool(["ipset", "destroy", name], netns)
        if done.returncode != 0 and "does not exist" not in done.stderr:
            raise CtguardError(f"cannot destroy ipset {name}: {done.stderr.strip()}")
        return
    lines = []
    for line in script.splitlines():
        lines.append(line)
        if line.startswith("create "):
            lines.append(f"flush {line.split()[1]}")
    checked(["ipset", "restore", "-exist"], netns, stdin="\n".join(lines) + "\n")
