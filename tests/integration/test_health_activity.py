"""The activity log on the local stack: the onboarding function, invoked with an SQS batch as Lambda would, writes
its records to the template's bucket (one object per day partition and batch), members as keyed hashes, and the
report's SQL reads them with DuckDB."""

from __future__ import annotations

import gzip
import json

import pytest

from memberflow.activity import member_hash
from memberflow.health import figures
from memberflow.health.queries import Period
from memberflow.members import member_id_for
from memberflow_cli.main import main as memberflow_cli
from memberflow_local.health import DuckDBEngine
from memberflow_local.report import download_log
from support.health_seed import records, write_log
from support.queue import active, empty_queues, joined, run_onboarding


@pytest.fixture(autouse=True)
def clean_state(local_stack):
    local_stack.mailchimp.reset()
    empty_queues(local_stack)
    s3, bucket = local_stack.client("s3"), local_stack.bucket_name("ActivityBucket")
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    yield


@pytest.fixture
def cli(local_stack, monkeypatch, capsys):
    """`memberflow ...` against the local stack; the exit code and what it printed."""
    endpoints = local_stack.endpoints()
    monkeypatch.setenv("MEMBERFLOW_LOCAL_AWS_PORT", endpoints["aws_endpoint"].rsplit(":", 1)[1])
    monkeypatch.setenv("MEMBERFLOW_LOCAL_MAILCHIMP_PORT", endpoints["mailchimp_url"].rsplit(":", 1)[1].split("/")[0])

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = memberflow_cli(list(argv))
        return code, capsys.readouterr().out

    return run


def activity_lines(local_stack) -> list[tuple[str, dict]]:
    s3, bucket = local_stack.client("s3"), local_stack.bucket_name("ActivityBucket")
    objects = s3.list_objects_v2(Bucket=bucket, Prefix="activity/").get("Contents", [])
    return [
        (item["Key"], json.loads(line))
        for item in objects
        for line in gzip.decompress(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()).decode().splitlines()
    ]


def test_a_batch_of_member_events_lands_in_the_activity_log_and_the_report_reads_it(local_stack, tmp_path):
    email = "grace.hopper@example.org"
    join = joined(email, consent=True, user_id="g-1")
    answer = run_onboarding(local_stack, join, active(join.event.identity, "post"))
    assert answer == {"batchItemFailures": []}
    # A redelivery of the same batch: the idempotency layer makes it a no-op, the log gets nothing new.
    run_onboarding(local_stack, join)

    lines = activity_lines(local_stack)
    kinds = sorted(line["kind"] for _, line in lines)
    assert kinds == sorted(["joined", "mailchimp_added", "welcomed", "post", "activated"])
    # Each record in the partition of its own day: the join and the post on the platform's time, the Mailchimp add
    # and the welcome when the function did them.
    assert all(key.split("/")[1] == f"dt={line['ts'][:10]}" for key, line in lines)
    day = join.event.joined_at.strftime("%Y-%m-%d")
    assert {line["ts"][:10] for _, line in lines if line["kind"] in ("joined", "post", "activated")} == {day}
    key = json.loads(
        local_stack.client("secretsmanager").get_secret_value(SecretId=local_stack.secret_arn("ActivityKeySecret"))[
            "SecretString"
        ]
    )["activity_key"].encode()
    assert {line["member"] for _, line in lines} == {member_hash(key, member_id_for(join.event.identity, email))}
    assert email not in json.dumps(lines) and "g-1" not in json.dumps(lines)

    root = download_log(local_stack.client("s3"), local_stack.bucket_name("ActivityBucket"), tmp_path)
    week = figures.compute(DuckDBEngine(root), Period.week_of(join.event.joined_at.date()))
    assert week["activation"]["all"]["new_members"] == 1
    assert week["activation"]["all"]["activated"] == 1
    # The Mailchimp add and the welcome happened when the function ran (today), after the join's week: the funnel
    # counts steps reached by the period's end.
    assert (week["funnel"]["all"]["joined"], week["funnel"]["all"]["active"]) == (1, 1)


def test_memberflow_report_writes_the_weeks_page_and_json_and_stores_them(local_stack, cli, tmp_path):
    s3, bucket = local_stack.client("s3"), local_stack.bucket_name("ActivityBucket")
    seeded = write_log(tmp_path / "seed", records())
    for path in (seeded / "activity").rglob("*.jsonl.gz"):
        s3.put_object(Bucket=bucket, Key=str(path.relative_to(seeded)), Body=path.read_bytes())

    code, printed = cli("report", "--week", "2026-W47", "--out", str(tmp_path / "out"), "--community", "Seed")

    assert code == 0, printed
    page = tmp_path / "out" / "health-2026-W47.html"
    data = json.loads((tmp_path / "out" / "health-2026-W47.json").read_text())
    assert f"page: {page}" in printed and "1. 1 question unanswered for more than a day" in printed
    assert data["figures"]["active"]["all"]["mau"] == 6 and data["community"] == "Seed"
    assert "<svg" in page.read_text()
    stored = s3.get_object(Bucket=bucket, Key="reports/week/2026-W47.html")["Body"].read().decode()
    assert stored == page.read_text()
    assert cli("report", "--week", "2026-W99")[0] == 2


def test_the_scheduled_run_stores_the_weeks_and_the_months_pages(local_stack):
    # moto's Athena answers every query at once and with no rows: this is the function's wiring (its environment,
    # the workgroup, the bucket), not the figures, which DuckDB checks against the same SQL.
    answer = local_stack.invoke(
        "HealthReportFunction",
        {"id": "run-1", "time": "2026-12-07T07:00:00Z", "detail-type": "Scheduled Event", "detail": {}},
    )
    assert [report["period"] for report in answer["reports"]] == ["2026-W49", "2026-11"]
    s3, bucket = local_stack.client("s3"), local_stack.bucket_name("ActivityBucket")
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="reports/")["Contents"]}
    assert keys == {
        "reports/week/2026-W49.html",
        "reports/week/2026-W49.json",
        "reports/month/2026-11.html",
        "reports/month/2026-11.json",
    }
    assert "announced" not in answer["reports"][0]  # no Slack channel configured locally


def test_a_persons_data_on_request_includes_their_activity_records(local_stack):
    from memberflow.runtime.personal_data import export_person

    email, other = "katherine.johnson@example.org", "dorothy.vaughan@example.org"
    join, other_join = joined(email, consent=True, user_id="k-1"), joined(other, consent=True, user_id="d-1")
    run_onboarding(local_stack, join, other_join, active(join.event.identity, "post"))

    exported = export_person(email, local_stack.physical_id, None)
    assert sorted(record["kind"] for record in exported["activity"]) == sorted(
        ["joined", "mailchimp_added", "welcomed", "post", "activated"]
    )
    assert len({record["member"] for record in exported["activity"]}) == 1
    assert len(export_person(other, local_stack.physical_id, None)["activity"]) == 3  # joined, added, welcomed
