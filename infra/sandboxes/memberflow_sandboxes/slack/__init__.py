"""Sandbox of the Slack Web API's `chat.postMessage`, for escalation's moderator alerts and thread replies.

`slack_sdk.WebClient(token=..., base_url=sandbox.url + "/")` works against it unmodified: a bot token in
`Authorization: Bearer xoxb-...`, answers `{"ok": true, "channel", "ts", "message"}` and, as Slack does, HTTP 200
with `{"ok": false, "error"}` for a refused call (`not_authed` without a token, `invalid_auth` for a wrong one,
`token_revoked` for one rotated away, `channel_not_found`, `no_text`); over the request budget (Slack's per-method
tier), 429 with `Retry-After` in seconds and `{"ok": false, "error": "ratelimited"}`.

Knobs (also under `/_sandbox/`): `refuse_channel(id, "not_in_channel" | "channel_not_found" | "is_archived")` and
`admit_channel(id)` (`POST /_sandbox/channels {"<id>": "<error>" | null}`): a channel the bot is not in, that is
gone, or archived; `rotate_token(new)` (`POST /_sandbox/token {"token"}`); `refusals()` lists the posts refused for
their channel.
"""

from memberflow_sandboxes.slack.sandbox import SlackApp, SlackSandbox

__all__ = ["SlackApp", "SlackSandbox"]
