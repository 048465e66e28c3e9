"""`memberflow winback preview` (who a campaign's run would contact, hold out or exclude, and why; contacts nobody)
and `memberflow winback results CAMPAIGN` (the campaign's results file as a table), local or deployed."""

from __future__ import annotations

import argparse
import json
from typing import Any

FUNCTION_DIR = "functions/winback"


def register(commands: argparse._SubParsersAction) -> None:
    winback = commands.add_parser("winback", help="win-back campaigns: preview a run, show a campaign's results")
    actions = winback.add_subparsers(dest="winback_command", required=True)

    preview = actions.add_parser("preview", help="who today's run would contact, hold out or exclude, and why")
    preview.add_argument("--campaign", default="winback", help="campaign id (default: winback)")
    preview.add_argument("--day", help="the run's day, YYYY-MM-DD (UTC); default today")
    preview.add_argument("--limit", type=int, default=50, help="members to list (counts cover everyone)")
    preview.add_argument("--show-addresses", action="store_true", help="print addresses unmasked")
    preview.add_argument("--json", action="store_true", help="print the preview as JSON")
    preview.add_argument("--stack", help="a deployed CloudFormation stack name (default: the local stack)")
    preview.set_defaults(run=_preview)

    results = actions.add_parser("results", help="a campaign's results: reactivation and lift against the holdout")
    results.add_argument("campaign")
    results.add_argument("--json", action="store_true", help="print the results file as it is")
    results.add_argument("--stack", help="a deployed CloudFormation stack name (default: the local stack)")
    results.set_defaults(run=_results)

    backfill = actions.add_parser(
        "backfill", help="once, before the first run: give profiles written before win-back their inactivity index day"
    )
    backfill.add_argument("--stack", help="a deployed CloudFormation stack name (default: the local stack)")
    backfill.set_defaults(run=_backfill)


def campaign_file() -> Any:
    """The campaign file of this checkout (the one the function is deployed with), validated."""
    from memberflow.winback.campaign import parse_campaigns
    from memberflow_local.settings import REPO_ROOT

    path = REPO_ROOT / FUNCTION_DIR / "campaigns.json"
    return parse_campaigns(path.read_text(), str(path.relative_to(REPO_ROOT)))


def _preview(args: argparse.Namespace) -> int:
    from datetime import UTC, date, datetime

    from memberflow.adapters.winback_store import DynamoWinbackStore
    from memberflow.winback.campaign import CampaignError
    from memberflow.winback.preview import preview
    from memberflow_cli.target import resolve

    try:
        campaign = campaign_file().get(args.campaign)
    except CampaignError as error:
        print(error)
        return 2
    day = date.fromisoformat(args.day) if args.day else datetime.now(UTC).date()
    store = DynamoWinbackStore(resolve(args.stack).physical("MembersTable"))
    shown = preview(campaign, day, store, limit=args.limit, show_addresses=args.show_addresses)
    if args.json:
        print(json.dumps(shown, indent=2))
        return 0
    print("\n".join(preview_lines(shown)))
    return 0


def preview_lines(shown: dict[str, Any]) -> list[str]:
    counts = shown["counts"]
    lines = [
        f"Campaign {shown['campaign']}, run of {shown['day']} (covers {shown['covers'][0]} to {shown['covers'][1]}):"
        " nothing is sent by this preview",
        f"  would contact {counts['contacted']}, hold out {counts['held_out']}, exclude {counts['excluded']}",
    ]
    for tag, n in sorted(shown["tags"].items()):
        lines.append(f"    tag {tag}: {n}")
    for why, n in sorted(shown["excluded_by_reason"].items()):
        lines.append(f"    excluded, {why}: {n}")
    if shown["members"]:
        lines.append(f"  first {shown['members_listed']} members:")
        lines.append(f"    {'email':<32} {'tier':>5} {'inactive since':<14} {'outcome':<10} why")
        for member in shown["members"]:
            lines.append(
                f"    {member['email']:<32} {member['tier_days']:>4}d {member['inactive_since']:<14} "
                f"{member['outcome']:<10} {member['why']}"
            )
    return lines


def _backfill(args: argparse.Namespace) -> int:
    from memberflow_cli.target import resolve

    target = resolve(args.stack)
    print(
        f"{backfill_active_days(target.physical('MembersTable'))} profile(s) of {target.label} given their active day"
    )
    return 0


