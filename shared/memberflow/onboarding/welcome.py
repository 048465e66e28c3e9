"""Welcoming a member who receives marketing: the welcome journey, once, and the start of the drip. Used when a
member joins subscribed, and when a member on double opt-in confirms."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from memberflow.errors import NotFound, ResourceGone, Transient
from memberflow.onboarding.rules import WelcomeJourney
from memberflow.ports import DueWorkIndex, MailingList, MemberRepository
from memberflow.trace import Outcome, Step, StepRecorder

logger = logging.getLogger(__name__)

DRIP = "drip"
"""The drip's due-work queue."""
JOURNEY_CLAIM_LEASE = timedelta(minutes=2)
"""Longer than the journey call can take (one Mailchimp call, 12 s at worst) and shorter than the queue's visibility
timeout: a claim left by a crashed invocation expires before its retry."""
CONFIRM_ATTEMPTS = 3
ARCHIVED = "archived"
"""A member's status in Mailchimp once an admin archived them: no longer in the audience."""


def start_welcome_journey(
    member_id: str,
    email: str,
    journey: WelcomeJourney,
    mailing_list: MailingList,
    members: MemberRepository,
    step: StepRecorder,
    now: datetime,
    *,
    list_id: str,
) -> str:
    """Trigger the welcome journey unless it was started for this member before (any platform, any delivery).
    `list_id`: the journey's audience, read only to tell whose a 404 is (`ResourceGone` when the member's)."""
    if not members.claim_journey(member_id, now, JOURNEY_CLAIM_LEASE):
        current = members.get(member_id)
        if current is None or current.journey_started_at is None:
            # Another invocation holds the claim right now: try again once its lease has run out.
            raise Transient("the welcome journey is being started by another invocation")
        step(Step.JOURNEY_STARTED, Outcome.SKIPPED, "welcome journey already started for this member")
        return "already_started"
    try:
        try:
            mailing_list.trigger_journey(journey.journey_id, journey.step_id, email)
        except NotFound as missing:
            if _left_the_audience(mailing_list, list_id, email):
                raise ResourceGone(
                    "Member Not In Audience", "not in the journey's audience (archived or deleted since)", 404
                ) from missing
            raise
    except Exception:
        # After a timeout Mailchimp may have started it anyway; its journeys let a contact in only once.
        members.release_journey_claim(member_id)
        raise
    _confirm(members, member_id, now)
    step(Step.JOURNEY_STARTED, Outcome.OK, f"welcome journey {journey.journey_id} started")
    logger.info("welcome journey started", extra={"member_id": member_id})
    return "started"


def _left_the_audience(mailing_list: MailingList, list_id: str, email: str) -> bool:
    """Mailchimp answers a journey trigger with the same 404 when the journey or its step does not exist (the
    configuration's fault: every member would fail, so it stays an account problem) and when the contact is not in
    the journey's audience (archived or deleted by an admin since the upsert: this member's alone). The member's own
    record tells them apart: absent or archived, the member is the one missing; still there, the journey is. A
    missing audience raises `NotFound` here too. (Both missing at once is taken for the member's: the next member
    welcomed reveals the journey.)"""
    return mailing_list.member_status(list_id, email) in (None, ARCHIVED)


def enter_drip(due_work: DueWorkIndex, member_id: str, step_days: tuple[int, ...], now: datetime) -> None:
    """Steps are due the configured days after the member enters the drip (now), not after an old join date.
    A member who is active, or in (or past) the drip, is not entered again."""
    if step_days:
        due_work.schedule(DRIP, member_id, now + timedelta(days=step_days[0]), {"drip_started_at": now.isoformat()})


def _confirm(members: MemberRepository, member_id: str, now: datetime) -> None:
    # The journey is started: losing this write would let the claim lapse and the journey start again.
    for attempt in range(1, CONFIRM_ATTEMPTS + 1):
        try:
            members.confirm_journey_started(member_id, now)
            return
        except Exception:
            if attempt == CONFIRM_ATTEMPTS:
                logger.exception("welcome journey started but not recorded", extra={"member_id": member_id})
                raise
