"""The last scene: the community health report of the demo's community. Twelve weeks of history are seeded into the
stack's activity log (the demo itself has only minutes of it), beside what the scenario's members just recorded;
the report of the last complete week is computed with DuckDB from the bucket, stored where the scheduled run stores
it, and written next to the demo's log."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import timedelta
from pathlib import Path

from memberflow.adapters.activity_log import PREFIX
from memberflow.health.queries import Period

from . import SceneContext

COMMUNITY = "the demo community"
MEMBERS = 900


def play(scene: SceneContext) -> None:
    from ..community import generate, upload
    from ..report import local_report, store_report, write_report

    stack = scene.stack
    s3, bucket = stack.client("s3"), stack.bucket_name("ActivityBucket")
    live = s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/").get("KeyCount", 0)
    scene.check(live > 0, "the scenario's joins, messages and posts are in the activity log")

    secret = stack.client("secretsmanager").get_secret_value(SecretId=stack.secret_arn("ActivityKeySecret"))
    key = json.loads(secret["SecretString"])["activity_key"].encode()
    period = Period.week_of(scene.started_at.date() - timedelta(days=7))
    seeded = upload(s3, bucket, generate(members=MEMBERS, end=period.end), key)
    scene.say(f"seeded 12 weeks of history: {seeded:,} activity records of {MEMBERS} members, up to {period.label}")

    with tempfile.TemporaryDirectory(prefix="memberflow-report-") as work:
        report = local_report(s3, bucket, period, Path(work), community=COMMUNITY, now=scene.started_at)
    written = write_report(report, Path(tempfile.gettempdir()) / "memberflow")
    stored = store_report(s3, bucket, report)

    figures = report.data["figures"]
    everyone = figures["active"]["all"]
    activation = figures["activation"]["all"]
    scene.say(
        f"{period.label}: WAU {everyone['wau']}, MAU {everyone['mau']}, stickiness {everyone['stickiness']:.0%}, "
        f"{activation['new_members']} new members ({activation['rate']:.0%} activated), "
        f"{figures['churn_risk'].get('all', {}).get('count', 0)} at churn risk"
    )
    for callout in report.data["callouts"]:
        scene.say(f"  {callout['priority']}. {callout['title']}")
    scene.say(f"the report: {written.html} (JSON beside it; stored as {stored})")

    charts = re.findall(r'<svg class="chart" data-chart="([^"]+)" data-marks="(\d+)"', report.html)
    scene.check(
        len(charts) >= 9 and all(int(marks) > 0 for _, marks in charts),
        "the health report draws every chart with data",
    )
    scene.check(len(figures["cohorts"]["all"]) == 8, "the report shows eight weekly join cohorts")
    scene.check(bool(report.data["callouts"]), "the report opens with callouts")
