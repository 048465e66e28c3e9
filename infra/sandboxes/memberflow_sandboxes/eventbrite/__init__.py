"""Sandbox of the Eventbrite API v3 for local runs and tests: events, orders and attendees over real HTTP, an
OAuth check (`Authorization: Bearer <token>`; `GET /users/me/` answers the token's user, as the redrive's
availability probe reads it), attendee lists in pages with continuation tokens, `expand=` for orders and attendees,
errors as Eventbrite words them (`{"status_code", "error", "error_description"}`), and webhooks sent as Eventbrite
sends them (the action and the changed resource's `api_url`, no data, no signature), with the means to drop a
delivery on purpose. The token's hourly rate limit can be set (`set_rate_limit`: beyond it, 429 HIT_RATE_LIMIT),
with or without Retry-After (also on injected 429s), and the calls are counted (`calls_this_hour`; per endpoint in
`state.calls`)."""

from memberflow_sandboxes.eventbrite.sandbox import API_PREFIX, EventbriteApp, EventbriteSandbox, EventbriteState

__all__ = ["API_PREFIX", "EventbriteApp", "EventbriteSandbox", "EventbriteState"]
