"""Welcoming a member who receives marketing: the welcome journey, once, and the start of the drip. Used when a
member joins subscribed, and when a member on double opt-in confirms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from memberflow.adapters.mailchimp import MailchimpClient
from memberflow.adapters.member_store import MemberStore
from memberflow.privacy import mask_email
from memberflow.retry import TransientFailure
from memberflow.trace import Outcome, Step, StepRecorder

logger = Logger()

JOURNEY_CLAIM_LEASE = timedelta(minutes=2)
"""Longer than the onboarding function's timeout: a claim left by a crashed invocation expires before its retry."""
CONFIRM_ATTEMPTS = 3


@dataclass(frozen=True)
class WelcomeJourney:
    journey_id: str
    step_id: str


def start_welcome_journey(
    member_id: str,
    email: str,
    journey: WelcomeJourney,
    mailchimp: MailchimpClient,
    members: MemberStore,
    step: StepRecorder,
    now: datetime,
) -> str:
    """Trigger the welcome journey unless it was started for this member before (any platform, any delivery)."""
    if not members.claim_journey(member_id, now, JOURNEY_CLAIM_LEASE):
        current = members.get(member_id)
        if current is None or current.journey_started_at is None:
            # Another invocation holds the claim right now: try again once its lease has run out.
            raise TransientFailure("the welcome journey is being started by another invocation")
        step(Step.JOURNEY_STARTED, Outcome.SKIPPED, "welcome journey already started for this member")
        return "already_started"
    try:
        mailchimp.trigger_journey(journey.journey_id, journey.step_id, email)
    except Exception:
        # After a timeout Mailchimp may have started it anyway; its journeys let a contact in only once.
        members.release_journey_claim(member_id)
        raise
    _confirm(members, member_id, now)
    step(Step.JOURNEY_STARTED, Outcome.OK, f"welcome journey {journey.journey_id} started")
    logger.info("welcome journey started", extra={"member": mask_email(email)})
    return "started"


def enter_drip(members: MemberStore, member_id: str, step_days: tuple[int, ...], now: datetime) -> None:
    """Steps are due the configured days after the member enters the drip (now), not after an old join date."""
    if step_days:
        members.enter_drip(member_id, now, now + timedelta(days=step_days[0]))


def _confirm(members: MemberStore, member_id: str, now: datetime) -> None:
    # The journey is started: losing this write would let the claim lapse and the journey start again.
    for attempt in range(1, CONFIRM_ATTEMPTS + 1):
        try:
            members.confirm_journey_started(member_id, now)
            return
        except Exception:
            if attempt == CONFIRM_ATTEMPTS:
                logger.exception("welcome journey started but not recorded", extra={"member_id": member_id})
                raise
