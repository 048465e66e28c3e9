"""Activity (a message, a post, a reaction) marks the member active, which stops their drip."""

from __future__ import annotations

from memberflow import activity
from memberflow.events import MemberActive
from memberflow.members import resolve_member_id
from memberflow.onboarding.forgotten import latest_erasure
from memberflow.onboarding.join import OnboardingDeps, utc
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.trace import Outcome, Step, StepRecorder, email_subject, identity_subject


def record_activity(queued: QueuedEvent, deps: OnboardingDeps) -> dict[str, str]:
    event = queued.event
    assert isinstance(event, MemberActive)
    member_id = resolve_member_id(event.identity, event.email, deps.members.link(event.identity.key))
    if member_id is None or deps.members.get(member_id) is None:
        # Someone we do not know: maybe someone who asked to be forgotten, whose activity is not noted again
        # (only a join after their erasure makes them a member once more).
        if latest_erasure(deps.suppressions, event.email, event.identity.key) is not None:
            return {"result": "activity_dropped_after_erasure"}
        linked_meanwhile = deps.members.note_unlinked_activity(event.identity.key, utc(event.active_at))
        if linked_meanwhile is None or deps.members.get(linked_meanwhile) is None:
            # In the activity log under the platform identity: a join links it to a member later.
            _note_activity(queued, event, event.identity.key, deps)
            return {"result": "activity_noted_for_unknown_member"}
        # The member's join linked the identity while this event was being handled: it may already have read
        # the link, so the activity is applied here rather than left for the join to find.
        member_id = linked_meanwhile
    _note_activity(queued, event, member_id, deps)
    if deps.members.mark_active(member_id, utc(event.active_at)):
        member = deps.members.get(member_id)
        subject = email_subject(member.email) if member and member.email else identity_subject(event.identity.key)
        StepRecorder.for_event(deps.trace, queued, subject)(
            Step.ACTIVATED, Outcome.OK, f"first {event.activity} on {event.identity.platform}: drip stopped"
        )
        activity.note(
            deps.activity,
            activity.ACTIVATED,
            member_id=member_id,
            platform=event.identity.platform.value,
            at=utc(event.active_at),
            source_key=queued.idempotency_key,
        )
        return {"result": "activated"}
    return {"result": "activity_recorded"}


def _note_activity(queued: QueuedEvent, event: MemberActive, member_id: str, deps: OnboardingDeps) -> None:
    """The message, post or reaction in the activity log, with where it happened (never what was said)."""
    activity.note(
        deps.activity,
        event.activity,
        member_id=member_id,
        platform=event.identity.platform.value,
        at=utc(event.active_at),
        source_key=queued.idempotency_key,
        workspace=event.identity.workspace,
        channel=event.channel,
        thread=event.thread,
        item=event.item,
        is_reply=event.is_reply,
        opens_thread=event.opens_thread,
        question=event.question,
    )
