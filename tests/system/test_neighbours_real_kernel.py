"""The neighbour table as `ctguard status` reads it, against entries made for real."""

from tests.conftest import run_cli

ENTRIES = 40


def ipv4_entries() -> int:
    payload = run_cli("status", "--json").json()
    (table,) = [t for t in payload["neighbours"] if t["family"] == "ipv4"]
    assert table["gc_thresh3"] and table["gc_thresh3"] >= table["gc_thresh2"]
    return int(table["entries"])


def test_a_namespaces_neighbours_count_in_the_kernels_table(lab):
    before = ipv4_entries()
    ns = lab.add_namespace("neigh")
    ns.exec(["ip", "link", "add", "ctgn0", "type", "veth", "peer", "name", "ctgn1"])
    ns.exec(["ip", "link", "set", "ctgn0", "up"])
    ns.exec(["ip", "addr", "add", "10.77.0.1/16", "dev", "ctgn0"])
    for n in range(ENTRIES):
        address, mac = f"10.77.1.{n + 1}", f"02:00:00:00:01:{n:02x}"
        ns.exec(["ip", "neigh", "add", address, "lladdr", mac, "dev", "ctgn0", "nud", "permanent"])
    shown = ns.exec(["ip", "-4", "neigh", "show", "dev", "ctgn0"]).splitlines()
    assert len(shown) == ENTRIES
    # the table is the kernel's: the namespace's entries count in the host's view
    during = ipv4_entries()
    assert during >= before + ENTRIES - 5  # the host's own may be collected meanwhile
    ns.exec(["ip", "neigh", "flush", "dev", "ctgn0", "nud", "permanent"])
    assert ipv4_entries() <= during - ENTRIES
