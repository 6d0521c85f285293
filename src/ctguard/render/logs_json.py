"""The documented JSON shape of `ctguard logs`."""

from __future__ import annotations

from typing import Any

from ctguard.analyze.log_episodes import LogReport, timeline


def logs_json(report: LogReport, source: str, netns_names: dict[int, str]) -> dict[str, Any]:
    axis = report.axis
    episodes = []
    for episode in report.episodes:
        episodes.append(
            {
                "start": axis.show(episode.start),
                "end": axis.show(episode.end),
                "duration_s": None if episode.duration is None else round(episode.duration, 3),
                "lines": episode.lines,
                "suppressed": episode.suppressed,
                "drops_at_least": episode.lines,
                "drops_at_most": episode.lines + episode.suppressed,
                "netns": episode.netns,
                "netns_name": netns_names.get(episode.netns) if episode.netns else None,
                "vps": episode.vps,
                "first_line": episode.first_line,
                "last_line": episode.last_line,
                "timeline": [
                    {"minute": axis.show(minute * 60.0), "lines": count}
                    for minute, count in sorted(episode.minutes.items())
                ],
            }
        )
    firsts = [e.start for e in report.episodes if e.start is not None]
    lasts = [e.end for e in report.episodes if e.end is not None]
    return {
        "source": source,
        "time_basis": axis.basis,
        "boot_time": axis.boot_time.isoformat(timespec="seconds") if axis.boot_time else None,
        "table_full_lines": report.table_full_lines,
        "suppressed": report.suppressed,
        "suppressed_is_upper_bound": True,
        "suppressed_unattributed": report.suppressed_unattributed,
        "suppressed_other_limiters": report.suppressed_other_limiters,
        "expectation_full_lines": report.expectation_full_lines,
        "vmalloc_fallback_lines": report.vmalloc_lines,
        "first": axis.show(min(firsts)) if firsts else None,
        "last": axis.show(max(lasts)) if lasts else None,
        "episodes": episodes,
        "timeline": [
            {"minute": axis.show(minute * 60.0), "lines": count}
            for minute, count in timeline(report.episodes)
        ],
        "lab_table_full_lines": report.lab_lines,
        "neighbour_overflow": [
            {
                "table": episode.table or None,
                "start": axis.show(episode.start),
                "end": axis.show(episode.end),
                "lines": episode.lines,
                "suppressed": episode.suppressed,
                "first_line": episode.first_line,
                "last_line": episode.last_line,
            }
            for episode in report.neighbour_episodes
        ],
        "records": report.records,
        "notes": report.notes,
    }
