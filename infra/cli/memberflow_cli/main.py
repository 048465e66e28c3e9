"""The `memberflow` command: the local stack; the member trace, erasure and health checks (local or deployed)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from memberflow_cli import export, imports, report, winback

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    export.register,
    imports.register,
    report.register,
    winback.register,
]
"""An automation's own commands (`memberflow winback ...`): each entry is a `register(commands)` function in its
module of this package that adds its parser with `set_defaults(run=<function taking the parsed args, returning the
exit code>)`, importing what it runs only when it runs."""


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

    forget = commands.add_parser(
        "forget", help="erase a member at their request: Mailchimp, our tables, the trace; keep only a keyed hash"
    )
    forget.add_argument("email")
    forget.add_argument("--stack", help="a deployed CloudFormation stack name (default: the local stack)")
    forget.add_argument(
        "--wait", type=float, default=60, help="seconds to wait for the erasure to be done (0: queue it and return)"
    )

    doctor = commands.add_parser("doctor", help="check what operators get wrong; exit code 1 when a problem is found")
    doctor.add_argument("--stack", help="a deployed CloudFormation stack name (default: the local stack)")
    doctor.add_argument(
        "--sources", help="comma-separated webhook sources in use (default: every source), e.g. slack,discourse"
    )

    rejections = commands.add_parser("rejections", help="webhook requests rejected on a day, and why")
    rejections.add_argument("--day", help="UTC day, YYYY-MM-DD; default today")
    rejections.add_argument("--stack", help="a deployed CloudFormation stack name (default: the local stack)")

    for register in COMMANDS:
        register(commands)

    args = parser.parse_args(argv)
    if getattr(args, "run", None) is not None:
        return int(args.run(args))
    if args.command == "trace":
        return _trace(args)
    if args.command == "rejections":
        return _rejections(args)
    if args.command == "forget":
        from memberflow_cli.forget import forget as run_forget
        from memberflow_cli.target import resolve

        return run_forget(args.email, resolve(args.stack), wait_seconds=args.wait)
    if args.command == "doctor":
        from memberflow_cli.doctor import doctor as run_doctor
        from memberflow_cli.target import resolve

        sources = [name.strip() for name in args.sources.split(",") if name.strip()] if args.sources else None
        return run_doctor(resolve(args.stack), sources)
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
    from memberflow.adapters.consent_ledger import DynamoConsentLedger
    from memberflow.adapters.member_profiles import DynamoMemberRepository
    from memberflow.adapters.trace_store import DynamoTraceStore
    from memberflow.trace_report import collect, render
    from memberflow_cli.forget import suppression_list
    from memberflow_cli.target import resolve

    target = resolve(args.stack)
    suppressions = suppression_list(target)
    try:
        suppressions.key_of("")  # reads the key: support staff may not be allowed to
    except Exception as error:  # noqa: BLE001 - the rest of the trace is still worth printing
        print(f"(erasures not checked: the suppression key cannot be read: {type(error).__name__})", file=sys.stderr)
        suppressions = None
    report = collect(
        args.email,
        DynamoTraceStore(target.physical("TraceTable")),
        DynamoMemberRepository(target.physical("MembersTable")),
        suppressions,
        DynamoConsentLedger(target.physical("MembersTable")),
    )
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
    from memberflow_cli.target import resolve

    day = args.day or f"{datetime.now(UTC):%Y-%m-%d}"
    records = DynamoTraceStore(resolve(args.stack).physical("TraceTable")).query(rejections_subject(day))
    print(f"{len(records)} request(s) rejected on {day}")
    for line in format_timeline(records):
        print("  " + line)
    return 0


def _record_json(record) -> dict:
    return record.as_json()


if __name__ == "__main__":
    sys.exit(main())
