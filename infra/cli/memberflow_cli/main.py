"""The `memberflow` command: the local stack, and the member trace (local or deployed)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memberflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="the local stack: moto, sandbox Mailchimp, HTTP API, queue pollers")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    local_commands.add_parser("up", help="start the local stack and run until stopped (Ctrl-C)")
    schedule = local_commands.add_parser("schedule", help="fire a schedule of the running local stack now")
    schedule.add_argument("name", help="schedule or function name from template.yaml, e.g. DripSchedule")
    schedule.add_argument("--at", help="firing time (ISO 8601, UTC); default now")
    local_commands.add_parser("demo", help="start the local stack, replay the demo scenario, print a summary")

    trace = commands.add_parser("trace", help="why did this member (not) get the welcome email?")
    trace.add_argument("email")
    where = trace.add_mutually_exclusive_group()
    where.add_argument("--stack", help="a deployed CloudFormation stack name (uses your AWS credentials)")
    where.add_argument("--local", action="store_true", help="the local stack (the default without --stack)")
    trace.add_argument("--json", action="store_true", help="print records as JSON")

    rejections = commands.add_parser("rejections", help="webhook requests rejected on a day, and why")
    rejections.add_argument("--day", help="UTC day, YYYY-MM-DD; default today")
    rejections.add_argument("--stack", help="a deployed CloudFormation stack name (default: the local stack)")

    args = parser.parse_args(argv)
    if args.command == "trace":
        return _trace(args)
    if args.command == "rejections":
        return _rejections(args)
    if args.local_command == "up":
        from memberflow_local.stack import LocalStack

        LocalStack().run_forever()
        return 0
    if args.local_command == "schedule":
        return _fire_schedule(args.name, args.at)
    from memberflow_local.demo import run_demo

    return run_demo()


def _fire_schedule(name: str, at: str | None) -> int:
    import requests

    from memberflow_local.settings import LocalSettings

    settings = LocalSettings.from_env()
    url = f"http://127.0.0.1:{settings.api_port}/_local/schedules/{name}"
    try:
        answer = requests.post(url, json={"at": at} if at else {}, timeout=300)
    except requests.ConnectionError:
        print(f"no local stack answers at {url}: start it with `memberflow local up`", file=sys.stderr)
        return 1
    print(json.dumps(answer.json(), indent=2))
    return 0 if answer.ok else 1


def _trace(args: argparse.Namespace) -> int:
    from memberflow.adapters.member_profiles import DynamoMemberRepository
    from memberflow.adapters.trace_store import DynamoTraceStore
    from memberflow.trace_report import collect, render

    trace_table, members_table = _trace_tables(args.stack)
    report = collect(args.email, DynamoTraceStore(trace_table), DynamoMemberRepository(members_table))
    if args.json:
        print(json.dumps([_record_json(r) for r in report.records], indent=2))
    else:
        print("\n".join(render(report)))
    return 0


def _rejections(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from memberflow.adapters.trace_store import DynamoTraceStore
    from memberflow.trace import rejections_subject
    from memberflow.trace_report import format_timeline

    day = args.day or f"{datetime.now(UTC):%Y-%m-%d}"
    trace_table, _ = _trace_tables(args.stack)
    records = DynamoTraceStore(trace_table).query(rejections_subject(day))
    print(f"{len(records)} request(s) rejected on {day}")
    for line in format_timeline(records):
        print("  " + line)
    return 0


def _trace_tables(stack: str | None) -> tuple[str, str]:
    """Table names of a deployed stack (from CloudFormation), or of the local stack (and point boto3 at it)."""
    if stack:
        from memberflow.adapters.aws import client

        cloudformation = client("cloudformation")

        def physical(logical_id: str) -> str:
            answer = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
            return answer["StackResourceDetail"]["PhysicalResourceId"]

        return physical("TraceTable"), physical("MembersTable")

    from memberflow_local.aws import AWS_ENV
    from memberflow_local.settings import LocalSettings
    from memberflow_local.template import physical_name

    settings = LocalSettings.from_env()
    os.environ.update({**AWS_ENV, "AWS_ENDPOINT_URL": f"http://{settings.host}:{settings.aws_port}"})
    return physical_name("TraceTable"), physical_name("MembersTable")


def _record_json(record) -> dict:
    return {
        "at": record.at.isoformat(),
        "step": record.step.value,
        "outcome": record.outcome.value,
        "source": record.source,
        "detail": record.detail,
        "correlation_id": record.correlation_id,
    }


if __name__ == "__main__":
    sys.exit(main())
