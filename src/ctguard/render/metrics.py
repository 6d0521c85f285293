"""A collection round as Prometheus metric families (names in docs/monitoring.md).

Counters are the kernel's own, summed over CPUs, named as the kernel names
them (``drop`` -> ``ctguard_conntrack_drop_total``); nothing is a
percentage; one series per namespace (label ``netns``), never per CPU or
per address.  prometheus-client is imported by the caller's first use of
this module only (the exporter), never by `ctguard status`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from ctguard import __version__
from ctguard.gather.kmsg_follow import KmsgCounts
from ctguard.model.collection import Collection

PREFIX = "ctguard_conntrack_"
SOURCE_KMSG = "kmsg"

# What each kernel counter means, for HELP (FACTS §4, §6); others get a generic text.
COUNTER_HELP = {
    "drop": "packets dropped because the table was full and nothing was evictable (loss)",
    "early_drop": "entries evicted to make room for a new one at max (not loss by itself)",
    "insert_failed": "entries that could not be inserted: tuple clashes (the UDP/DNS race) "
    "or chaintoolong, rarely a full table",
    "invalid": "packets conntrack could not track (invalid state or malformed)",
    "search_restart": "hash lookups restarted because of a concurrent resize",
    "clash_resolve": "insert clashes resolved by reusing the existing entry",
    "chaintoolong": "entries refused because their hash chain was too long",
    "found": "lookups that found an existing entry",
    "insert": "entries inserted",
}


def _metric_name(counter: str) -> str:
    return PREFIX + re.sub(r"[^a-zA-Z0-9_]", "_", counter) + "_total"


def collection_metrics(
    collection: Collection,
    kmsg: KmsgCounts | None,
    *,
    kmsg_error: str | None = None,
) -> Iterator[Metric]:
    """Every family for one round; ``kmsg`` None leaves the log counters out."""
    netns = ["netns"]
    entries = GaugeMetricFamily(
        PREFIX + "entries", "entries in this namespace's table (nf_conntrack_count)", labels=netns
    )
    maximum = GaugeMetricFamily(
        PREFIX + "max",
        "the limit each namespace's table is checked against (nf_conntrack_max; global)",
        labels=netns,
    )
    buckets = GaugeMetricFamily(
        PREFIX + "buckets", "hash table buckets (nf_conntrack_buckets; global)", labels=netns
    )
    memory = GaugeMetricFamily(
        PREFIX + "memory_at_max_bytes",
        "kernel memory the table would use at max: entries x bytes per entry (slabinfo) "
        "+ 8 B per bucket; unswappable",
        labels=netns,
    )
    info = GaugeMetricFamily(
        "ctguard_netns_info",
        "1 per namespace read: its inode (the kernel log's 'netns <inum>') and whether it is "
        "the exporter's own",
        labels=["netns", "inode", "own"],
    )
    counters: dict[str, CounterMetricFamily] = {}
    success = GaugeMetricFamily(
        "ctguard_scrape_source_success",
        "1 if the source answered in this scrape, 0 if it failed",
        labels=["source", "netns"],
    )
    duration = GaugeMetricFamily(
        "ctguard_scrape_source_duration_seconds",
        "how long reading the source took in this scrape",
        labels=["source", "netns"],
    )
    for result in collection.sources:
        success.add_metric([result.source, ""], 1.0 if result.success else 0.0)
        duration.add_metric([result.source, ""], result.seconds)
    counter_source = "none"
    labels_by_inode: dict[int, str] = {}
    for sample in collection.samples:
        label = [sample.label]
        for result in sample.sources:
            success.add_metric([result.source, sample.label], 1.0 if result.success else 0.0)
            duration.add_metric([result.source, sample.label], result.seconds)
        inode = sample.netns.inode if sample.netns else None
        if inode is None and sample.label.isdigit():
            inode = int(sample.label)
        if inode is not None:
            labels_by_inode[inode] = sample.label
        info.add_metric(
            [sample.label, "" if inode is None else str(inode), "true" if sample.own else "false"],
            1.0,
        )
        if sample.count is not None:
            entries.add_metric(label, float(sample.count))
        if sample.max is not None:
            maximum.add_metric(label, float(sample.max))
        if sample.buckets is not None:
            buckets.add_metric(label, float(sample.buckets))
        if sample.memory_at_max_bytes is not None:
            memory.add_metric(label, float(sample.memory_at_max_bytes))
        if sample.counter_source is not None and (sample.own or counter_source == "none"):
            counter_source = sample.counter_source.kind
        for name, value in sorted((sample.counters or {}).items()):
            family = counters.get(name)
            if family is None:
                help_text = COUNTER_HELP.get(name, f"the kernel's per-CPU counter {name}")
                family = counters[name] = CounterMetricFamily(
                    _metric_name(name),
                    f"{help_text} (kernel counter {name}, summed over CPUs)",
                    labels=netns,
                )
            family.add_metric(label, float(value))
    yield entries
    yield maximum
    yield buckets
    yield memory
    yield from counters.values()
    if kmsg is not None:
        yield from _kmsg_metrics(collection, kmsg, labels_by_inode)
    if kmsg is not None or kmsg_error is not None:
        success.add_metric([SOURCE_KMSG, ""], 0.0 if kmsg_error else 1.0)
    yield info
    build = InfoMetricFamily(
        "ctguard", "the exporter's version, the kernel and the per-CPU counters' source"
    )
    build.add_metric(
        [],
        {
            "version": __version__,
            "kernel": collection.kernel_release or "unknown",
            "counter_source": counter_source,
        },
    )
    yield build
    yield success
    yield duration
    yield GaugeMetricFamily(
        "ctguard_scrape_duration_seconds",
        "how long the whole collection round took in this scrape",
        value=collection.seconds,
    )


def _kmsg_metrics(
    collection: Collection, kmsg: KmsgCounts, labels_by_inode: dict[int, str]
) -> Iterator[Metric]:
    lines = CounterMetricFamily(
        PREFIX + "table_full_log_lines",
        "'table full' kernel log lines since the exporter started, per namespace printed in "
        'them (6.16+); netns="" for lines that name none (older kernels); rate-limited, so a '
        "lower bound of drops",
        labels=["netns"],
    )
    seen: dict[str, int] = {sample.label: 0 for sample in collection.samples}
    for inode, lines_counted in kmsg.table_full.items():
        label = "" if inode is None else labels_by_inode.get(inode, str(inode))
        seen[label] = seen.get(label, 0) + lines_counted
    for label, total in sorted(seen.items()):
        lines.add_metric([label], float(total))
    yield lines
    yield CounterMetricFamily(
        "ctguard_kernel_log_suppressed_messages",
        "N of 'net_ratelimit: N callbacks suppressed' lines since the exporter started "
        "(every rate-limited network message, not only conntrack's)",
        value=float(kmsg.suppressed),
    )
    yield CounterMetricFamily(
        "ctguard_kernel_log_lab_lines",
        "'table full' lines of namespaces a `ctguard lab` run marked (rehearsals, left out "
        "of ctguard_conntrack_table_full_log_lines_total)",
        value=float(kmsg.lab_lines),
    )
    yield CounterMetricFamily(
        "ctguard_kernel_log_overruns",
        "times the kernel ring buffer overwrote records before the exporter read them",
        value=float(kmsg.overruns),
    )
