"""Sandbox of the Slack Web API's `chat.postMessage`, for escalation's moderator alerts and thread replies.

`slack_sdk.WebClient(token=..., base_url=sandbox.url + "/")` works against it unmodified: a bot token in
`Authorization: Bearer xoxb-...`, answers `{"ok": true, "channel", "ts", "message"}` and, as Slack does, HTTP 200
with `{"ok": false, "error"}` for a refused call (`invalid_auth`, `channel_not_found`, `no_text`); over the request
budget (Slack's per-method tier), 429 with `Retry-After` in seconds and `{"ok": false, "error": "ratelimited"}`.
"""

from memberflow_sandboxes.slack.sandbox import SlackApp, SlackSandbox

__all__ = ["SlackApp", "SlackSandbox"]
