"""Win-back at scale: a 100,000-member table in moto, 5% of the members crossing the 30-day threshold today, the
day's run against the sandbox Mailchimp over HTTP.

Figures (bench-results.json, via results.record):
- `winback_items_read_ratio`: DynamoDB items the run read (the inactivity index queries' ScannedCount, the
  checkpoint, any record look-up) / members selected (contacted + held out). Target <= 1.2.
- `winback_mailchimp_calls_ratio`: the run's bulk tag calls / ceil(contacted / 500). Target <= 1.05. The
  per-run constant is counted apart: `winback_mailchimp_lookup_calls` (finding, or creating, each tag's static
  segment), and `winback_mailchimp_calls_total` is every call the run made.
- `winback_run_s`: the run's wall time (selection, records, tags; moto in process, Mailchimp over HTTP).
- `winback_results_s`, `winback_results_items_read`: writing the results file afterwards, a step of its own whose
  reads grow with the campaign's records, not with the community.

The campaign is the shipped file's tiers without variants (one tag per tier): with A/B variants each tag's last,
partial chunk adds at most one call per variant, the same per-run constant.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import record  # noqa: E402

MEMBERS = 100_000
CROSSING_SHARE = 0.05
TODAY = date(2026, 11, 30)
LIST_ID = "list123"
API_KEY = "sandbox-key-us1"


def main() -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from moto import mock_aws

    from memberflow.adapters import aws
    from memberflow.adapters.mailchimp import MailchimpList
    from memberflow.adapters.winback_store import DynamoWinbackStore, S3ResultsStore
    from memberflow.winback.campaign import parse_campaigns
    from memberflow.winback.ports import RunState
    from memberflow.winback.run import WinbackDeps, run_campaign, write_results
    from memberflow_local.scenes.winback import community, seed
    from memberflow_local.template import load_yaml
    from memberflow_sandboxes.mailchimp import MailchimpSandbox

    shipped = json.loads((ROOT / "functions" / "winback" / "campaigns.json").read_text())
    shipped["campaigns"][0]["variants"] = []
    campaign = parse_campaigns(json.dumps(shipped)).get("winback")

    with mock_aws(), MailchimpSandbox(api_key=API_KEY, lists=(LIST_ID,)) as sandbox:
        aws.client.cache_clear()
        aws.table.cache_clear()
        ddb = boto3.client("dynamodb")
        props = load_yaml(ROOT / "template.yaml")["Resources"]["MembersTable"]["Properties"]
        ddb.create_table(
            TableName="members",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        )
        boto3.client("s3").create_bucket(Bucket="winback-results")
        members = community(MEMBERS, TODAY, crossing_share=CROSSING_SHARE)
        started = time.perf_counter()
        seed(ddb, "members", members)
        for member in members:
            sandbox.state.seed_member(LIST_ID, member.email, "subscribed")
        print(f"seeded {MEMBERS:,} members in {time.perf_counter() - started:.1f} s", flush=True)

        store = DynamoWinbackStore("members")
        # Yesterday's run completed: today's covers today, as every daily run in steady state does.
        store.save_state(campaign.id, RunState(done_through=TODAY - timedelta(days=1)))
        mailchimp = MailchimpList(lambda fresh: API_KEY, sandbox.url)
        deps = WinbackDeps(store, mailchimp, S3ResultsStore("winback-results"), LIST_ID)
        store.items_read = 0
        started = time.perf_counter()
        report = run_campaign(campaign, TODAY, deps)
        run_s = time.perf_counter() - started
        assert report.completed, report
        run_items = store.items_read
        calls = dict(mailchimp.calls)

        started = time.perf_counter()
        store.items_read = 0
        write_results(campaign, TODAY, store, deps.results)
        results_s = time.perf_counter() - started
        results_items = store.items_read

    selected = report.contacted + report.held_out
    tag_calls = calls.get("POST /lists/{list_id}/segments/{segment_id}", 0)
    total_calls = sum(calls.values())
    ideal = math.ceil(report.contacted / 500)
    figures = {
        "winback_members": MEMBERS,
        "winback_selected": selected,
        "winback_contacted": report.contacted,
        "winback_held_out": report.held_out,
        "winback_items_read": run_items,
        "winback_items_read_ratio": round(run_items / selected, 4),
        "winback_mailchimp_calls_ratio": round(tag_calls / ideal, 4),
        "winback_mailchimp_tag_calls": tag_calls,
        "winback_mailchimp_lookup_calls": total_calls - tag_calls,
        "winback_mailchimp_calls_total": total_calls,
        "winback_mailchimp_calls_by_endpoint": calls,
        "winback_run_s": round(run_s, 2),
        "winback_results_s": round(results_s, 2),
        "winback_results_items_read": results_items,
        "winback_measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    record(figures)
    print(json.dumps(figures, indent=2))
    assert figures["winback_items_read_ratio"] <= 1.2, "items read per selected member above target"
    assert figures["winback_mailchimp_calls_ratio"] <= 1.05, "Mailchimp calls above target"


if __name__ == "__main__":
    main()
