"""Demo scene: a webinar sold on Eventbrite and held on Zoom. 120 people register (Zoom mirrors a third of them),
10 of Eventbrite's webhooks are lost, one order is refunded, 60% check in (half of them also join on Zoom), the
webinar ends, and the reconciliation run repairs what the webhooks missed and tags the no-shows. Then Mailchimp,
read back with the official client, and the registrations table must agree exactly with Eventbrite's attendee
list."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import SceneContext

REGISTRATIONS = 120
DROPPED_ORDERS = 7
DROPPED_CHECK_INS = 3
CHECK_IN_SHARE = 0.6
ZOOM_MIRRORED_EVERY = 3
WORKERS = 4


def play(scene: SceneContext) -> None:
    from memberflow_local.event_services import SYNCED_EVENT

    eventbrite = scene.stack.services["eventbrite"].sandbox
    zoom = scene.stack.services["zoom"].sender
    event_id, zoom_id, slug = SYNCED_EVENT["eventbrite_event_id"], SYNCED_EVENT["zoom_id"], SYNCED_EVENT["slug"]
    people = [(f"webinar.guest{i:03d}@example.org", "Guest", f"{i:03d}") for i in range(REGISTRATIONS)]
    # Lost order webhooks of people who neither check in (the first 60% do) nor are mirrored on Zoom (a later webhook
    # about them would heal the registration before the run does).
    first_late = round(REGISTRATIONS * CHECK_IN_SHARE) + 2
    late = [i for i in range(first_late, REGISTRATIONS, 5) if i % ZOOM_MIRRORED_EVERY]
    dropped = set(late[:DROPPED_ORDERS])
    scene.say(
        f"{REGISTRATIONS} people register on Eventbrite (Zoom mirrors every {ZOOM_MIRRORED_EVERY}rd);"
        f" {len(dropped)} order webhooks are lost on the way"
    )
    zoom.validate_endpoint()

    def order(i: int) -> dict[str, Any]:
        email, first, last = people[i]
        placed = eventbrite.place_order(
            event_id, [{"email": email, "first_name": first, "last_name": last}], drop_webhook=i in dropped
        )
        if i % ZOOM_MIRRORED_EVERY == 0:  # Eventbrite's Zoom integration registers them on Zoom too
            zoom.registration_created(zoom_id, email, first, last)
        return placed

    orders = _run(scene, "registrations", order, range(REGISTRATIONS))
    scene.drain()

    refunded = orders[1]
    eventbrite.refund(refunded["order_id"])
    held = [i for i in range(REGISTRATIONS) if i != 1]
    checking_in = held[: round(len(held) * CHECK_IN_SHARE)]
    lost_check_ins = set(checking_in[-DROPPED_CHECK_INS:])
    scene.say(
        f"one order is refunded; {len(checking_in)} check in ({len(lost_check_ins)} check-in webhooks are lost),"
        " half of them also join on Zoom"
    )

    def check_in(i: int) -> None:
        email, first, last = people[i]
        eventbrite.check_in(orders[i]["attendee_ids"][0], drop_webhook=i in lost_check_ins)
        if i % 2 == 0 and i not in lost_check_ins:
            zoom.participant_joined(zoom_id, email, f"{first} {last}")

    _run(scene, "check-ins", check_in, checking_in)
    scene.drain()

    eventbrite.end_event(event_id)
    scene.say("the webinar ends; the reconciliation run compares Mailchimp and the table with Eventbrite")
    result = scene.stack.fire_schedule("EventReconcileFunction")
    [synced] = [e for e in result["events"] if e["report"]["event_slug"] == slug]
    report, figures = synced["report"], synced["figures"]
    scene.say(
        f"reconciliation repaired {report['created']} missing registrations and {report['changed']} statuses"
        f" ({report['no_shows']} no-shows tagged; {report['contacts_added']} contacts added,"
        f" {report['tags_added']} tags added, {report['tags_removed']} removed)"
    )
    scene.say(
        f"figures: {figures['registrations']} registrations, {figures['cancellations']} cancellation,"
        f" {figures['attended']} attended ({figures['attendance_rate']:.0%} of places held),"
        f" {figures['no_shows']} no-shows, {figures['first_time']} first-time, {figures['returning']} returning"
    )

    expected = _expected(eventbrite.attendees_of(event_id), slug)
    table = _table(scene, slug)
    audience = _audience_tags(scene, slug, expected)
    scene.check(report["created"] == len(dropped), f"reconciliation found the {len(dropped)} lost registrations")
    scene.check(
        report["no_shows"] == len(held) - len(checking_in),
        "no-shows are exactly registered minus attended",
    )
    scene.check(
        table == {email: status for email, (status, _) in expected.items()},
        "the registrations table agrees exactly with Eventbrite's attendee list",
    )
    scene.check(
        audience == {email: tags for email, (_, tags) in expected.items()},
        "Mailchimp's event tags (official client) agree exactly with Eventbrite's attendee list",
    )


def _run(scene: SceneContext, label: str, work: Any, items: Any) -> list[Any]:
    items = list(items)
    bar = scene.story.progress(label, len(items))
    results: list[Any] = [None] * len(items)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {pool.submit(work, item): n for n, item in enumerate(items)}
        for done, future in enumerate(futures, 1):
            results[futures[future]] = future.result()
            bar.update(done)
    bar.finish()
    return results


def _expected(attendees: list[dict[str, Any]], slug: str) -> dict[str, tuple[str, frozenset[str]]]:
    """What Eventbrite's list says each person's registration is after the event, and the tags it carries."""
    expected = {}
    for attendee in attendees:
        email = attendee["profile"]["email"]
        if attendee["cancelled"] or attendee["refunded"]:
            expected[email] = ("cancelled", frozenset())
        elif attendee["checked_in"]:
            expected[email] = ("attended", frozenset({f"event:{slug}:registered", f"event:{slug}:attended"}))
        else:
            expected[email] = ("no_show", frozenset({f"event:{slug}:registered", f"event:{slug}:no_show"}))
    return expected


def _table(scene: SceneContext, slug: str) -> dict[str, str]:
    ddb = scene.stack.client("dynamodb")
    found: dict[str, str] = {}
    request: dict[str, Any] = {
        "TableName": scene.stack.table_name("RegistrationsTable"),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"EVENT#{slug}"}},
        "ConsistentRead": True,
    }
    while True:
        page = ddb.query(**request)
        found.update({item["email"]["S"]: item["status"]["S"] for item in page["Items"]})
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _audience_tags(
    scene: SceneContext, slug: str, expected: dict[str, tuple[str, frozenset[str]]]
) -> dict[str, frozenset[str]]:
    """Each attendee's event tags as the official Mailchimp client reads them (none for an address not in the
    audience: a place cancelled before it was synced)."""
    import mailchimp_marketing
    from mailchimp_marketing.api_client import ApiClientError

    client = mailchimp_marketing.Client()
    client.set_config({"api_key": scene.settings.mailchimp_api_key})
    client.api_client.host = scene.stack.mailchimp.url
    prefix = f"event:{slug}:"
    tags: dict[str, frozenset[str]] = {}
    for email in expected:
        digest = hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's subscriber hash
        try:
            answer = client.lists.get_list_member_tags(scene.settings.mailchimp_list_id, digest, count=100)
        except ApiClientError as error:
            if error.status_code != 404:
                raise
            tags[email] = frozenset()
            continue
        tags[email] = frozenset(t["name"] for t in answer["tags"] if t["name"].startswith(prefix))
    return tags
