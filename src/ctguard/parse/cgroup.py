"""Which container a process belongs to, from the lines of /proc/PID/cgroup.

Each line is ``hierarchy-ID:controllers:path`` (cgroup v1: one line per
hierarchy; v2: the single line ``0::path``). Container runtimes put their
containers' processes under cgroup paths of known shapes:

- docker: ``/docker/<id>`` (cgroupfs driver), ``/system.slice/docker-<id>.scope``
  (systemd driver)
- podman: ``/machine.slice/libpod-<id>.scope``, rootless
  ``/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-<id>.scope``,
  v1 ``/libpod_parent/libpod-<id>``; ``libpod-conmon-<id>.scope`` is the
  monitor, not the container
- containerd (CRI): ``.../cri-containerd-<id>.scope``; cri-o: ``.../crio-<id>.scope``
- Kubernetes pods: ``/kubepods/<qos>/pod<uid>/<id>`` (cgroupfs driver) or
  ``/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_with_underscores>.slice/...``
  (systemd driver)
- systemd-nspawn: ``/machine.slice/systemd-nspawn@<name>.service`` or
  ``/machine.slice/machine-<name>.scope`` (names systemd-escaped)
- lxc: ``/lxc/<name>``, ``/lxc.payload.<name>``

The pure parser never opens a file; a line of another shape names no container.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ctguard.model.container import ContainerRef

_HEX_ID = r"[0-9a-f]{64}"
_SCOPE = re.compile(
    rf"(?:^|/)(?P<prefix>docker|libpod|cri-containerd|crio)-(?P<id>{_HEX_ID})\.scope(?:/|$)"
)
_RUNTIME_OF = {
    "docker": "docker",
    "libpod": "podman",
    "cri-containerd": "containerd",
    "crio": "cri-o",
}
_DOCKER_V1 = re.compile(rf"(?:^|/)docker/(?P<id>{_HEX_ID})(?:/|$)")
_LIBPOD_V1 = re.compile(rf"(?:^|/)libpod_parent/libpod-(?P<id>{_HEX_ID})(?:/|$)")
_POD = re.compile(
    r"(?:^|/)(?:kubepods[^/]*-)?pod(?P<uid>[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}"
    r"[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?(?:/|$)"
)
_POD_CHILD = re.compile(rf"(?:^|/)pod[0-9a-f_-]{{36}}(?:\.slice)?/(?P<id>{_HEX_ID})(?:/|$)")
_NSPAWN = re.compile(
    r"(?:^|/)machine\.slice/(?:systemd-nspawn@(?P<unit>[^/]+)\.service|machine-(?P<scope>[^/]+)\.scope)"
)
_LXC = re.compile(r"^/(?:lxc/(?P<v1>[^/]+)|lxc\.payload\.(?P<v2>[^/]+))")


def _unescape(name: str) -> str:
    """systemd unit-name escaping: ``\\x2d`` is '-', and so on."""
    return re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), name)


def cgroup_paths(lines: Iterable[str]) -> list[str]:
    """The paths of ``hierarchy:controllers:path`` lines (v2's first); bad lines skipped."""
    paths: list[str] = []
    for line in lines:
        parts = line.rstrip("\n").split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        if parts[0] == "0" and parts[1] == "":
            paths.insert(0, parts[2])
        else:
            paths.append(parts[2])
    return paths


def container_of_path(path: str) -> ContainerRef | None:
    """The container a cgroup path names, or None."""
    pod = _POD.search(path)
    pod_uid = pod.group("uid").replace("_", "-") if pod else None
    if "libpod-conmon-" in path:
        return None
    scope = _SCOPE.search(path)
    if scope:
        return ContainerRef(_RUNTIME_OF[scope.group("prefix")], scope.group("id"), pod_uid)
    for pattern, runtime in ((_DOCKER_V1, "docker"), (_LIBPOD_V1, "podman")):
        match = pattern.search(path)
        if match:
            return ContainerRef(runtime, match.group("id"), pod_uid)
    child = _POD_CHILD.search(path)
    if child:  # cgroupfs driver: the runtime is not in the path
        return ContainerRef("kubernetes", child.group("id"), pod_uid)
    if pod_uid:
        return ContainerRef("kubernetes", "", pod_uid)  # the pod's own cgroup (a pause or slice)
    nspawn = _NSPAWN.search(path)
    if nspawn:
        name = nspawn.group("unit") or nspawn.group("scope")
        return ContainerRef("systemd-nspawn", _unescape(name))
    lxc = _LXC.search(path)
    if lxc:
        return ContainerRef("lxc", lxc.group("v1") or lxc.group("v2"))
    return None


def container_of(lines: Iterable[str]) -> ContainerRef | None:
    """The container of a process, from its /proc/PID/cgroup lines (None: not in one)."""
    for path in cgroup_paths(lines):
        found = container_of_path(path)
        if found is not None:
            return found
    return None
