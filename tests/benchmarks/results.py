"""bench-results.json: every benchmark adds its own keys to the one file `make bench` leaves behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench-results.json"


def record(figures: dict[str, Any]) -> None:
    """Merge `figures` into bench-results.json, keeping the other benchmarks' keys."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(figures)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
