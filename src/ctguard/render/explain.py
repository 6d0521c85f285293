"""Output of `ctguard explain`: the topic list, one topic, and their JSON."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from ctguard.explain.topics import KINDS, TOPICS, HostValue, Topic


def topic_list_json() -> dict[str, Any]:
    return {
        "topics": [
            {"name": topic.name, "kind": topic.kind, "summary": topic.summary} for topic in TOPICS
        ]
    }


def topic_json(topic: Topic, host: HostValue | None, where: str | None) -> dict[str, Any]:
    return {
        "topic": topic.name,
        "kind": topic.kind,
        "summary": topic.summary,
        "text": topic.text,
        "sysctl": topic.sysctl,
        "host": None
        if host is None
        else {
            "where": where,
            "name": host.label,
            "value": host.value,
            "shown": host.shown,
            "default": host.default,
        },
        "see_also": [f"ctguard explain {name}" for name in topic.see_also],
    }


def render_topic_list(console: Any) -> None:
    console.print("ctguard explain TOPIC — what each of these is, with this host's value")
    for kind in KINDS:
        topics = [topic for topic in TOPICS if kind in (topic.kind, topic.also_kind)]
        console.print(Text(f"\n{kind}s", style="bold"))
        width = max(len(topic.name) for topic in topics)
        for topic in topics:
            console.print(f"  {topic.name:<{width}}  {topic.summary}")


def render_topic(console: Any, topic: Topic, host: HostValue | None, where: str | None) -> None:
    title = Text(topic.name, style="bold")
    title.append(f"  ({topic.kind})", style="dim")
    console.print(title)
    console.print(topic.summary)
    console.print()
    console.print(topic.text, soft_wrap=False)
    if topic.sysctl:
        console.print(Text(f"\nsysctl: {topic.sysctl}", style="dim"))
    if host is not None:
        line = Text(f"\n{where or 'this host'}: ")
        line.append(f"{host.label} = {host.shown}", style="bold cyan")
        console.print(line)
    if topic.see_also:
        console.print(
            Text("see also: " + ", ".join(f"ctguard explain {n}" for n in topic.see_also))
        )
