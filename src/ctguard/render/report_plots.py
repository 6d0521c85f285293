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
# the data pygal keeps for its script's tooltips, per value: the value, the
# tooltip's position, the x label
_TOOLTIP = re.compile(
    r'<desc class="value">([^<]*)</desc><desc class="x[^"]*">[^<]*</desc>'
    r'<desc class="y[^"]*">[^<]*</desc>(?:<desc class="x_label">([^<]*)</desc>)?'
)
_DIGITS = re.compile(r"(\d\.\d{2})\d+")
# geometry attributes only: a label or a tooltip ("192.168.1.100") is never cut
_GEOMETRY = re.compile(
    r'(\s(?:d|x|y|x1|x2|y1|y2|cx|cy|r|rx|ry|width|height|transform|points|viewBox)=")([^"]*)"'
)


def _round(match: re.Match[str]) -> str:
    return match.group(1) + _DIGITS.sub(r"\1", match.group(2)) + '"'


def _title(match: re.Match[str]) -> str:
    value, label = match.group(1), match.group(2)
    return f"<title>{label}: {value}</title>" if label else f"<title>{value}</title>"


def _svg(chart: Any) -> str:
    """The chart's SVG without the configuration script pygal always inlines (for
    interactive tooltips): the report runs no script.  Each value's tooltip data
    becomes an SVG ``<title>`` (the browser shows it on hover, without script), and
    coordinates keep two decimals: a chart of 120 bars stays a few tens of kB."""
    text = chart.render()
    svg = text.decode() if isinstance(text, bytes) else str(text)
    return _GEOMETRY.sub(_round, _TOOLTIP.sub(_title, _SCRIPT.sub("", svg)))


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
    _time_axis(chart, starts)
    _whole_numbers(chart, max(lines, default=0))
    chart.add("lines", [{"value": n, "color": ALERT} for n in lines])
    return _svg(chart)


def _whole_numbers(chart: Any, highest: int) -> None:
    """A few events: whole numbers on the axis, not 0.5 steps."""
    if highest <= 10:
        chart.y_labels = list(range(highest + 1))


def _time_axis(chart: Any, starts: list[str]) -> None:
    chart.truncate_label = -1  # whole times under the first, middle and last bins
    chart.margin_right = 56  # room for the last one
    chart.x_labels = [start.replace("T", " ")[:16] for start in starts]
    ticks = sorted({0, len(starts) // 2, len(starts) - 1}) if starts else []
    chart.x_labels_major = [chart.x_labels[i] for i in ticks]


def fill_chart(title: str, starts: list[str], series: list[tuple[str, list[float | None]]]) -> str:
    """The table's fill (percent of max) per namespace over time; gaps where nothing was
    recorded (the guard was not running)."""
    import pygal

    config = _config(title, 280)
    config.update(print_values=False, show_legend=len(series) > 1, legend_at_bottom=True)
    config["value_formatter"] = lambda value: f"{value:.1f}%"
    config["style"].colors = (COLOR, "#7d3c98", "#16a085", "#d68910", "#5d6d7e", ALERT)
    chart = pygal.Line(
        **config,
        x_label_rotation=0,
        show_minor_x_labels=False,
        range=(0, 100),
        show_dots=False,
        allow_interruptions=True,
    )
    _time_axis(chart, starts)
    for name, values in series:
        chart.add(name, values)
    return _svg(chart)


def stacked_chart(title: str, starts: list[str], series: list[tuple[str, list[int]]]) -> str:
    """Counts per bin over time, one colour per series (drops; decisions by action)."""
    import pygal

    config = _config(title, 240)
    config.update(print_values=False, show_legend=len(series) > 1, legend_at_bottom=True)
    config["style"].colors = (ALERT, "#d68910", "#5d6d7e", COLOR, "#7d3c98", "#16a085")
    chart = pygal.StackedBar(**config, x_label_rotation=0, show_minor_x_labels=False)
    _time_axis(chart, starts)
    _whole_numbers(
        chart, max((sum(v) for v in zip(*(v for _, v in series), strict=True)), default=0)
    )
    for name, values in series:
        chart.add(name, [v or None for v in values])  # no bar drawn for nothing
    return _svg(chart)
