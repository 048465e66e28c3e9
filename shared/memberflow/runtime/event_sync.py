"""Lambda glue of the event sync: its dependencies, built on first use from the container's shared pieces (the
Mailchimp client, the member store, the suppression list, the trace); and its part of the onboarding erasure."""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

from memberflow.config import EventSyncSettings, RegistrationsConsumerSettings, load_settings
from memberflow.runtime.container import container

if TYPE_CHECKING:
    from memberflow.intake.service import EventRouter
    from memberflow.registrations.sync import SyncDeps


def consumer_settings() -> RegistrationsConsumerSettings:
    """The queue the consumer reads and parks in: its own variables, not onboarding's `QUEUE_URL`."""
    return load_settings(RegistrationsConsumerSettings)


@cache
def sync_deps() -> SyncDeps:
    from memberflow.adapters.registrations import DynamoRegistrationStore
    from memberflow.registrations.sync import SyncDeps

    settings = load_settings(EventSyncSettings)
    shared = container()
    return SyncDeps(
        eventbrite=shared.eventbrite,
        mailing_list=shared.mailing_list,
        bulk=shared.mailing_list,
        members=shared.members,
        suppressions=shared.suppressions,
        registrations=DynamoRegistrationStore(settings.registrations_table_name),
        trace=shared.trace,
        list_id=settings.mailchimp_list_id,
        events=settings.synced_events,
        organization_id=settings.eventbrite_organization_id,
        ledger=shared.consent_ledger,
        consent_rules=shared.consent_rules,
        activity=shared.activity_log,
    )


def worst_case_ms() -> int:
    from memberflow.adapters.aws import WORST_CASE_CALL_SECONDS
    from memberflow.registrations.consumer import worst_case_ms_per_event

    return worst_case_ms_per_event(container().mailing_list.worst_case_call_seconds, WORST_CASE_CALL_SECONDS)


def reset() -> None:
    sync_deps.cache_clear()


ERASURE_QUEUE_VARIABLE = "REGISTRATIONS_QUEUE_URL"


class RegistrationsErasure:
    """`ports.ErasureParticipant` for the onboarding erasure: hands the member ids the person's registrations are
    stored under on to the registrations queue (`registrations.erasure.erasure_events`), where event sync deletes
    them."""

    def __init__(self, router: EventRouter) -> None:
        self._router = router

    def forget(self, emails: list[str], identities: list[str], erasure_key: str, correlation_id: str) -> str:
        from memberflow.registrations.erasure import erasure_events

        events = erasure_events(emails, identities, erasure_key, correlation_id)
        for queued in events:
            self._router.send(queued)
        if not events:
            return "event registrations: none could be stored under what the erasure knows"
        return "event registrations: handed on to the event sync queue"


def erasure_participants() -> tuple[RegistrationsErasure, ...]:
    """Event sync's part of an erasure, when the function's stack has a registrations queue."""
    from memberflow.adapters.sqs import SqsEventRouter
    from memberflow.events import CATALOG, REGISTRATIONS

    queue_url = os.environ.get(ERASURE_QUEUE_VARIABLE, "")
    return (RegistrationsErasure(SqsEventRouter({REGISTRATIONS: queue_url}, CATALOG)),) if queue_url else ()
