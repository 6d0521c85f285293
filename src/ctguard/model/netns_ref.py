"""A network namespace by reference (its own light module: the live table's
reader needs it before anything heavier is imported)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ctguard.model.container import NetnsProcess, owners_text


@dataclass(frozen=True)
class NetnsRef:
    """A network namespace: its inode (the ``netns <inum>`` of kernel logs) and names."""

    inode: int
    path: str
    names: tuple[str, ...] = ()
    # the processes in it (pid order), with their containers; empty when not read
    processes: tuple[NetnsProcess, ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        return ", ".join(self.names) if self.names else f"netns {self.inode}"

    @property
    def owners(self) -> str:
        """Its processes and containers, for people ('' when none were read)."""
        return owners_text(self.processes)
