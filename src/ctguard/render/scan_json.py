"""What a table scan skipped, as JSON (`analyze`, `top`, doctor)."""

from __future__ import annotations

from typing import Any

from ctguard.parse.table_scan import ScanResult


def skipped_json(scan: ScanResult) -> dict[str, Any]:
    return {
        "skipped": scan.skipped.count,
        "skipped_reasons": dict(scan.skipped.reasons),
        "skipped_examples": [
            {"line": line, "reason": reason, "text": text}
            for line, reason, text in scan.skipped.examples
        ],
        "declared_entries": sum(scan.declared) if scan.declared else None,
    }
