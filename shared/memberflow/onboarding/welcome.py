"""Welcoming a member who receives marketing: the welcome journey, once, and the start of the drip. Used when a
member joins subscribed, and when a member on double opt-in confirms."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from memberflow.errors import Transient
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


def start_welcome_journey(
    member_id: str,
    email: str,
    journey: WelcomeJourney,
    mailing_list: MailingList,
    members: MemberRepository,
    step: StepRecorder,
    now: datetime,
) -> str:
    """Trigger the welcome journey unless it was started for this member before (any platform, any delivery)."""
    if not members.claim_journey(member_id, now, JOURNEY_CLAIM_LEASE):
        current = members.get(member_id)
        if current is None or current.journey_started_at is None:
            # Another invocation holds the claim right now: try again once its lease has run out.
            raise Transient("the welcome journey is being started by another invocation")
        step(Step.JOURNEY_STARTED, Outcome.SKIPPED, "welcome journey already started for this member")
        return "already_started"
    try:
        mailing_list.trigger_journey(journey.journey_id, journey.step_id, email)
    except Exception:
        # After a timeout Mailchimp may have started it anyway; its journeys let a contact in only once.
        members.release_journey_claim(member_id)
        raise
    _confirm(members, member_id, now)
    step(Step.JOURNEY_STARTED, Outcome.OK, f"welcome journey {journey.journey_id} started")
    logger.info("welcome journey started", extra={"member_id": member_id})
    return "started"


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
