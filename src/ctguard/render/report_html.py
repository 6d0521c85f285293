"""`ctguard report` as one self-contained HTML file.

Every style inline, every plot an inline SVG, no script and nothing fetched:
the Content-Security-Policy forbids any request, so the file opens the same
on an offline laptop, prints, and attaches to a ticket.
"""

from __future__ import annotations

from html import escape
from typing import Any

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
TOP_ROWS = 10

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2329;
 max-width:62rem;margin:1.5rem auto;padding:0 1rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;border-bottom:1px solid #d5dbe1;
 padding-bottom:.2rem;margin-top:2rem}h3{font-size:1rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;margin:.4rem 0;width:100%}
th,td{text-align:left;padding:.2rem .5rem;border-bottom:1px solid #e8ecef;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f4f6f8;padding:.5rem .7rem;white-space:pre-wrap;word-break:break-all}
.meta{color:#5b6670}.note{color:#5b6670;font-size:.92em}
.sev{display:inline-block;min-width:3.2rem;text-align:center;border-radius:3px;
 font-weight:600;font-size:.8em;padding:0 .3rem;color:#fff}
.crit{background:#c0392b}.warn{background:#d68910}.info{background:#5d6d7e}.ok{background:#1e8449}
.finding{border-left:3px solid #d5dbe1;padding:.1rem .8rem;margin:.8rem 0}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(26rem,1fr));gap:.5rem}
svg{max-width:100%;height:auto}
@media print{body{max-width:none;margin:0}h2{break-after:avoid}.finding,svg{break-inside:avoid}}
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _sev(label: str) -> str:
    return f'<span class="sev {_e(label)}">{_e(label)}</span>'


def _table(headers: list[str], rows: list[list[object]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(
        f'<th class="n">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_e(_num(c))}</td>' if i in numeric else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(value: object) -> object:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value


def _findings(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "<p>No finding.</p>"
    parts = []
    for f in findings:
        explain = f" <span class='note'>what it is: <code>{_e(f['explain'])}</code></span>"
        parts.append(
            '<div class="finding">'
            f"<h3>{_sev(f['severity'])} {_e(f['code'])} {_e(f['title'])}</h3>"
            f"<p>{_e(f['evidence'])}</p><p class='note'>why: {_e(f['why'])}</p>"
            + (f"<pre>{_e(f['next_command'])}</pre>" if f["next_command"] else "")
            + (explain if f.get("explain") else "")
            + "</div>"
        )
    return "".join(parts)


def _status(doctor: dict[str, Any]) -> str:
    status = doctor["status"]
    rows = [[k, status.get(k)] for k in ("count", "max", "buckets") if k in status]
    counters = status.get("counters") or {}
    rows += [[name, value] for name, value in sorted(counters.items())]
    namespaces = doctor.get("namespaces") or []
    ns_table = ""
    if len(namespaces) > 1:
        ns_table = "<h3>Network namespaces in use</h3>" + _table(
            ["namespace", "entries", "fill", "drop", "early_drop", "insert_failed", "verdict"],
            [
                [
                    ", ".join(n["names"]),
                    n["count"],
                    "-" if n["fill"] is None else f"{n['fill']:.1%}",
                    n["drop"],
                    n["early_drop"],
                    n["insert_failed"],
                    n["verdict"],
                ]
                for n in namespaces
            ],
            {1, 3, 4, 5},
        )
    return _table(["value", "now"], rows, {1}) + ns_table


def _timeline(report: dict[str, Any], plots: Any) -> str:
    log = report["doctor"].get("kernel_log")
    if log is None:
        return "<p>The kernel log was not read (see the notes).</p>"
    parts = [
        f"<p>{log['table_full_lines']:,} 'table full, dropping packet' lines in "
        f"{len(log['episodes']):,} episode(s); up to {log['suppressed']:,} more suppressed by "
        f"the kernel's rate limit (each line is at least one dropped packet). Source: "
        f"{_e(log['source'])}.</p>"
    ]
    bins = report["timeline"]
    if bins:
        parts.append(
            plots.timeline_chart(
                "'table full' lines over time",
                [b["start"] or "" for b in bins],
                [b["lines"] for b in bins],
                bins[0]["minutes"],
            )
        )
    if log["episodes"]:
        parts.append(
            _table(
                ["start", "end", "seconds", "lines", "suppressed", "namespace"],
                [
                    [
                        e["start"],
                        e["end"],
                        e["duration_s"],
                        e["lines"],
                        e["suppressed"],
                        e["netns_name"] or (e["netns"] if e["netns"] else "host"),
                    ]
                    for e in log["episodes"]
                ],
                {2, 3, 4},
            )
        )
    return "".join(parts)


def _talkers(table: dict[str, Any] | None, plots: Any) -> str:
    if table is None:
        return "<p>The table's content was not read (see the notes).</p>"
    top, totals, n = table["top"], table["totals"], table["entries"]
    sampled = " (a sample of the table: see the notes)" if table.get("sampled") else ""
    charts = []
    for title, rows, alert in (
        ("entries by source", top["src"], True),
        ("entries by source subnet", top["src_subnet"], True),
        ("entries by destination port", top["dport"], False),
        ("entries by state", totals["state"], False),
        ("entries by protocol", totals["proto"], False),
    ):
        if rows:
            pairs = [(str(r["key"]), int(r["count"])) for r in rows[:TOP_ROWS]]
            charts.append(plots.bar_chart(title, pairs, alert_first=alert))
    return (
        f"<p>{n:,} entries read{_e(sampled)}; {table['assured']:,} ASSURED, "
        f"{table['evictable']:,} evictable, {table['nat']:,} NAT'd.</p>"
        f'<div class="plots">{"".join(charts)}</div>'
    )


def _guard(guard: dict[str, Any], plots: Any) -> str:
    if guard["state"] != "recorded":
        parts = [f"<p>{_e(guard['summary'].capitalize())}.</p>"]
        if guard["start_commands"]:
            parts.append(
                "<p>It watches the table every second and blocks a flooding source; start it "
                "with:</p>" + f"<pre>{_e(chr(10).join(guard['start_commands']))}</pre>"
            )
        return "".join(parts) + _bans(guard)
    runs = ", ".join(f"{r['start']} to {r['end']}" for r in guard["runs"][-5:])
    parts = [
        f"<p>Recorded from {_e(guard['start'])} to {_e(guard['end'])} "
        f"(bins of {guard['bin_seconds']:,} s); the guard ran "
        f"{_e(runs or 'without recording the fill')}. Database: "
        f"<code>{_e(guard['database'])}</code>.</p>"
    ]
    starts = [s or "" for s in guard["bin_starts"]]
    namespaces = guard["namespaces"]
    if namespaces:
        parts.append(
            plots.fill_chart(
                "table fill (% of nf_conntrack_max, peak per bin)",
                starts,
                [
                    (n["netns"], [None if b is None else _pct(b["fill"]) for b in n["bins"]])
                    for n in namespaces
                ],
            )
        )
        drops = [
            sum(b["drops"] or 0 for b in bins if b is not None)
            for bins in zip(*(n["bins"] for n in namespaces), strict=True)
        ]
        if any(drops):
            title = "packets dropped (table full), all shown namespaces"
            parts.append(plots.stacked_chart(title, starts, [("dropped", drops)]))
        parts.append(
            _table(
                ["namespace", "peak fill", "dropped"],
                [
                    [
                        n["netns"],
                        "-" if n["peak_fill"] is None else f"{n['peak_fill']:.1%}",
                        n["drops"],
                    ]
                    for n in namespaces
                ],
                {2},
            )
        )
        if guard["namespaces_left_out"]:
            parts.append(
                f"<p class='note'>{guard['namespaces_left_out']:,} less full namespace(s) "
                "not shown.</p>"
            )
    per_bin = guard["decisions_per_bin"]
    if per_bin:
        parts.append(
            plots.stacked_chart(
                "the guard's decisions", starts, [(a, list(c)) for a, c in per_bin.items()]
            )
        )
    if guard["decision_totals"]:
        parts.append("<h3>Decisions by signal</h3>")
        parts.append(
            _table(
                ["namespace", "signal", "action", "decisions", "sources", "first", "last"],
                [
                    [
                        t["netns"],
                        t["signal"],
                        t["action"],
                        t["decisions"],
                        t["sources"],
                        t["first"],
                        t["last"],
                    ]
                    for t in guard["decision_totals"]
                ],
                {3, 4},
            )
        )
        shown = len(guard["decisions"])
        total = guard["decisions_total"]
        last = f" (the last {shown:,} of {total:,})" if total > shown else ""
        parts.append(f"<h3>Decisions{last}</h3>")
        parts.append(
            _table(
                [
                    "at",
                    "namespace",
                    "source",
                    "signal",
                    "seen",
                    "threshold",
                    "action",
                    "until",
                    "why not",
                ],
                [
                    [
                        d["at"],
                        d["netns"],
                        d["target"],
                        d["signal"],
                        f"{d['seen']:g}",
                        f"{d['threshold']:g}",
                        d["action"],
                        d["until"],
                        d["why_not"],
                    ]
                    for d in guard["decisions"]
                ],
            )
        )
    elif guard["decisions_total"] == 0:
        parts.append("<p>No decision in this window: no source went over the policy.</p>")
    return "".join(parts) + _bans(guard)


def _pct(fill: float | None) -> float | None:
    return None if fill is None else round(fill * 100, 2)


def _bans(guard: dict[str, Any]) -> str:
    if guard["bans_at"] is None:
        return ""
    if not guard["bans"]:
        return f"<p>No ban active at {_e(guard['bans_at'])}.</p>"
    more = guard["bans_total"] - len(guard["bans"])
    return (
        f"<h3>Bans active at {_e(guard['bans_at'])}{f' ({more:,} not shown)' if more else ''}</h3>"
        + _table(
            ["namespace", "source", "added", "expires", "status", "verified", "why"],
            [
                [
                    b["netns"],
                    b["target"],
                    b["added"],
                    b["expires"],
                    b["status"],
                    "yes" if b["verified"] else "no",
                    b["reason"],
                ]
                for b in guard["bans"]
            ],
        )
    )


def _advice(advise: dict[str, Any]) -> str:
    sizing = advise.get("sizing")
    parts = []
    if sizing:
        parts.append(
            _table(
                ["", "now", "recommended"],
                [
                    ["nf_conntrack_max", sizing["current_max"], sizing["recommended_max"]],
                    ["buckets", sizing["current_buckets"], sizing["recommended_buckets"]],
                ],
                {1, 2},
            )
        )
        parts.append("<ul>" + "".join(f"<li>{_e(w)}</li>" for w in sizing["why"]) + "</ul>")
        parts += [f"<p class='note'>warning: {_e(w)}</p>" for w in sizing["warnings"]]
    timeouts = [t for t in advise.get("timeouts", []) if t.get("change")]
    if timeouts:
        parts.append("<h3>Timeouts</h3>")
        parts.append(
            _table(
                ["timeout", "now (s)", "recommended (s)", "why"],
                [[t["key"], t["current"], t["recommended"], t["reason"]] for t in timeouts],
                {1, 2},
            )
        )
    neighbours = [n for n in advise.get("neighbours", []) if n.get("change")]
    if neighbours:
        parts.append("<h3>Neighbour tables</h3>")
        keys = ("gc_thresh1", "gc_thresh2", "gc_thresh3")
        parts.append(
            _table(
                ["table", "entries", "now", "recommended"],
                [
                    [
                        f"{n['family']} ({n['table']})",
                        n["entries"],
                        "/".join(str(n["current"][k]) for k in keys),
                        "/".join(str(n["recommended"][k]) for k in keys),
                    ]
                    for n in neighbours
                ],
                {1},
            )
        )
        for item in neighbours:
            parts.append("<ul>" + "".join(f"<li>{_e(w)}</li>" for w in item["why"]) + "</ul>")
    for correction in advise.get("corrections", []):
        parts.append(
            f"<p class='note'>{_e(correction.get('claim'))}: {_e(correction.get('truth'))}</p>"
        )
    return "".join(parts) or "<p>No sizing advice (see the notes).</p>"


def _audit(audit: dict[str, Any]) -> str:
    if not audit["rules"]:
        read = ", ".join(audit["read"]) or "none could be read"
        return f"<p>No rule makes conntrack active (rulesets read: {_e(read)}).</p>"
    return _table(
        ["stateless?", "where", "rule", "what for", "without tracking"],
        [
            [
                r["stateless"],
                f"{r['backend']} {r['location']}",
                r["rule"],
                r["purpose"],
                r["alternative"],
            ]
            for r in audit["rules"]
        ],
    ) + (
        "<p>Tracking is needed here.</p>"
        if audit["tracking_needed"]
        else "<p>No rule needs tracking for good.</p>"
    )


def _bundle(report: dict[str, Any]) -> str:
    bundle = report["bundle"]
    if bundle is None:
        return ""
    missing = (
        _table(["not captured", "why"], [[m["file"], m["why"]] for m in bundle["missing"]])
        if bundle["missing"]
        else "<p>Nothing was missing.</p>"
    )
    return (
        "<h2>What the bundle held</h2>"
        f"<p>Captured {_e(bundle['captured_at'])} on {_e(bundle['hostname'])}: "
        f"{len(bundle['files']):,} files.</p>"
        f"<pre>{_e(' '.join(bundle['files']))}</pre>" + missing
    )


def render_report_html(report: dict[str, Any]) -> str:
    from ctguard.render import report_plots

    doctor = report["doctor"]
    window = ""
    if report["since"] or report["until"]:
        window = (
            f", kernel log from {_e(report['since'] or 'boot')} to {_e(report['until'] or 'now')}"
        )
    notes = [
        *doctor["notes"],
        *report["notes"],
        *report["advise"]["notes"],
        *report["audit"]["notes"],
        *report["guard"]["notes"],
    ]
    commands = "\n".join(report["next_commands"])
    body = [
        f"<h1>conntrack post-mortem: {_e(report['host'])}</h1>",
        f"<p class='meta'>kernel {_e(report['kernel'])} · read from {_e(report['source'])}"
        f"{window} · written {_e(report['generated_at'])} by ctguard</p>",
        f"<h2>Verdict {_sev(report['verdict'])}</h2>",
        _findings(doctor["findings"]),
        "<h2>When the table was full</h2>",
        _timeline(report, report_plots),
        "<h2>What the guard saw and did</h2>",
        _guard(report["guard"], report_plots),
        "<h2>The table now</h2>",
        _status(doctor),
        "<h2>Who holds the table</h2>",
        _talkers(doctor.get("table"), report_plots),
        "<h2>Sizing and timeouts</h2>",
        _advice(report["advise"]),
        "<h2>Firewall audit</h2>",
        _audit(report["audit"]),
        "<h2>What to run next</h2>",
        f"<pre>{_e(commands)}</pre>" if commands else "<p>Nothing to do.</p>",
        _bundle(report),
        "<h2>Notes</h2>" + "".join(f"<p class='note'>{_e(n)}</p>" for n in notes) if notes else "",
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>ctguard report: {_e(report['host'])}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
