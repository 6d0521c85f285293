"""The report's plots, drawn by pygal as inline SVG.

pygal: a small, pure-Python SVG charting library (no compiled code, a few
hundred kilobytes with its dependencies, so the Debian package stays small
and lintian-clean), kept up to date, whose charts are plain SVG: with its
scripts turned off (``js=[]``) they show and print without JavaScript and
need nothing from the network, as the report must (it opens offline).
Imported only here, only by `ctguard report`.
"""

from __future__ import annotations

import re
from typing import Any

COLOR = "#2c6fbb"
ALERT = "#c0392b"
WIDTH = 640


def _config(title: str, height: int) -> dict[str, Any]:
    from pygal.style import Style

    style = Style(
        background="white",
        plot_background="white",
        foreground="#1d2329",
        foreground_strong="#1d2329",
        foreground_subtle="#8a949d",
        colors=(COLOR, ALERT),
        font_family="system-ui, sans-serif",
        title_font_size=15,
        label_font_size=11,
        major_label_font_size=11,
        value_font_size=11,
        tooltip_font_size=11,
    )
    return {
        "title": title,
        "style": style,
        "width": WIDTH,
        "height": height,
        "js": [],  # no script: static SVG
        "disable_xml_declaration": True,
        "show_legend": False,
        "print_values": True,
        "value_formatter": lambda value: f"{value:,.0f}",
        "margin": 8,
    }


_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


def _svg(chart: Any) -> str:
    """The chart's SVG without the configuration script pygal always inlines
    (for interactive tooltips): the report runs no script."""
    text = chart.render()
    svg = text.decode() if isinstance(text, bytes) else str(text)
    return _SCRIPT.sub("", svg)


def bar_chart(title: str, rows: list[tuple[str, int]], *, alert_first: bool = False) -> str:
    """Horizontal bars, the largest on top."""
    import pygal

    chart = pygal.HorizontalBar(**_config(title, 70 + 26 * max(1, len(rows))))
    ordered = rows[::-1]
    chart.x_labels = [label for label, _ in ordered]
    top = len(ordered) - 1
    chart.add(
        "entries",
        [
            {"value": value, "color": ALERT if alert_first and i == top else COLOR}
            for i, (_, value) in enumerate(ordered)
        ],
    )
    return _svg(chart)


def timeline_chart(title: str, starts: list[str], lines: list[int], minutes: int) -> str:
    """'table full' lines per bin over time."""
    import pygal

    config = _config(f"{title} (lines per {minutes} min)", 260)
    config["print_values"] = False
    chart = pygal.Bar(**config, x_label_rotation=0, show_minor_x_labels=False)
    chart.x_labels = [start.replace("T", " ")[:16] for start in starts]
    ticks = sorted({0, len(starts) // 2, len(starts) - 1}) if starts else []
    chart.x_labels_major = [chart.x_labels[i] for i in ticks]
    chart.add("lines", [{"value": n, "color": ALERT} for n in lines])
    return _svg(chart)
