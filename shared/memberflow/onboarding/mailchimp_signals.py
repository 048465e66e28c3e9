"""Mailchimp's own signals, as its audience webhooks deliver them, acted on at once instead of at the next poll.

- An unsubscribe or a clean stops every pending drip step and the opt-in wait, marks the member opted out on their
  record (the drip and win-back read it) and is written to the consent ledger.
- A subscribe of a member waiting for their double opt-in welcomes them now (the scheduled re-check stays as the
  safety net); a subscribe through a Mailchimp form of a member stored without permission is consent given there.
- An address change moves the member, with everything stored under them, to the new address.
- A profile update is noted in the trace.
"""

from __future__ import annotations

import logging
from typing import Any

from memberflow.events import (
    MailchimpAudienceEvent,
    MailchimpCleaned,
    MailchimpEmailChanged,
    MailchimpSubscribed,
    MailchimpUnsubscribed,
)
from memberflow.ledger import Change
from memberflow.onboarding import consent, consent_ledger
from memberflow.onboarding.consent_ledger import Basis
from memberflow.onboarding.drip import DripDeps
from memberflow.onboarding.forgotten import drop_if_erased_later, latest_erasure
from memberflow.onboarding.join import OPT_IN, OnboardingDeps
from memberflow.onboarding.opt_in import welcome_confirmed
from memberflow.onboarding.welcome import DRIP
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key, mask_email
from memberflow.trace import Outcome, Step, StepRecorder, email_subject

logger = logging.getLogger(__name__)
PLATFORM = "mailchimp"


def mailchimp_subscribed(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, Any]:
    event = queued.event
    assert isinstance(event, MailchimpSubscribed)
    checked = _check(queued, event, deps)
    if isinstance(checked, dict):
        return checked
    member, step = checked
    if member.mailchimp_status == consent.SUBSCRIBED:
        step(Step.SKIPPED, Outcome.SKIPPED, "Mailchimp says subscribed: already known")
        return {"result": "already_subscribed"}
    pending = member.mailchimp_status == consent.PENDING
    basis = Basis(PLATFORM, event.type, queued.idempotency_key, event.fired_at)
    if not pending:
        # Signed up (again) through a Mailchimp form: consent given there, in Mailchimp's wording.
        consent_ledger.record(
            deps.ledger,
            deps.members,
            member.member_id,
            Change.GIVEN,
            consent.SUBSCRIBED,
            basis,
            deps.consent_rules,
            "subscribed through Mailchimp (its signup form or confirmation)",
            always=True,
        )
    welcome_confirmed(member, basis, _drip_deps(deps), step, deps.clock(), record=pending)
    return {"result": "welcomed" if pending else "subscribed_in_mailchimp"}


def mailchimp_opted_out(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, Any]:
    """An unsubscribe or a clean: the drip and the opt-in wait stop now, the record says opted out, the ledger says
    why."""
    event = queued.event
    assert isinstance(event, MailchimpUnsubscribed | MailchimpCleaned)
    checked = _check(queued, event, deps)
    if isinstance(checked, dict):
        return checked
    member, step = checked
    deps.due_work.remove(DRIP, member.member_id)
    deps.due_work.remove(OPT_IN, member.member_id)
    if isinstance(event, MailchimpCleaned):
        status, why = "cleaned", f"cleaned by Mailchimp ({event.reason or 'no reason given'})"
    elif event.action == "delete":
        status, why = "archived", f"deleted from the audience in Mailchimp ({event.reason or 'no reason given'})"
    else:
        status, why = "unsubscribed", f"unsubscribed in Mailchimp ({event.reason or 'no reason given'})"
    consent_ledger.record(
        deps.ledger,
        deps.members,
        member.member_id,
        Change.WITHDRAWN,
        status,
        Basis(PLATFORM, event.type, queued.idempotency_key, event.fired_at),
        deps.consent_rules,
        why,
        opted_out=status in consent.OPTED_OUT,
        always=True,
    )
    step(Step.SKIPPED, Outcome.SKIPPED, f"{why}: drip and opt-in wait stopped, no further marketing steps")
    logger.info("member opted out in Mailchimp", extra={"status": status})
    return {"result": "opted_out", "status": status}


def mailchimp_profile_updated(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, Any]:
    event = queued.event
    assert isinstance(event, MailchimpAudienceEvent)
    checked = _check(queued, event, deps)
    if isinstance(checked, dict):
        return checked
    _, step = checked
    step(Step.SKIPPED, Outcome.SKIPPED, "profile updated in Mailchimp: noted (Mailchimp's profile is its own)")
    return {"result": "profile_noted"}


def mailchimp_email_changed(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, Any]:
    """The member changed their address in Mailchimp: their record, consent ledger and due work move to the new
    address, and their platform identities follow."""
    event = queued.event
    assert isinstance(event, MailchimpEmailChanged)
    checked = _check(queued, event, deps)
    if isinstance(checked, dict):
        moved = deps.members.get(email_key(event.new_email))
        return checked if moved is None else {"result": "already_moved"}
    member, step = checked
    new_id = email_key(event.new_email)
    if new_id == member.member_id:
        step(Step.SKIPPED, Outcome.SKIPPED, "address changed in Mailchimp only in its letter case: nothing to move")
        return {"result": "same_member"}
    if not deps.members.move(member.member_id, new_id, event.new_email):
        step(Step.SKIPPED, Outcome.SKIPPED, "address changed in Mailchimp, but the new address is a member already")
        return {"result": "new_address_taken"}
    detail = f"address changed in Mailchimp from {mask_email(event.email)}: member moved to the new address"
    step(Step.SKIPPED, Outcome.OK, detail)
    StepRecorder.for_event(deps.trace, queued, email_subject(event.new_email))(Step.SKIPPED, Outcome.OK, detail)
    return {"result": "moved"}


def _check(
    queued: QueuedEvent, event: MailchimpAudienceEvent, deps: OnboardingDeps
) -> tuple[Any, StepRecorder] | dict[str, Any]:
    """The member the webhook names and a step recorder; or the result when there is nothing to do."""
    if event.list_id != deps.rules.list_id:
        return {"result": "other_audience"}
    if drop_if_erased_later(queued, latest_erasure(deps.suppressions, event.email, None), deps.trace):
        return {"result": "dropped_after_erasure"}
    step = StepRecorder.for_event(deps.trace, queued)
    member = deps.members.get(email_key(event.email))
    if member is None or member.email is None:
        step(Step.SKIPPED, Outcome.SKIPPED, f"{event.type}: no member of ours has this address")
        return {"result": "unknown_member"}
    return member, step


def _drip_deps(deps: OnboardingDeps) -> DripDeps:
    rules = deps.rules
    return DripDeps(
        deps.mailing_list,
        deps.members,
        deps.due_work,
        deps.trace,
        rules.list_id,
        rules.drip_step_days,
        rules.welcome_journey,
        deps.ledger,
        deps.consent_rules,
    )
