"""A network namespace by reference (its own light module: the live table's
reader needs it before anything heavier is imported)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NetnsRef:
    """A network namespace: its inode (the ``netns <inum>`` of kernel logs) and names."""

    inode: int
    path: str
    names: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return ", ".join(self.names) if self.names else f"netns {self.inode}"
