"""Namespaces named by their processes and containers: real processes, real
namespaces, real cgroups of the shapes container runtimes make."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctguard.kernel.netns import list_netns
from tests.conftest import run_cli

ID = "3f2a9c1b7e4d5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b"
ID2 = "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"
UID = "8a1c2e3f-4b5d-46e7-8f90-a1b2c3d4e5f6"


def cgroup_roots() -> tuple[Path, Path]:
    """(a cgroup v2 hierarchy, a cgroup v1 hierarchy) this machine mounts, or skip."""
    mounts = Path("/proc/mounts").read_text().splitlines()
    v2 = next((Path(m.split()[1]) for m in mounts if m.split()[2] == "cgroup2"), None)
    v1 = next(
        (Path(m.split()[1]) for m in mounts if m.split()[2] == "cgroup" and ",pids" in m), None
    )
    if v2 is None or v1 is None:
        pytest.skip("needs a cgroup v2 and a v1 pids hierarchy (hybrid mount) to build both shapes")
    return v2, v1


@pytest.fixture
def scratch_cgroups() -> Iterator[tuple[Path, Path]]:
    """A private subtree in each hierarchy, removed (deepest first) at the end."""
    v2, v1 = cgroup_roots()
    tag = f"ctguard-test-{secrets.token_hex(3)}"
    tops = [v2 / tag, v1 / tag]
    try:
        for top in tops:
            top.mkdir()
    except OSError as err:
        pytest.skip(f"cannot create cgroups here: {err}")
    try:
        yield tops[0], tops[1]
    finally:
        for top in tops:
            for directory in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if directory.is_dir():
                    directory.rmdir()
            top.rmdir()


def start_in(namespace: str, cgroup: Path) -> subprocess.Popen[bytes]:
    """A real process (sleep) in ``namespace``, moved into ``cgroup``."""
    cgroup.mkdir(parents=True)
    process = subprocess.Popen(["ip", "netns", "exec", namespace, "sleep", "60"])
    # ip netns exec execs sleep in place: same pid
    (cgroup / "cgroup.procs").write_text(str(process.pid))
    return process


def test_status_all_netns_names_pods_and_containers(lab, scratch_cgroups) -> None:
    v2, v1 = scratch_cgroups
    pod = lab.add_namespace("pod")
    plain = lab.add_namespace("plain")
    for ns in (pod, plain):
        ns.exec(
            [
                "conntrack",
                "-I",
                "-p",
                "udp",
                "-s",
                "10.9.0.1",
                "-d",
                "10.9.0.2",
                "--sport",
                "5000",
                "--dport",
                "53",
                "-t",
                "120",
            ]
        )  # an entry, so status lists the namespace
    underscored = UID.replace("-", "_")
    k8s = (
        v2
        / "kubepods.slice/kubepods-burstable.slice"
        / f"kubepods-burstable-pod{underscored}.slice/cri-containerd-{ID}.scope"
    )
    processes = [start_in(pod.name, k8s), start_in(plain.name, v1 / "docker" / ID2)]
    try:
        refs = {ref.inode: ref for ref in list_netns()}
        in_pod = refs[pod.ref.inode].processes
        assert [(p.pid, p.comm) for p in in_pod] == [(processes[0].pid, "sleep")]
        assert in_pod[0].container is not None
        assert (in_pod[0].container.runtime, in_pod[0].container.id) == ("containerd", ID)
        assert in_pod[0].container.pod_uid == UID
        # Without the processes (the exporter's scrapes): the same namespaces, found by stat alone.
        bare = {ref.inode: ref for ref in list_netns(processes=False)}
        for ns in (pod, plain):
            assert bare[ns.ref.inode].path == refs[ns.ref.inode].path
            assert bare[ns.ref.inode].processes == ()

        data = run_cli("status", "--all-netns", "--json").json()
        rows = {row["inode"]: row for row in data["namespaces"]}
        assert rows[pod.ref.inode]["containers"] == [
            {"runtime": "containerd", "id": ID, "pod_uid": UID}
        ]
        assert rows[pod.ref.inode]["processes"][0]["pid"] == processes[0].pid
        assert rows[plain.ref.inode]["containers"] == [
            {"runtime": "docker", "id": ID2, "pod_uid": None}
        ]
        text = run_cli("status", "--all-netns").stdout
        flat = "".join(text.split())  # the table wraps long cells
        assert f"containerd3f2a9c1b7e4d(pod{UID}):sleep(pid{processes[0].pid})" in flat
        assert f"docker0b1c2d3e4f5a:sleep(pid{processes[1].pid})" in flat
    finally:
        for process in processes:
            process.kill()
            process.wait()
