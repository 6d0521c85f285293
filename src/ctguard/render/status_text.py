"""Human output of `ctguard status` and the status part of `doctor` (rich)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.table import Table
from rich.text import Text

from ctguard.analyze.status_report import StatusReport
from ctguard.model.findings import Finding, Severity
from ctguard.model.kernel_defaults import humanize_seconds
from ctguard.render.status_json import HEADLINE_COUNTERS

SEVERITY_STYLE = {
    Severity.OK: "green",
    Severity.INFO: "cyan",
    Severity.WARN: "yellow",
    Severity.CRIT: "bold red",
}
MIB = 1024 * 1024


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:,.1f} MiB"


def verdict_text(verdict: Severity) -> Text:
    return Text(verdict.label.upper(), style=SEVERITY_STYLE[verdict])


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    return grid


def render_table_section(report: StatusReport) -> Table:
    snap, metrics = report.snapshot, report.metrics
    grid = _grid()
    fill = "-" if metrics.fill is None else f"{metrics.fill:.1%}"
    grid.add_row("entries", f"{_num(snap.count)} of {_num(snap.max)} max ({fill} full)")
    chain = "-" if metrics.avg_chain is None else f"{metrics.avg_chain:.2f}"
    at_max = "-" if metrics.avg_chain_at_max is None else f"{metrics.avg_chain_at_max:.1f}"
    grid.add_row("buckets", f"{_num(snap.buckets)} (average chain {chain} now, {at_max} at max)")
    if metrics.ratio_meaning:
        grid.add_row("max:buckets", metrics.ratio_meaning)
    users = ", ".join(snap.module_users) or "none listed (built in, or no dependent modules)"
    module = "ip_conntrack (legacy)" if snap.legacy else "nf_conntrack"
    grid.add_row("module", f"{module} loaded; used by: {users}")
    if "enable_hooks" in snap.module_params:
        grid.add_row("enable_hooks", snap.module_params["enable_hooks"])
    return grid


def render_counters_section(report: StatusReport) -> Table | Text:
    snap = report.snapshot
    if snap.counters is None:
        return Text("counters unavailable: " + "; ".join(snap.notes), style="yellow")
    grid = _grid()
    for name in HEADLINE_COUNTERS:
        if name in snap.counters:
            value = snap.counters[name]
            style = "yellow" if value and name in ("drop", "early_drop", "insert_failed") else ""
            grid.add_row(name, Text(f"{value:,}", style=style))
    source = snap.counter_source
    if source is not None:
        grid.add_row("source", f"{source.kind}, {source.variant}, {source.cpus} CPUs (since boot)")
    return grid


def render_memory_section(report: StatusReport) -> Table:
    snap, memory = report.snapshot, report.metrics.memory
    grid = _grid()
    grid.add_row("per entry", f"~{memory.bytes_per_entry} B ({memory.basis})")
    grid.add_row("table now", _mib(memory.table_now))
    share = (
        "" if memory.share_of_ram_at_max is None else f", {memory.share_of_ram_at_max:.2%} of RAM"
    )
    grid.add_row(
        "table at max", f"{_mib(memory.table_at_max)} + hash {_mib(memory.hash_bytes)}{share}"
    )
    if snap.mem_total:
        grid.add_row("MemTotal", _mib(snap.mem_total))
    return grid


def render_defaults_section(report: StatusReport) -> Table:
    snap = report.snapshot
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("kernel default for this RAM")
    table.add_column("buckets", justify="right")
    table.add_column("max", justify="right")
    table.add_column("rule")
    for default in report.metrics.defaults:
        table.add_row(default.era, _num(default.buckets), _num(default.max), default.formula)
    table.add_row(Text("actual", style="bold"), _num(snap.buckets), _num(snap.max), "")
    return table


def render_neighbours_section(report: StatusReport) -> Table:
    grid = _grid()
    for table in report.snapshot.neighbours:
        fill = "" if table.fill is None else f" ({table.fill:.0%})"
        line = Text(
            f"{_num(table.entries)} entries of gc_thresh3 {_num(table.gc_thresh3)}{fill}; "
            f"gc_thresh1 {_num(table.gc_thresh1)}, gc_thresh2 {_num(table.gc_thresh2)}"
        )
        if table.table_fulls:
            line.append(f"; {table.table_fulls:,} refused (table_fulls)", style="yellow")
        grid.add_row(f"{table.family} ({table.name})", line)
    return grid


def render_timeouts_section(report: StatusReport) -> Table:
    by_proto: dict[str, list[Text]] = defaultdict(list)
    for setting in report.snapshot.timeouts:
        proto, _, rest = setting.key.partition("_timeout")
        label = rest.lstrip("_") or "timeout"
        text = Text(f"{label}={setting.seconds}")
        if setting.seconds >= 3600:
            text.append(f" ({humanize_seconds(setting.seconds)})")
        if setting.state == "changed":
            text.stylize("bold yellow")
            text.append(f"* (default {setting.default})", style="yellow")
        by_proto[proto].append(text)
    grid = _grid()
    for proto, items in by_proto.items():
        grid.add_row(proto, Text("  ").join(items))
    return grid


def render_findings(findings: tuple[Finding, ...] | list[Finding]) -> Table | Text:
    if not findings:
        return Text("nothing wrong found", style="green")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for finding in findings:
        head = Text(
            f"[{finding.severity.label}] {finding.code}", style=SEVERITY_STYLE[finding.severity]
        )
        body = Text(finding.title, style="bold")
        body.append(f"\n{finding.evidence}")
        if finding.why:
            body.append(f"\nwhy: {finding.why}", style="dim")
        if finding.next_command:
            body.append("\nnext: ")
            body.append(finding.next_command, style="bold cyan")
        if finding.explain:
            body.append(f"\nwhat it is: {finding.explain}", style="dim")
        grid.add_row(head, body)
    return grid


def render_status(console: Any, report: StatusReport, *, with_findings: bool = True) -> None:
    snap = report.snapshot
    where = snap.netns.label if snap.netns else snap.source
    title = Text(f"conntrack status — {where}")
    if snap.netns:
        title.append(f" (netns inode {snap.netns.inode})")
    if snap.kernel_release:
        title.append(f", kernel {snap.kernel_release}")
    title.append("  verdict: ")
    title.append_text(verdict_text(report.verdict))
    console.print(title)
    if not snap.module_loaded:
        console.print(render_findings(report.findings))
        return
    sections: list[tuple[str, Any]] = [
        ("table", render_table_section(report)),
        ("counters", render_counters_section(report)),
        ("memory", render_memory_section(report)),
        ("sizing", render_defaults_section(report)),
        ("timeouts (seconds, * = changed)", render_timeouts_section(report)),
    ]
    if snap.neighbours:
        sections.append(("neighbour tables (all namespaces)", render_neighbours_section(report)))
    if with_findings:
        sections.append(("findings", render_findings(report.findings)))
    for heading, section in sections:
        console.print(Text(f"\n{heading}", style="bold underline"))
        console.print(section)
    for note in snap.notes:
        console.print(Text(f"note: {note}", style="dim"))
