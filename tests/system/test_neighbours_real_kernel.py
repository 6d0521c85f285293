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


def gc_values(family: str) -> dict[str, int]:
    base = f"/proc/sys/net/{family}/neigh/default"
    keys = ("gc_thresh1", "gc_thresh2", "gc_thresh3")
    return {key: int(open(f"{base}/{key}").read()) for key in keys}


def test_a_capture_carries_the_neighbour_tables_to_advise(tmp_path):
    bundle = tmp_path / "bundle"
    assert run_cli("capture", str(bundle), "--no-table").status == 0
    data = run_cli("advise", "--root", str(bundle), "--no-table", "--json").json()
    by_family = {item["family"]: item for item in data["neighbours"]}
    assert set(by_family) == {"ipv4", "ipv6"}
    for family, item in by_family.items():
        assert item["current"] == gc_values(family)  # read, never written here
        assert item["table"] in ("arp_cache", "ndisc_cache") and item["entries"] >= 0


def test_a_namespace_has_no_global_thresholds_and_advise_says_so(lab):
    ns = lab.add_namespace("neighadv")
    # on this kernel only the per-device neighbour settings exist in a namespace
    listing = ns.exec(["ls", "/proc/sys/net/ipv4/neigh"]).split()
    assert "default" not in listing and "lo" in listing
    data = run_cli("advise", "--netns", ns.name, "--no-table", "--json").json()
    assert data["neighbours"] == []
    assert any("global and not visible from a network namespace" in n for n in data["notes"])
    assert not [a for a in data["plan"]["actions"] if ".neigh." in a.get("name", "")]
