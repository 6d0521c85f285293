"""Containers from /proc/PID/cgroup lines: each runtime's cgroup v1 and v2 shapes."""

from __future__ import annotations

import pytest

from ctguard.model.container import ContainerRef, NetnsProcess, owners_text
from ctguard.parse.cgroup import cgroup_paths, container_of

ID = "3f2a9c1b7e4d5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b"
UID = "8a1c2e3f-4b5d-46e7-8f90-a1b2c3d4e5f6"
UNDERSCORED = UID.replace("-", "_")

CASES = {
    "docker v2 systemd driver": (
        [f"0::/system.slice/docker-{ID}.scope"],
        ContainerRef("docker", ID),
    ),
    "docker v1 cgroupfs driver": (
        [
            f"12:memory:/docker/{ID}",
            f"11:cpu,cpuacct:/docker/{ID}",
            "1:name=systemd:/docker/" + ID,
        ],
        ContainerRef("docker", ID),
    ),
    "docker v2 cgroupfs driver": ([f"0::/docker/{ID}"], ContainerRef("docker", ID)),
    "podman rootful": (
        [f"0::/machine.slice/libpod-{ID}.scope/container"],
        ContainerRef("podman", ID),
    ),
    "podman rootless": (
        [f"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"],
        ContainerRef("podman", ID),
    ),
    "podman v1": ([f"3:pids:/libpod_parent/libpod-{ID}"], ContainerRef("podman", ID)),
    "kubernetes containerd systemd driver": (
        [
            "0::/kubepods.slice/kubepods-burstable.slice/"
            f"kubepods-burstable-pod{UNDERSCORED}.slice/cri-containerd-{ID}.scope"
        ],
        ContainerRef("containerd", ID, UID),
    ),
    "kubernetes cri-o": (
        [f"0::/kubepods.slice/kubepods-pod{UNDERSCORED}.slice/crio-{ID}.scope"],
        ContainerRef("cri-o", ID, UID),
    ),
    "kubernetes docker v1 systemd driver": (
        [
            "4:memory:/kubepods.slice/kubepods-besteffort.slice/"
            f"kubepods-besteffort-pod{UNDERSCORED}.slice/docker-{ID}.scope"
        ],
        ContainerRef("docker", ID, UID),
    ),
    "kubernetes v1 cgroupfs driver": (
        [f"9:memory:/kubepods/burstable/pod{UID}/{ID}", f"8:cpu:/kubepods/burstable/pod{UID}/{ID}"],
        ContainerRef("kubernetes", ID, UID),
    ),
    "systemd-nspawn service": (
        ["0::/machine.slice/systemd-nspawn@web\\x2d1.service/payload"],
        ContainerRef("systemd-nspawn", "web-1"),
    ),
    "systemd-nspawn registered machine": (
        ["0::/machine.slice/machine-db.scope/payload/system.slice/postgresql.service"],
        ContainerRef("systemd-nspawn", "db"),
    ),
    "lxc v2": (["0::/lxc.payload.build01/init.scope"], ContainerRef("lxc", "build01")),
    "lxc v1": (["5:devices:/lxc/build01"], ContainerRef("lxc", "build01")),
}


@pytest.mark.parametrize("name", CASES)
def test_each_runtime_shape_names_its_container(name: str) -> None:
    lines, expected = CASES[name]
    assert container_of(lines) == expected


@pytest.mark.parametrize(
    "lines",
    [
        ["0::/user.slice/user-1000.slice/session-3.scope"],
        ["0::/system.slice/sshd.service"],
        ["0::/init.scope"],
        [f"0::/machine.slice/libpod-conmon-{ID}.scope"],  # podman's monitor, not the container
        ["12:memory:/", "0::/"],
        [f"0::/system.slice/docker-{ID[:40]}.scope"],  # not a container id
        ["garbage", "", "1:cpu"],  # bad lines name nothing and raise nothing
    ],
)
def test_host_processes_and_bad_lines_name_no_container(lines: list[str]) -> None:
    assert container_of(lines) is None


def test_v2_line_comes_first_in_a_hybrid_hierarchy() -> None:
    lines = ["1:name=systemd:/system.slice/sshd.service", f"0::/system.slice/docker-{ID}.scope"]
    assert cgroup_paths(lines)[0] == f"/system.slice/docker-{ID}.scope"
    assert container_of(lines) == ContainerRef("docker", ID)


def test_a_pod_cgroup_without_a_container_still_names_the_pod() -> None:
    lines = [f"0::/kubepods.slice/kubepods-pod{UNDERSCORED}.slice"]
    found = container_of(lines)
    assert found == ContainerRef("kubernetes", "", UID)
    assert found.label == f"kubernetes pod {UID}"


def test_owners_text_names_containers_then_processes() -> None:
    web = ContainerRef("containerd", ID, UID)
    processes = (
        NetnsProcess(812, "pause", web),
        NetnsProcess(905, "nginx", web),
        NetnsProcess(906, "nginx", web),
        NetnsProcess(907, "nginx", web),
    )
    assert owners_text(processes) == (
        f"containerd 3f2a9c1b7e4d (pod {UID}): pause (pid 812), nginx (pid 905), "
        "nginx (pid 906) and 1 more"
    )
    assert owners_text((NetnsProcess(77, "dnsmasq"),)) == "dnsmasq (pid 77)"
    assert owners_text(()) == ""
