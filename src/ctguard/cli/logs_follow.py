"""`ctguard logs --follow`: print episodes as they start and end."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from ctguard.analyze.log_episodes import note_lab_marker
from ctguard.cli.env import Environment, ExitStatus
from ctguard.kernel.kernlog_sources import follow_kmsg
from ctguard.model.kernlog import LogKind
from ctguard.parse.kernlog import parse_line


def follow(args: argparse.Namespace, env: Environment) -> ExitStatus:
    """Tail /dev/kmsg; an episode ends after ``--gap`` seconds without a line."""
    deadline = None if args.duration is None else time.monotonic() + args.duration
    open_episodes: dict[tuple[int | None, str | None], dict[str, object]] = {}
    pending_suppressed = 0
    seen = 0

    def emit(event: str, key: tuple[int | None, str | None], data: dict[str, object]) -> None:
        payload = {"event": event, "netns": key[0], "vps": key[1], **data}
        if args.json:
            env.stdout.write(json.dumps(payload) + "\n")
        else:
            where = f"netns {key[0]}" if key[0] else (f"VPS {key[1]}" if key[1] else "host")
            details = ", ".join(f"{k}={v}" for k, v in data.items())
            env.stdout.write(f"{event}: {where}: {details}\n")
        env.stdout.flush()

    lab_netns: dict[int, str] = {}  # namespaces of `ctguard lab` runs: their lines are not followed
    for line in follow_kmsg(poll=min(1.0, args.gap)):
        now = time.monotonic()
        if line is not None:
            record = parse_line(line, 0, year=datetime.now().year)
            if record.kind is LogKind.LAB_NETNS or record.kind is LogKind.LAB_CLOSED:
                note_lab_marker(lab_netns, record)
            elif record.kind is LogKind.TABLE_FULL and record.netns in lab_netns:
                pending_suppressed = 0  # a rehearsal's line, and its suppressed count
            elif record.kind is LogKind.RATELIMIT:
                pending_suppressed += record.count
            elif record.kind is LogKind.TABLE_FULL:
                seen += 1
                key = (record.netns, record.vps)
                episode = open_episodes.get(key)
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                if episode is None:
                    episode = {"start": stamp, "lines": 0, "suppressed": 0, "last": now}
                    open_episodes[key] = episode
                    emit("episode started", key, {"start": stamp})
                episode["lines"] = int(str(episode["lines"])) + 1
                episode["suppressed"] = int(str(episode["suppressed"])) + pending_suppressed
                episode["last"] = now
                episode["end"] = stamp
                pending_suppressed = 0
            else:
                pending_suppressed = 0
        for key, episode in list(open_episodes.items()):
            if now - float(str(episode["last"])) > args.gap:
                del open_episodes[key]
                emit("episode ended", key, {k: v for k, v in episode.items() if k != "last"})
        if deadline is not None and now > deadline:
            break
    for key, episode in open_episodes.items():
        emit("episode open", key, {k: v for k, v in episode.items() if k != "last"})
    return ExitStatus.WARN if seen else ExitStatus.OK
