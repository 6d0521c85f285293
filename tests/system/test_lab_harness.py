"""The harness itself: namespaces, veth, tracked traffic, ctnetlink fill, cleanup."""

import json
import os
import subprocess
from pathlib import Path

from ctguard.lab.fill import fill_table, synthetic_flows
from ctguard.lab.namespaces import Lab, clean_leftovers
from ctguard.lab.traffic import TcpServer, open_tcp_connections, send_udp, wait_until


def count(ns):
    return int(ns.read_sysctl("net.netfilter.nf_conntrack_count"))


def test_fresh_namespace_tracks_nothing_until_a_ct_rule(lab):
    a, b = lab.add_namespace("a"), lab.add_namespace("b")
    _, server = lab.link(a, b)
    with TcpServer(b, server, 8090):
        untracked = open_tcp_connections(a, server, 8090, 5)
        assert len(untracked) == 5
        assert count(a) == 0 and count(b) == 0
        b.enable_conntrack()  # the idle connections above send nothing: not picked up
        tracked = open_tcp_connections(a, server, 8090, 5)
        assert count(b) == 5 and count(a) == 0
        for conn in untracked + tracked:
            conn.close()


def test_udp_and_ipv6_across_veth(lab):
    a, b = lab.add_namespace("a"), lab.add_namespace("b")
    lab.link(a, b)
    b.enable_conntrack()
    assert send_udp(a, "10.77.0.2", list(range(6000, 6010))) == 10
    assert send_udp(a, "fd00:77::2", list(range(6000, 6004))) == 4
    assert wait_until(lambda: count(b) == 14), count(b)
    table = b.exec(["conntrack", "-L", "-f", "ipv6"])
    assert table.count("dst=fd00:77::2") == 4


def test_fill_through_ctnetlink(lab):
    ns = lab.add_namespace("fill")
    created, failures = fill_table(ns, synthetic_flows(3000))
    assert (created, failures) == (3000, {})
    assert count(ns) == 3000
    listing = ns.exec(["conntrack", "-L", "-p", "tcp", "--dport", "443"])
    assert listing.count("[ASSURED]") == 3000
    # Creating the same tuples again is refused, not double-counted.
    created, failures = fill_table(ns, synthetic_flows(10))
    assert created == 0 and sum(failures.values()) == 10


def test_crashed_run_is_cleaned_from_its_journal(tmp_path):
    journals, kmsg = tmp_path / "journals", tmp_path / "kmsg"
    kmsg.touch()
    crashed = Lab(journal_dir=journals, kmsg=kmsg)
    ns = crashed.add_namespace("orphan")
    data = json.loads(crashed.journal.read_text())
    data["pid"] = 2**22 + 1  # a pid that does not exist: the run "crashed"
    crashed.journal.write_text(json.dumps(data))
    assert Path(f"/run/netns/{ns.name}").exists()
    assert clean_leftovers(journals, kmsg) == [ns.name]
    assert not Path(f"/run/netns/{ns.name}").exists()
    assert list(journals.iterdir()) == []
    # the namespace was marked when made, and the run closed by the clean-up
    run = crashed.run_id
    assert kmsg.read_text().splitlines()[-2:] == [
        f"<6>ctguard-lab: run={run} netns={ns.ref.inode} added",
        f"<6>ctguard-lab: run={run} closed",
    ]
    assert (
        ns.name
        not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    )


def test_live_run_is_not_cleaned(tmp_path):
    with Lab(journal_dir=tmp_path) as alive:
        ns = alive.add_namespace("alive")
        assert clean_leftovers(tmp_path) == []
        assert Path(f"/run/netns/{ns.name}").exists()
        assert json.loads(alive.journal.read_text())["pid"] == os.getpid()


def test_a_run_marks_its_namespaces_in_the_kernel_log(tmp_path):
    kmsg = tmp_path / "kmsg"
    kmsg.touch()
    with Lab(journal_dir=tmp_path / "journals", kmsg=kmsg) as run:
        a, b = run.add_namespace("a"), run.add_namespace("b")
        assert a.ref.inode != b.ref.inode
    assert kmsg.read_text().splitlines() == [
        f"<6>ctguard-lab: run={run.run_id} netns={a.ref.inode} added",
        f"<6>ctguard-lab: run={run.run_id} netns={b.ref.inode} added",
        f"<6>ctguard-lab: run={run.run_id} closed",
    ]
