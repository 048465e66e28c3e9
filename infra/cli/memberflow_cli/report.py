"""`memberflow report --week 2026-W47` (or `--month 2026-11`): the community health report, written to a folder
(the page and its JSON) and stored where the scheduled run stores it (the bucket's reports/). Against the local
stack, DuckDB runs the report's SQL over the bucket's activity log; with `--stack`, Athena runs it in the stack's
workgroup."""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO


def register(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="the community health report of a week or a month")
    which = report.add_mutually_exclusive_group()
    which.add_argument("--week", help="ISO week, e.g. 2026-W47 (default: last week)")
    which.add_argument("--month", help="month, e.g. 2026-11")
    report.add_argument("--stack", help="a deployed CloudFormation stack name (default: the local stack)")
    report.add_argument("--out", default="reports", help="folder the page and its JSON are written to")
    report.add_argument("--community", help="the community's name on the page (default: the stack's CommunityName)")
    report.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from memberflow.health.queries import Period

    out = out or sys.stdout
    try:
        if args.month:
            period = Period.parse(args.month)
        else:
            period = Period.parse(args.week) if args.week else Period.week_of(datetime.now(UTC).date() - timedelta(7))
    except ValueError as error:
        print(f"memberflow report: {error}", file=sys.stderr)
        return 2

    from memberflow.adapters.aws import client
    from memberflow_cli.target import resolve
    from memberflow_local.report import local_report, store_report, write_report

    target = resolve(args.stack)
    community = args.community or target.parameters.get("CommunityName") or "our community"
    bucket = target.physical("ActivityBucket")
    s3 = client("s3")
    if args.stack:
        from memberflow.adapters.athena import AthenaEngine
        from memberflow.health.report import build_report

        environment = target.function_environment("HealthReportFunction")
        engine = AthenaEngine(environment["ATHENA_WORKGROUP"], environment["ATHENA_DATABASE"])
        report = build_report(engine, period, community=community, table=environment.get("ATHENA_TABLE", "activity"))
        scanned = f"; Athena scanned {engine.scanned_bytes / 1e6:.1f} MB"
    else:
        with tempfile.TemporaryDirectory(prefix="memberflow-report-") as work:
            report = local_report(s3, bucket, period, Path(work), community=community)
        scanned = ""
    written = write_report(report, Path(args.out))
    stored = store_report(s3, bucket, report)
    print(f"health report {period.label} of {community} on {target.label}{scanned}", file=out)
    for callout in report.data["callouts"]:
        print(f"  {callout['priority']}. {callout['title']}", file=out)
    print(f"page: {written.html.resolve()}", file=out)
    print(f"JSON: {written.json.resolve()}", file=out)
    print(f"stored: {stored}", file=out)
    return 0
