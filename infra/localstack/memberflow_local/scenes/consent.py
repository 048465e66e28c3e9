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

    audience = client.lists.get_list_members_info(list_id, count=1000)["members"]
    explained = unexplained = 0
    for contact in audience:
        entries = ledger.entries(email_key(contact["email_address"]))
        latest = entries[-1] if entries else None
        if contact["status"] == "subscribed":
            basis = next((e for e in reversed(entries) if e.change in CONSENTING and e.status == "subscribed"), None)
            ok = (
                bool(contact["timestamp_opt"])
                and basis is not None
                and latest is not None
                and latest.status == "subscribed"
            )
            scene.check(ok, f"{contact['email_address']} subscribed: timestamp_opt set and explained by the ledger")
        else:
            ok = latest is not None and latest.status == contact["status"] and bool(latest.detail)
            scene.check(ok, f"{contact['email_address']} {contact['status']}: the ledger says why")
        explained += ok
        unexplained += not ok
    scene.say(f"{explained} Mailchimp contacts explained by their consent ledger, {unexplained} not")

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
