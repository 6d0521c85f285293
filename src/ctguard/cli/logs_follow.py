"""`ctguard logs --follow`: print episodes as they start and end."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from ctguard.analyze.log_episodes import RATELIMIT_WINDOW, is_net_limiter, note_lab_marker
from ctguard.cli.env import Environment, ExitStatus
from ctguard.kernel.kernlog_sources import follow_kmsg
from ctguard.model.kernlog import LogKind
from ctguard.parse.kernlog import NET_RATELIMIT, parse_line


def follow(args: argparse.Namespace, env: Environment) -> ExitStatus:
    """Tail /dev/kmsg; an episode ends after ``--gap`` seconds without a line."""
    deadline = None if args.duration is None else time.monotonic() + args.duration
    open_episodes: dict[tuple[int | None, str | None], dict[str, object]] = {}
    # The attribution rule of `ctguard logs`, as the lines come: a summary
    # goes to the episode of the network limiter's last message when that was
    # a table-full line at most RATELIMIT_WINDOW s before; else it waits for
    # the limiter's next message, and counts if that is a table-full line.
    pending_suppressed = 0
    pending_since = 0.0
    # (when, episode key) of the limiter's last message; key None: not a table-full line
    # of the host's (another user's, or a rehearsal's)
    last_member: tuple[float, tuple[int | None, str | None] | None] = (float("-inf"), None)
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
                last_member = (now, None)
            elif record.kind is LogKind.RATELIMIT and is_net_limiter(record.limiter):
                before_when, before = last_member
                owner = open_episodes.get(before) if before is not None else None
                if owner is not None and now - before_when <= RATELIMIT_WINDOW:
                    owner["suppressed"] = int(str(owner["suppressed"])) + record.count
                else:
                    pending_suppressed += record.count
                    pending_since = now
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
                if now - pending_since <= RATELIMIT_WINDOW:
                    episode["suppressed"] = int(str(episode["suppressed"])) + pending_suppressed
                episode["last"] = now
                episode["end"] = stamp
                pending_suppressed = 0
                last_member = (now, key)
            elif record.limiter == NET_RATELIMIT:
                pending_suppressed = 0  # another user's message came next: not ours
                last_member = (now, None)
        for key, episode in list(open_episodes.items()):
            if now - float(str(episode["last"])) > args.gap:
                del open_episodes[key]
                emit("episode ended", key, {k: v for k, v in episode.items() if k != "last"})
        if deadline is not None and now > deadline:
            break
    for key, episode in open_episodes.items():
        emit("episode open", key, {k: v for k, v in episode.items() if k != "last"})
    return ExitStatus.WARN if seen else ExitStatus.OK
