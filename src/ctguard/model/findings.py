"""Findings: what is wrong (or notable), why, the evidence, and the next command."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.IntEnum):
    """Ordered so that max() of findings gives the verdict."""

    OK = 0
    INFO = 1
    WARN = 2
    CRIT = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    title: str
    evidence: str
    why: str = ""
    next_command: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "code": self.code,
            "severity": self.severity.label,
            "title": self.title,
            "evidence": self.evidence,
            "why": self.why,
            "next_command": self.next_command,
        }


def verdict_of(findings: list[Finding]) -> Severity:
    """ok / warn / crit: INFO findings never raise the verdict."""
    worst = max((finding.severity for finding in findings), default=Severity.OK)
    return Severity.OK if worst == Severity.INFO else worst
