"""Sandbox of the Slack Web API's `chat.postMessage`, for escalation's moderator alerts and thread replies, and
`users.list`, for the bulk import's fetch; `auth.test`, `conversations.history` (newest first, no thread replies) and
`conversations.replies` (the thread, parent first; `thread_not_found` for one nothing was posted in) read back what
was posted, in `limit`/`cursor` pages, with `channels:history`.

`slack_sdk.WebClient(token=..., base_url=sandbox.url + "/")` works against it unmodified: a bot token in
`Authorization: Bearer xoxb-...`, answers `{"ok": true, "channel", "ts", "message"}` and, as Slack does, HTTP 200
with `{"ok": false, "error"}` for a refused call (`not_authed` without a token, `invalid_auth` for a wrong one,
`token_revoked` for one rotated away, `channel_not_found`, `no_text`); over the request budget (Slack's per-method
tier), 429 with `Retry-After` in seconds and `{"ok": false, "error": "ratelimited"}`.

Knobs (also under `/_sandbox/`): `refuse_channel(id, "not_in_channel" | "channel_not_found" | "is_archived")` and
`admit_channel(id)` (`POST /_sandbox/channels {"<id>": "<error>" | null}`): a channel the bot is not in, that is
gone, or archived; `rotate_token(new)` (`POST /_sandbox/token {"token"}`); `refusals()` lists the posts refused for
their channel.

users.list: `add_users([...])` (`POST /_sandbox/seed {"users": [...]}`) fills the workspace; pages of `limit` (1 to
1000; more, or not a number, is `invalid_arguments`; none on a workspace of more than 500 users is `limit_required`)
followed by `cursor` (`response_metadata.next_cursor`, empty on the last page; an unknown one is `invalid_cursor`).
Every answer to a token Slack knows (refusals and 429s too) carries the token's scopes in `X-OAuth-Scopes` and the
method's in `X-Accepted-OAuth-Scopes`; a JSON body that does not parse is `invalid_json`, one that is no object
`json_not_object`, and one sent without a charset is answered with the `missing_charset` warning (top level and
`response_metadata.warnings`), as Slack does. `grant_scopes(...)` (`POST /_sandbox/scopes
{"scopes"}`) changes them: without `users:read` the call is `missing_scope` (with `needed` and `provided`; so is a
post without `chat:write`), without `users:read.email` every `profile.email` is left out while the call still
answers `ok: true`, as Slack does.
`limit_method("users.list", N)` (`POST /_sandbox/budget {"method", "requests", "window_seconds"}`) gives the method
its own rate tier.
"""

from memberflow_sandboxes.slack.sandbox import SlackApp, SlackSandbox

__all__ = ["SlackApp", "SlackSandbox"]
