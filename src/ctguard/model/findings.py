"""Findings: what is wrong (or notable), why, the evidence, and the next command."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ctguard.model.command import ctguard_command


class Severity(enum.IntEnum):
    """Ordered so that max() of findings gives the verdict."""

    OK = 0
    INFO = 1
    WARN = 2
    CRIT = 3

    @property
    def label(self) -> str:
        return self.name.lower()


# The `ctguard explain` topic behind each finding code (ctguard.explain.topics).
FINDING_TOPICS = {
    "CT004": "nf_conntrack_count",
    "CT101": "nf_conntrack_max",
    "CT102": "nf_conntrack_max",
    "CT103": "drop",
    "CT104": "early_drop",
    "CT105": "insert_failed",
    "CT106": "chaintoolong",
    "CT201": "nf_conntrack_buckets",
    "CT202": "nf_conntrack_max",
    "CT203": "nf_conntrack_max",
    "CT302": "nf_conntrack_tcp_timeout_established",
    "CT401": "drop",
    "CT402": "drop",
    "CT403": "drop",
    "CT502": "SYN_RECV",
    "CT503": "UNREPLIED",
    "CT505": "ASSURED",
    "CT506": "TIME_WAIT",
    "CT508": "ASSURED",
    "CT601": "gc_thresh3",
}


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
            "explain": self.explain,
        }

    @property
    def explain(self) -> str:
        """The command that explains what this finding is about, or ""."""
        topic = FINDING_TOPICS.get(self.code)
        return ctguard_command("explain", topic) if topic else ""


def verdict_of(findings: list[Finding]) -> Severity:
    """ok / warn / crit: INFO findings never raise the verdict."""
    worst = max((finding.severity for finding in findings), default=Severity.OK)
    return Severity.OK if worst == Severity.INFO else worst
