"""The weekly health report of a large community: 100,000 members and 1,000,000 activity records over twelve
weeks, in DuckDB (as locally and in tests), and the bytes one Athena run of the same report would scan.

- `health_report_s`: the whole report of 2026-W47 (the twelve queries of the week, the six headline queries of the
  week before, the callouts, the page), from the log's files on disk (the days the report reads parsed once, as
  `memberflow report` does). Target: at most 30 s on this machine.
- `health_report_scan_mb`: what Athena would read for it. The log is gzip JSON lines (no column pruning; Athena
  counts the compressed bytes), so each scan reads every object of the day partitions its `dt` condition names
  (partition projection prunes the rest): the sum over the eighteen queries' scans of the bytes of their
  partitions (`Period.scans`: the "first ever" figures scan the retained log's 400 days once more for first joins
  and first attendance). Partitions after the week asked for, or before the retained log's 400 days up to it, are
  never read; the benchmark fails if a query reads one.

Run by `make bench` (after run.py); writes its keys with results.record.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from results import record  # noqa: E402

from memberflow.adapters.activity_log import PREFIX  # noqa: E402
from memberflow.health import figures  # noqa: E402
from memberflow.health.queries import QUERIES, Period  # noqa: E402
from memberflow.health.report import build_report  # noqa: E402
from memberflow_local.community import generate, write  # noqa: E402
from memberflow_local.health import DuckDBEngine  # noqa: E402
from memberflow_local.report import report_days  # noqa: E402

MEMBERS = 100_000
RECORDS = 1_000_000
WEEK = "2026-W47"
TARGET_S = 30.0


def partition_bytes(root: Path) -> dict[str, int]:
    return {
        folder.name.removeprefix("dt="): sum(f.stat().st_size for f in folder.iterdir())
        for folder in (root / PREFIX).iterdir()
    }


def scanned_bytes(sizes: dict[str, int], period: Period, queries: tuple[str, ...]) -> tuple[int, set[str]]:
    """Bytes Athena reads for `queries` of `period` (each scan: every object of its partitions), and the days."""
    total, days = 0, set()
    for name in queries:
        for first, last in period.scans(name):
            for day, size in sizes.items():
                if f"{first:%Y-%m-%d}" <= day <= f"{last:%Y-%m-%d}":
                    total += size
                    days.add(day)
    return total, days


def main() -> int:
    period = Period.parse(WEEK)
    with tempfile.TemporaryDirectory(prefix="memberflow-bench-health-") as folder:
        root = Path(folder)
        began = time.perf_counter()
        # Two weeks past the report's week too: later partitions must not be read either.
        per_day = write(
            root, generate(members=MEMBERS, records=RECORDS, end=period.end + timedelta(days=14)), b"bench-key"
        )
        seeded_s = time.perf_counter() - began
        written = sum(per_day.values())
        assert written == RECORDS, written
        sizes = partition_bytes(root)

        began = time.perf_counter()
        engine = DuckDBEngine(root, days=report_days(period))
        report = build_report(engine, period, community="a community of 100,000")
        report_s = time.perf_counter() - began
        engine.close()

        current, current_days = scanned_bytes(sizes, period, QUERIES)
        previous, previous_days = scanned_bytes(sizes, period.previous(), figures.HEADLINE_QUERIES)
        read_days = current_days | previous_days
        first_allowed = min(period.history_from, period.previous().history_from)
        outside = sorted(d for d in read_days if not (f"{first_allowed:%Y-%m-%d}" <= d < f"{period.end:%Y-%m-%d}"))
        assert not outside, f"partitions outside the report's weeks read: {outside}"
        total_mb = sum(sizes.values()) / 1e6
        scan_mb = (current + previous) / 1e6

    everyone = report.data["figures"]["active"]["all"]
    print(f"seeded {written:,} records of {MEMBERS:,} members in {seeded_s:.1f} s ({total_mb:.1f} MB, gzip JSON lines)")
    print(f"weekly report {WEEK} in DuckDB: {report_s:.2f} s (target <= {TARGET_S:.0f} s); WAU {everyone['wau']:,}")
    print(
        f"Athena would scan {scan_mb:.1f} MB for it: {len(read_days)} of {len(sizes)} day partitions "
        f"({min(read_days)} to {max(read_days)}), eighteen queries each reading its own days"
    )
    record(
        {
            "health_report_s": round(report_s, 2),
            "health_report_scan_mb": round(scan_mb, 1),
            "health_report_members": MEMBERS,
            "health_report_records": RECORDS,
            "health_log_mb": round(total_mb, 1),
            "health_report_partitions_read": len(read_days),
            "health_log_partitions": len(sizes),
        }
    )
    return 0 if report_s <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
