"""The onboarding consumer's wiring for waves of joins: its Mailchimp calls go through `BurstMailingList`, which
sends each batch's fresh joins in bulk before the events are handled one by one."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING

from memberflow.config import JourneyTriggerSettings, load_settings
from memberflow.runtime.container import container

if TYPE_CHECKING:
    from memberflow.onboarding.bursts import BurstMailingList
    from memberflow.onboarding.join import OnboardingDeps
    from memberflow.pipeline.envelope import QueuedEvent

logger = logging.getLogger(__name__)


_building = threading.Lock()
"""One instance for the process even when the local stack's containers (threads) build it at once."""


def burst_list() -> BurstMailingList:
    with _building:
        return _burst_list()


@cache
def _burst_list() -> BurstMailingList:
    from memberflow.onboarding.bursts import BurstMailingList

    onboarding = container().onboarding
    return BurstMailingList(
        container().mailing_list,
        onboarding.rules.list_id,
        journey_tag=load_settings(JourneyTriggerSettings).journey_tag,
    )


def onboarding_deps() -> OnboardingDeps:
    """Onboarding's dependencies, its Mailchimp calls answered from the batch's bulk calls where they settled them."""
    with _building:
        return _onboarding_deps()


@cache
def _onboarding_deps() -> OnboardingDeps:
    return replace(container().onboarding, mailing_list=_burst_list())


def prepare_batch(batch: list[QueuedEvent]) -> None:
    """Send the batch's fresh joins to Mailchimp in bulk (messages that could not be read are left to the worker)."""
    report = burst_list().prepare(batch, onboarding_deps())
    if report.joins:
        logger.info(
            "joins sent in bulk",
            extra={
                "bulk_joins": report.joins,
                "bulk_created": report.created,
                "bulk_refused": report.refused,
                "bulk_left_to_single_calls": report.left_to_single_calls,
                "bulk_tag_calls": report.tag_calls,
                "bulk_welcomed_by_tag": report.welcomed_by_tag,
                "bulk_failed": report.failed,
            },
        )


PREPARE_CALLS = 4
"""The most Mailchimp bulk calls `prepare` makes: the batch subscribe, a platform, a cohort and a welcome tag (a
batch spanning a month boundary or several platforms makes a few more; each is bounded by the bulk timeout)."""


def prepare_worst_case_ms() -> int:
    """Time an invocation must have, besides its first event's, to send the batch in bulk first."""
    from memberflow.adapters.aws import WORST_CASE_CALL_SECONDS

    return int((PREPARE_CALLS * container().mailing_list.worst_case_bulk_call_seconds + WORST_CASE_CALL_SECONDS) * 1000)


def reset() -> None:
    _burst_list.cache_clear()
    _onboarding_deps.cache_clear()
