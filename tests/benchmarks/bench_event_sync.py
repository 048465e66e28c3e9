"""Reconciling a 5,000-attendee event: Mailchimp calls per 500 attendees, measured through memberflow's own
Mailchimp adapter against the sandbox Mailchimp (the adapter counts every call it makes).

Two runs of the same event, each on a fresh audience:
- `reconcile_mailchimp_calls_ratio`: the event has ended; webhooks synced the registrations and check-ins as they
  came, except 10 dropped registrations, 1 dropped refund and 30 dropped check-ins. Reconciliation repairs those
  and tags the no-shows. calls / ceil(n / 500), n = 5,000.
- `reconcile_mailchimp_calls_ratio_cold`: every webhook was lost before the event (nothing synced): each 500
  attendees need a batch subscribe and a bulk tag (Mailchimp's batch subscribe takes no tags), so about 2.
"""

from __future__ import annotations

import math
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the support package

from results import record  # noqa: E402

from memberflow.adapters.mailchimp import MailchimpList  # noqa: E402
from memberflow.config import SyncedEvent  # noqa: E402
from memberflow.registrations.reconcile import reconcile_all  # noqa: E402
from memberflow.registrations.sync import SyncDeps  # noqa: E402
from memberflow_sandboxes.mailchimp import MailchimpSandbox  # noqa: E402
from support.fakes import MemoryMembers, MemorySuppressions, MemoryTrace  # noqa: E402
from support.registrations import FakeEventbrite, MemoryRegistrations  # noqa: E402

ATTENDEES = 5000
API_KEY = "bench-key-us1"
LIST_ID = "list123"
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
EVENT = SyncedEvent(slug="bench-webinar", eventbrite_event_id="4242")


def world(sandbox: MailchimpSandbox, *, ended: bool) -> tuple[SyncDeps, FakeEventbrite, MailchimpList]:
    eventbrite = FakeEventbrite()
    eventbrite.add_event("4242", ends_in=-timedelta(hours=2) if ended else timedelta(days=2), now=NOW)
    for i in range(ATTENDEES):
        eventbrite.register("4242", f"attendee{i}@example.org", attendee_id=str(100000 + i))
    mailchimp = MailchimpList(lambda fresh: API_KEY, sandbox.url)
    deps = SyncDeps(
        eventbrite=eventbrite,
        mailing_list=mailchimp,
        bulk=mailchimp,
        members=MemoryMembers(),
        suppressions=MemorySuppressions(),
        registrations=MemoryRegistrations(),
        trace=MemoryTrace(),
        list_id=LIST_ID,
        events=[EVENT],
        clock=lambda: NOW - timedelta(days=1),  # while registrations come in
    )
    return deps, eventbrite, mailchimp


def after_the_event(sandbox: MailchimpSandbox) -> dict[str, float]:
    deps, eventbrite, mailchimp = world(sandbox, ended=True)
    # What the webhooks synced (in bulk here, to seed quickly): everyone but the 10 dropped registrations.
    dropped = {str(100000 + i) for i in range(0, ATTENDEES, ATTENDEES // 10)}
    synced_ids = [aid for aid in eventbrite.people if aid not in dropped]
    kept = {aid: eventbrite.people.pop(aid) for aid in list(dropped)}
    reconcile_all(deps, recent_days=7, correlation_id="webhooks")  # before the end: registered + tags
    attended = synced_ids[: int(len(synced_ids) * 0.6)]
    for aid in attended[30:]:  # check-ins the webhooks delivered
        eventbrite.check_in(aid)
    reconcile_all(deps, recent_days=7, correlation_id="webhooks")
    eventbrite.people.update(kept)  # the registrations whose webhooks were dropped
    for aid in attended[:30]:  # check-ins whose webhooks were dropped
        eventbrite.check_in(aid)
    eventbrite.refund(synced_ids[-1])  # a refund whose webhook was dropped

    deps.clock = lambda: NOW  # the event has ended
    mailchimp.calls.clear()
    began = time.perf_counter()
    [report] = reconcile_all(deps, recent_days=7, correlation_id="reconcile")
    elapsed = time.perf_counter() - began
    calls = sum(mailchimp.calls.values())
    print(f"after the event: {calls} Mailchimp calls {dict(mailchimp.calls)}; repaired {report}")
    return {
        "reconcile_mailchimp_calls": calls,
        "reconcile_mailchimp_calls_ratio": round(calls / math.ceil(ATTENDEES / 500), 3),
        "reconcile_seconds": round(elapsed, 2),
        "reconcile_repaired": report.created + report.changed,
        "reconcile_no_shows": report.no_shows,
    }


def cold(sandbox: MailchimpSandbox) -> dict[str, float]:
    deps, _, mailchimp = world(sandbox, ended=False)
    [report] = reconcile_all(deps, recent_days=7, correlation_id="reconcile")
    calls = sum(mailchimp.calls.values())
    print(f"nothing synced before: {calls} Mailchimp calls {dict(mailchimp.calls)}; created {report.created}")
    return {"reconcile_mailchimp_calls_ratio_cold": round(calls / math.ceil(ATTENDEES / 500), 3)}


def main() -> int:
    figures: dict[str, float] = {"reconcile_attendees": ATTENDEES}
    with MailchimpSandbox(api_key=API_KEY) as sandbox:
        figures.update(after_the_event(sandbox))
        sandbox.reset()
        figures.update(cold(sandbox))
    print(figures)
    record(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