def backfill_active_days(table_name: str) -> int:
    """Profiles without `active_day` (written before win-back existed) get it: the day of their last activity, or
    of their join if never active. A scan, once, by an operator; a profile that got one meanwhile is left alone."""
    from datetime import datetime

    from memberflow.adapters.active_days import ACTIVE_DAY_ATTRIBUTE, active_day_key
    from memberflow.adapters.aws import client, table
    from memberflow.adapters.dynamo import update_if
    from memberflow.adapters.winback_store import PROFILE

    given = 0
    pages = (
        client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=table_name,
            FilterExpression=f"sk = :profile AND attribute_not_exists({ACTIVE_DAY_ATTRIBUTE})",
            ExpressionAttributeValues={":profile": {"S": PROFILE}},
            ProjectionExpression="pk, member_id, last_active_at, joined_at",
        )
    )
    for page in pages:
        for item in page["Items"]:
            since = (item.get("last_active_at") or item.get("joined_at") or {}).get("S")
            if not since or "member_id" not in item:
                continue
            day = datetime.fromisoformat(since).date()
            answer = update_if(
                table(table_name),
                Key={"pk": item["pk"]["S"], "sk": PROFILE},
                UpdateExpression=f"SET {ACTIVE_DAY_ATTRIBUTE} = :day",
                ConditionExpression=f"attribute_exists(pk) AND attribute_not_exists({ACTIVE_DAY_ATTRIBUTE})",
                ExpressionAttributeValues={":day": active_day_key(item["member_id"]["S"], day)},
            )
            given += answer is not None
    return given


def _results(args: argparse.Namespace) -> int:
    from memberflow.adapters.winback_store import S3ResultsStore
    from memberflow_cli.target import resolve

    results = S3ResultsStore(resolve(args.stack).physical("WinbackResultsBucket")).get(args.campaign)
    if results is None:
        print(f"no results for campaign {args.campaign!r} yet (a campaign's file is written when a run completes)")
        return 1
    print(json.dumps(results, indent=2) if args.json else results_table(results))
    return 0


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


VERDICTS = {
    "works": "works",
    "worse": "worse than no contact",
    "not_shown": "not shown",
    "too_few": "too few to tell",
}
"""The lift's verdict (`memberflow.stats.Verdict`) as the table words it."""


def verdict_of(measured: dict[str, Any], min_group: int | None, *, windows_open: int = 0) -> str:
    """The verdict of a lift in the results file: "works" only when each group is large enough and the interval
    is above 0. A file written before verdicts were recorded is judged by its interval. `windows_open`: members of
    the variant and its holdout whose window has not closed yet (why a lift may be missing)."""
    if measured.get("difference") is None:
        return "window not over yet" if windows_open else "no holdout to compare"
    verdict = measured.get("verdict")
    if verdict is None:
        if measured["significant"] is None:
            return "no holdout to compare"
        verdict = "not_shown" if not measured["significant"] else ("works" if measured["difference"] > 0 else "worse")
    text = VERDICTS.get(verdict, verdict)
    if verdict == "too_few" and min_group:
        text += f" (< {min_group} a group)"
    return text


def _back(group: dict[str, Any], window: int) -> str:
    """Members back within the window, of those whose window has closed, and the rate."""
    measured = group.get(f"measured_{window}d")
    of = "" if measured is None else f" of {measured}"
    return f"{group[f'reactivated_{window}d']}{of} ({_percent(group[f'rate_{window}d'])})"


def results_table(results: dict[str, Any]) -> str:
    """The results file as a marketer reads it: per tier and variant, the reactivation rates (over the members
    whose window has closed) and the lift against the holdout in percentage points, with its 95% confidence
    interval and the verdict."""
    header = (
        f"{'tier':>5} {'variant':<8} {'members':>8} {'back 14d':>18} {'back 30d':>18} "
        f"{'lift 30d (pp)':>13} {'95% CI (pp)':>17}  verdict"
    )
    lines = [
        f"Win-back campaign {results['campaign']}, as of {results['as_of']} "
        f"(holdout {100 * results['holdout_share']:.0f}%; lift = rate - holdout rate)",
        header,
        "-" * len(header),
    ]
    min_group = results.get("min_group_for_verdict")
    for tier in results["tiers"]:
        held_open = sum(g["window_open_30d"] for g in tier["groups"] if g["variant"] == "holdout")
        for group in tier["groups"]:
            holdout = group["variant"] == "holdout"
            n = group["held_out"] if holdout else group["contacted"]
            back = [_back(group, w) for w in (14, 30)]
            if holdout:
                lift, ci, verdict = "", "", "control"
            else:
                measured = group["lift_30d"]
                lift = _points(measured["difference"])
                ci = (
                    "-"
                    if measured["ci95"] is None
                    else f"[{_points(measured['ci95'][0])}, {_points(measured['ci95'][1])}]"
                )
                verdict = verdict_of(measured, min_group, windows_open=group["window_open_30d"] + held_open)
            lines.append(
                f"{tier['tier_days']:>4}d {group['variant']:<8} {n:>8} {back[0]:>18} {back[1]:>18} {lift:>13} {ci:>17}"
                f"  {verdict}"
            )
    open_windows = sum(g["window_open_30d"] for tier in results["tiers"] for g in tier["groups"])
    if open_windows:
        lines.append(
            f"({open_windows} members were selected 30 days ago or less: their 30-day window is still open, so they"
            " are left out of the 30-day rates and lift until it closes)"
        )
    apart = sum(g.get("not_tagged", 0) + g.get("refused", 0) for tier in results["tiers"] for g in tier["groups"])
    if apart:
        lines.append(
            f"({apart} selected members were not contacted: Mailchimp refused or added no tag; they are in no group)"
        )
    if min_group:
        lines.append(f"(a verdict needs at least {min_group} members in each group)")
    return "\n".join(lines)
