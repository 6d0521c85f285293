"""A temporary global nf_conntrack_max for the lab, restored on every exit path.

nf_conntrack_max is global: every namespace's table is checked against it,
the host's own included.  The lab lowers it only to run a scenario at a
small scale, only from the init namespace and only while the host's own
table is empty (nothing on the host is tracked, so nothing can be lost),
and through the journaled executor: the run's close, Ctrl-C, SIGTERM and
`ctguard lab clean` after a crash all write the recorded original back.
"""

from __future__ import annotations

import os
from pathlib import Path

from ctguard.advise.sizing import round_up_to_page
from ctguard.effects.executor import apply_plan
from ctguard.effects.journal import Journal
from ctguard.effects.slots import System
from ctguard.errors import CtguardError
from ctguard.plan.actions import Plan, SetModuleParam, SetSysctl
from ctguard.plan.conntrack_settings import NF_NAMING

MAX_SYSCTL = NF_NAMING.sysctl("max")
PROC_NET_INIT_INO = 0xEFFFFFF9
_PROC_SYS = Path("/proc/sys/net/netfilter")


def current_max() -> int:
    return int((_PROC_SYS / "nf_conntrack_max").read_text().split()[0])


def host_table_count() -> int:
    return int((_PROC_SYS / "nf_conntrack_count").read_text().split()[0])


def in_init_netns() -> bool:
    """The init namespace's inode is a constant (PROC_NET_INIT_INO) since Linux 3.8."""
    own = os.stat("/proc/self/ns/net").st_ino
    if own == PROC_NET_INIT_INO:
        return True
    try:
        return own == os.stat("/proc/1/ns/net").st_ino
    except OSError:  # pid 1 hidden (a sandbox): the constant is the answer
        return False


def global_change_refusal() -> str | None:
    """Why the lab may not change a global value right now (None: it may)."""
    try:
        if not in_init_netns():
            return "ctguard is not running in the host's (init) network namespace"
        count = host_table_count()
    except OSError as err:
        return f"cannot read the host's table: {err.strerror}"
    if count:
        return (
            f"the host's own table is in use ({count:,} entries): lowering the global "
            "nf_conntrack_max could drop its traffic"
        )
    return None


def current_buckets() -> int:
    return int((_PROC_SYS / "nf_conntrack_buckets").read_text().split()[0])


def set_temporary_max(value: int, state_dir: Path) -> int:
    """Lower the global max for this lab run, the hash in proportion; undone by the close.

    The hash keeps this host's max:buckets ratio: early_drop() only looks at
    8 buckets, so a small table in a huge hash would find nothing evictable
    and drop where a full-size table would not.  Returns the bucket count.
    """
    refusal = global_change_refusal()
    if refusal:
        raise CtguardError(
            f"cannot run at --scale {value:,}: {refusal}",
            hint=f"run without --scale (the lab then fills the real max, {current_max():,}), "
            "or on a test machine whose own table is empty",
        )
    buckets = round_up_to_page(max(1, value * current_buckets() // current_max()))
    why = "lab scale; restored when the run ends"
    plan = Plan(
        "lab: temporary nf_conntrack_max and hash size",
        (
            SetModuleParam("nf_conntrack", "hashsize", str(buckets), why=why),
            SetSysctl(MAX_SYSCTL, str(value), why=why),
        ),
    )
    journal = Journal(state_dir)
    with journal.locked():
        apply_plan(plan, journal, System())
    return buckets
