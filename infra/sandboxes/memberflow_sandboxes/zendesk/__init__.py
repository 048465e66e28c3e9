"""Sandbox of the Zendesk Support API for local runs and tests.

It serves what memberflow's escalation uses over real HTTP so the official `zenpy` client works against it by
configuration only (`ZENPY_FORCE_SCHEME=http`, `ZENPY_FORCE_NETLOC=127.0.0.1:PORT`, any subdomain):

- tickets: create (with `Idempotency-Key` semantics: a repeat with the same body answers the original response
  with `x-idempotency-lookup: hit`, another body is a 400 `IdempotentRequestError`, keys kept two hours), show,
  update (comments, status), list by `external_id`, comments; `create_many` (up to 100) with job statuses, kept
  one day as Zendesk does (then, like an unknown id, 404 `RecordNotFound`; `POST /_sandbox/jobs/expire` makes
  the day pass);
- users: `create_or_update` (matched by email, else external id; 201 created, 200 updated; an address Zendesk
  cannot use is 422 `RecordInvalid` with `details.email`), list, show, `show_many` by ids or external ids,
  `users/search` (`query`: part of a name or address; `external_id`: exact), soft delete
  (refused while the user requests a ticket that is not closed) and permanent delete through `deleted_users`;
  `users/me` (the API user whose credentials the request carries, `{"user": {...}}` as Zendesk's "Show the
  Currently Authenticated User" answers: the redrive's availability probe);
- search (`search.json`): tickets and users by `field:value` terms and words, lagging like Zendesk's index when
  `POST /_sandbox/search_lag {"seconds": N}` is set (tickets and users created in the last N seconds are not found
  yet; 0 by default), 100 a page and 1,000 results at most (then 422 `invalid`, zenpy's `SearchResponseLimitExceeded`);
- pagination as zenpy reads it (pages.py): cursor pages (`page[size]`, `page[after]`, `meta.has_more`,
  `links.next`) on lists, offset pages (`page`, `per_page`, `next_page`, `count`) otherwise and on search, every
  URL (and every record's `url`) absolute on the host the request reached;
- a 404 `RecordNotFound` for a record that is not there, and 404 `InvalidEndpoint` for a path with no endpoint;
- a request budget per window (Zendesk's per-account rate limit) answered with 429 and an integer `Retry-After`,
  `X-Rate-Limit` / `X-Rate-Limit-Remaining` headers on every answer (700 a minute advertised without a budget, so
  zenpy's `proactive_ratelimit` does not stall), fault injection and `/_sandbox/` controls like the Mailchimp
  sandbox;
- a signed webhook (`zen:event-type:ticket.status_changed`, `X-Zendesk-Webhook-Signature` over timestamp + body)
  to memberflow's `/webhooks/zendesk` whenever a ticket's status changes.
"""

from memberflow_sandboxes.zendesk.sandbox import ZendeskApp, ZendeskSandbox, main

__all__ = ["ZendeskApp", "ZendeskSandbox", "main"]
