"""Sandbox of the Mailchimp Marketing API v3 for local runs and tests.

It serves the subset of the API memberflow uses (ping, lists, members, tags, permanent delete, merge fields,
customer-journey triggers, batch subscribe, static segments, which are tags) over real HTTP so the official
``mailchimp-marketing`` client can be pointed at it::

    client = mailchimp_marketing.Client()
    client.set_config({"api_key": sandbox.api_key})
    client.api_client.host = sandbox.url

Behaviour follows the documented API: RFC 7807 error bodies, compliance and
"forgotten" rules (compliance state sticks to the address until a ``pending``
re-opt-in is confirmed through ``POST /_sandbox/confirm``), a 10-connection
concurrency limit answered with a problem+json 429 without ``Retry-After`` (the
``bare_throttle`` fault gives the empty-bodied 429 Mailchimp sends at very high
volume), merge fields checked by type and, for new members, required fields (unless
``?skip_merge_validation=true``), journey triggers 404 for a journey or step the account does not have (once any is
given: ``journeys=``, ``--journey``, ``POST /_sandbox/journeys``; none given accepts any), plus fault injection
(with a per-call latency; a signup throttle per address, ``POST /_sandbox/throttle_signup``; the bare 403 of load
shedding, ``POST /_sandbox/shed_load``), calls counted per endpoint (``state.calls``), every tag added to a member
recorded (``state.tag_events``, what a "tag added" journey counts) and ``/_sandbox/`` admin endpoints for tests.
"""

from memberflow_sandboxes.mailchimp.problems import ApiError
from memberflow_sandboxes.mailchimp.sandbox import API_PREFIX, MailchimpApp, MailchimpSandbox, main
from memberflow_sandboxes.mailchimp.state import SandboxState, subscriber_hash

__all__ = ["API_PREFIX", "ApiError", "MailchimpApp", "MailchimpSandbox", "SandboxState", "main", "subscriber_hash"]
