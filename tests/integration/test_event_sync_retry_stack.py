"""Event sync's retries on the local stack, on a stack of its own: a registration whose Mailchimp calls fail goes
back to the registrations queue with the policy's short delay and is synced on a later attempt."""

from __future__ import annotations

import time

from test_event_sync_stack import SLUG, ZOOM_ID, erase_by_generic_webhook, registrations, tags_of

from memberflow.adapters.http_json import DEFAULT_ATTEMPTS
from memberflow.privacy import email_key
from support.mailchimp import official_client


def test_a_registration_that_fails_is_retried_on_its_own_queue_within_seconds() -> None:
    """Mailchimp fails the first attempt: the consumer hands the message back to the registrations queue with the
    policy's short delay, and the next attempt syncs it (not 12 minutes later, when the queue's visibility timeout
    would end), with nothing parked. On a stack of its own where onboarding has worked first: the consumers must not
    share their queue's settings."""
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    with LocalStack(LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0)) as stack:
        run = str(int(time.time()))
        erase_by_generic_webhook(stack, f"not.a.member.{run}@example.org", 0)  # onboarding's consumer, first
        assert stack.drain(timeout=30)
        person = f"retried.reg.{run}@example.org"
        answered = stack.mailchimp.state.request_counts
        refused = answered[500]
        stack.mailchimp.set_faults(rate_500=1.0)
        try:
            stack.services["zoom"].sender.registration_created(ZOOM_ID, person, "Reg", "Retried")
            # Every call of the first attempt refused (the transport's brief retries included), then the first call
            # of the second attempt: the message came back to the queue and was delivered again.
            second_attempt = refused + DEFAULT_ATTEMPTS + 1
            deadline = time.monotonic() + 30
            while answered[500] < second_attempt and time.monotonic() < deadline:
                time.sleep(0.05)
            assert answered[500] >= second_attempt
        finally:
            stack.mailchimp.set_faults()

        assert stack.drain(timeout=30)
        assert registrations(stack)[email_key(person)]["status"] == "registered"
        client = official_client(stack.mailchimp.url, stack.settings.mailchimp_api_key)
        assert tags_of(client, person) == {f"event:{SLUG}:registered"}
        assert stack.dead_letters("RegistrationsDeadLetterQueue") == []
