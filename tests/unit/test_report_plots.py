"""The report's SVG charts: smaller coordinates, never a changed label."""

from __future__ import annotations

import re

from ctguard.render.report_plots import bar_chart


def test_addresses_in_labels_and_tooltips_are_kept_whole() -> None:
    rows = [("192.168.1.100", 5000), ("10.20.123.0/24", 300), ("2001:db8::1234", 7)]
    svg = bar_chart("top sources", rows)
    for label, _ in rows:
        assert label in svg, label
    assert "192.16.1.10" not in svg and "10.20.12.0/24" not in svg
    # while the geometry keeps at most two decimals
    coordinates = re.findall(r'\s(?:d|x|y|width|height)="([^"]*)"', svg)
    assert coordinates and not any(re.search(r"\d\.\d{3}", c) for c in coordinates)
