"""The health report off AWS: the activity log copied from a bucket (the local stack's moto S3) into a folder, and
the report's SQL run on it by DuckDB. `memberflow report` and the demo's last scene use it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from memberflow.adapters.activity_log import PREFIX
from memberflow.health.queries import Period
from memberflow.health.report import Report, build_report

from .health import DuckDBEngine


def report_days(period: Period) -> tuple[date, date]:
    """The first and last day partitions the report of `period` reads (its own and the previous period's)."""
    return min(period.scan_from, period.previous().scan_from), period.scan_last


def download_log(s3: Any, bucket: str, dest: Path, *, first: date | None = None, last: date | None = None) -> Path:
    """The bucket's activity log under `dest` (the same keys), only the day partitions from `first` to `last`."""
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{PREFIX}/dt="):
        for item in page.get("Contents", []):
            key = item["Key"]
            day = key.split("/")[1].removeprefix("dt=")
            if (first and day < f"{first:%Y-%m-%d}") or (last and day > f"{last:%Y-%m-%d}"):
                continue
            target = dest / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    (dest / PREFIX).mkdir(parents=True, exist_ok=True)
    return dest


@dataclass
class WrittenReport:
    report: Report
    html: Path
    json: Path


def write_report(report: Report, out_dir: Path) -> WrittenReport:
    out_dir.mkdir(parents=True, exist_ok=True)
    html = out_dir / f"health-{report.period.label}.html"
    data = out_dir / f"health-{report.period.label}.json"
    html.write_text(report.html, encoding="utf-8")
    data.write_bytes(report.json_bytes)
    return WrittenReport(report, html, data)


def local_report(
    s3: Any, bucket: str, period: Period, work_dir: Path, *, community: str, now: datetime | None = None
) -> Report:
    """The report of `period` from the bucket's log, with DuckDB (reading only the days the period needs)."""
    days = report_days(period)
    log = download_log(s3, bucket, work_dir / "log", first=days[0], last=days[1])
    engine = DuckDBEngine(log, days=days)
    try:
        return build_report(engine, period, community=community, now=now)
    finally:
        engine.close()


def store_report(s3: Any, bucket: str, report: Report) -> str:
    """The page and its JSON in the bucket, where the scheduled run puts them; the page's s3:// address."""
    s3.put_object(Bucket=bucket, Key=report.html_key, Body=report.html.encode(), ContentType="text/html; charset=utf-8")
    s3.put_object(Bucket=bucket, Key=report.json_key, Body=report.json_bytes, ContentType="application/json")
    return f"s3://{bucket}/{report.html_key}"
