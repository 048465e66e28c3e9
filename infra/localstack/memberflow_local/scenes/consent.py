"""Consent you can prove, checked on the demo's own community: every member the sandbox Mailchimp shows as
subscribed (read back through the official client) has `timestamp_opt` and a ledger entry explaining it, every other
member's ledger says why; a member who unsubscribes in Mailchimp (the sandbox sends its webhook) gets no further drip
step, with no poll in between; `memberflow export` of a demo member returns their record, identities, ledger and
trace."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import requests

from memberflow import signatures
from memberflow.adapters.consent_ledger import DynamoConsentLedger
from memberflow.adapters.member_profiles import DynamoMemberRepository
from memberflow.adapters.suppressions import DynamoSuppressionList
from memberflow.ledger import CONSENTING, mailchimp_time
from memberflow.privacy import email_key
from memberflow.runtime.personal_data import export_person

if TYPE_CHECKING:
    from memberflow_local.scenes import SceneContext

LEAVER = "leaves.after.welcome@example.org"


def play(scene: SceneContext) -> None:
    import mailchimp_marketing

    stack, settings = scene.stack, scene.settings
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": settings.mailchimp_api_key})
    client.api_client.host = stack.mailchimp.url
    list_id = settings.mailchimp_list_id
    ledger = DynamoConsentLedger(stack.table_name("MembersTable"))

    audit(scene)

    # A new member joins with consent, is welcomed, then unsubscribes from the first email in Mailchimp.
    _join(scene, LEAVER)
    scene.drain()
    member = client.lists.get_list_member(list_id, LEAVER)
    scene.check(
        member["timestamp_opt"] == mailchimp_time(ledger.entries(email_key(LEAVER))[0].at),
        f"{LEAVER}: timestamp_opt in Mailchimp is the consent the ledger recorded",
    )
    answer = requests.post(
        f"{stack.mailchimp.base_url}/_sandbox/unsubscribe", json={"list_id": list_id, "email": LEAVER}, timeout=30
    )
    scene.say(f"{LEAVER} clicks unsubscribe in Mailchimp ({answer.status_code}); Mailchimp's webhook follows")
    scene.drain()
    record = DynamoMemberRepository(stack.table_name("MembersTable")).get(email_key(LEAVER))
    scene.check(
        record is not None and record.opted_out_before and record.mailchimp_status == "unsubscribed",
        f"{LEAVER}: opted out on the member record at once (the drip and win-back read it)",
    )
    changes = [entry.change.value for entry in ledger.entries(email_key(LEAVER))]
    scene.check(changes == ["given", "withdrawn"], f"{LEAVER}: the ledger says given, then withdrawn ({changes})")
    report = stack.fire_schedule("DripSchedule", scene.started_at + timedelta(days=2))
    tags = [t["name"] for t in client.lists.get_list_member(list_id, LEAVER)["tags"]]
    scene.check(
        not any(tag.startswith("onboarding-day-") for tag in tags),
        f"{LEAVER}: no drip step after unsubscribing (the next run sent {report.get('sent', 0)} to others)",
    )
    scene.say(f"the next drip run sent {report.get('sent', 0)} step(s), none to {LEAVER}")

    # A person asks for their data.
    secret = stack.client("secretsmanager").get_secret_value(SecretId=stack.secret_arn("SuppressionKeySecret"))
    key = str(json.loads(secret["SecretString"])["suppression_key"]).encode()
    suppressions = DynamoSuppressionList(stack.table_name("MembersTable"), lambda: key)
    exported = export_person(LEAVER, stack.physical_id, suppressions)
    parts = {name: bool(exported.get(name)) for name in ("record", "identities", "ledger", "trace")}
    scene.check(all(parts.values()), f"memberflow export {LEAVER}: record, identities, ledger and trace ({parts})")
    scene.say(
        f"memberflow export {LEAVER}: {len(exported['ledger'])} ledger entries, {len(exported['trace'])} trace "
        f"records, {len(exported['identities'])} identity link(s)"
    )


def _join(scene: SceneContext, email: str) -> None:
    body = json.dumps(
        {
            "event_id": "demo-consent-leaver",
            "type": "member_joined",
            "occurred_at": scene.started_at.isoformat(),
            "workspace": "meetup-amsterdam",
            "member": {"id": "leaver-1", "email": email, "name": "Lee Ver", "marketing_consent": True},
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    headers.update(signatures.sign_generic(scene.settings.generic_hmac_secret, body, int(time.time())))
    answer = requests.post(f"{scene.api}/webhooks/generic", data=body, headers=headers, timeout=30)
    scene.say(f"{email} joins with consent ({answer.status_code} {answer.json().get('status')})")


def audit(scene: SceneContext) -> tuple[int, int]:
    """Every contact of the sandbox audience (read through the official client, page by page) against the consent
    ledger (one scan of the members table): a subscribed contact has `timestamp_opt` and a consenting entry with the
    latest status subscribed; any other contact's latest entry has its status and says why. One check per kind of
    failure, naming a few contacts, so the demo's verdict stays readable with thousands of contacts."""
    import mailchimp_marketing
    from boto3.dynamodb.types import TypeDeserializer

    from memberflow.adapters.consent_ledger import SORT_PREFIX, entry_from_item

    stack, settings = scene.stack, scene.settings
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": settings.mailchimp_api_key})
    client.api_client.host = stack.mailchimp.url
    list_id = settings.mailchimp_list_id
    contacts: list[dict] = []
    while True:
        page = client.lists.get_list_members_info(list_id, count=1000, offset=len(contacts))
        contacts.extend(page["members"])
        if len(contacts) >= page["total_items"] or not page["members"]:
            break
    deserialize = TypeDeserializer().deserialize
    ledgers: dict[str, list] = {}
    scan = stack.client("dynamodb").get_paginator("scan")
    ledger_items = {
        "FilterExpression": "begins_with(sk, :ledger)",  # the rest of the table need not cross the wire
        "ExpressionAttributeValues": {":ledger": {"S": SORT_PREFIX}},
    }
    for page in scan.paginate(TableName=stack.table_name("MembersTable"), **ledger_items):
        for raw in page["Items"]:
            entry = entry_from_item({key: deserialize(value) for key, value in raw.items()})
            ledgers.setdefault(entry.member_id, []).append(entry)
    unexplained: list[str] = []
    for contact in contacts:
        entries = sorted(ledgers.get(email_key(contact["email_address"]), []), key=lambda entry: entry.at)
        latest = entries[-1] if entries else None
        if contact["status"] == "subscribed":
            ok = (
                bool(contact["timestamp_opt"])
                and any(e.change in CONSENTING and e.status == "subscribed" for e in entries)
                and latest is not None
                and latest.status == "subscribed"
            )
        else:
            ok = latest is not None and latest.status == contact["status"] and bool(latest.detail)
        if not ok:
            unexplained.append(f"{contact['email_address']} ({contact['status']})")
    scene.check(
        not unexplained,
        f"all {len(contacts)} Mailchimp contacts explained by their consent ledger"
        + (f"; not: {', '.join(unexplained[:5])}" + (" ..." if len(unexplained) > 5 else "") if unexplained else ""),
    )
    scene.say(
        f"{len(contacts) - len(unexplained)} Mailchimp contacts explained by their consent ledger, "
        f"{len(unexplained)} not"
    )
    return len(contacts) - len(unexplained), len(unexplained)
