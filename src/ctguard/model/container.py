"""Who lives in a network namespace: its processes and, when their cgroup says so,
the container (runtime and id) and the Kubernetes pod they belong to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ContainerRef:
    """A container as its cgroup path names it."""

    runtime: str  # docker, containerd, cri-o, podman, systemd-nspawn, lxc, kubernetes
    id: str  # the container id (hex) or, for systemd-nspawn and lxc, the machine name
    pod_uid: str | None = None  # the Kubernetes pod UID (with dashes)

    @property
    def short_id(self) -> str:
        """Twelve hex digits, as `docker ps` shows them; names stay whole."""
        is_hex = len(self.id) >= 32 and all(c in "0123456789abcdef" for c in self.id)
        return self.id[:12] if is_hex else self.id

    @property
    def label(self) -> str:
        if not self.id:  # the pod's own cgroup, no container id in the path
            return f"{self.runtime} pod {self.pod_uid}"
        pod = f" (pod {self.pod_uid})" if self.pod_uid else ""
        return f"{self.runtime} {self.short_id}{pod}"

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "id": self.id, "pod_uid": self.pod_uid}


@dataclass(frozen=True)
class NetnsProcess:
    """One process in a namespace: pid, command name, and its container if any."""

    pid: int
    comm: str
    container: ContainerRef | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "comm": self.comm,
            "container": self.container.to_dict() if self.container else None,
        }


def containers_of(processes: tuple[NetnsProcess, ...]) -> list[ContainerRef]:
    """The distinct containers of ``processes``, in the order first met."""
    seen: dict[ContainerRef, None] = {}
    for process in processes:
        if process.container is not None:
            seen.setdefault(process.container)
    return list(seen)


def owners_text(processes: tuple[NetnsProcess, ...], limit: int = 3) -> str:
    """'docker 3f2a9c1b7e4d: nginx (pid 812), ...' or 'dnsmasq (pid 77)'; '' when none."""
    if not processes:
        return ""
    shown = ", ".join(f"{p.comm} (pid {p.pid})" for p in processes[:limit])
    if len(processes) > limit:
        shown += f" and {len(processes) - limit} more"
    containers = containers_of(processes)
    if not containers:
        return shown
    named = "; ".join(container.label for container in containers[:2])
    if len(containers) > 2:
        named += f" and {len(containers) - 2} more containers"
    return f"{named}: {shown}"
