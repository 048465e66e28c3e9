"""Activity (a message, a post, a reaction) marks the member active, which stops their drip."""

from __future__ import annotations

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
        deps.members.note_unlinked_activity(event.identity.key, utc(event.active_at))
        return {"result": "activity_noted_for_unknown_member"}
    if deps.members.mark_active(member_id, utc(event.active_at)):
        member = deps.members.get(member_id)
        subject = email_subject(member.email) if member and member.email else identity_subject(event.identity.key)
        StepRecorder.for_event(deps.trace, queued, subject)(
            Step.ACTIVATED, Outcome.OK, f"first {event.activity} on {event.identity.platform}: drip stopped"
        )
        return {"result": "activated"}
    return {"result": "activity_recorded"}
