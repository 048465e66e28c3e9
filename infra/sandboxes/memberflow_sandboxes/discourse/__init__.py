"""Sandbox of the Discourse API's `POST /posts.json` (a reply in a topic), for escalation's member replies.

Auth with `Api-Key` and `Api-Username` headers; answers the post as Discourse does (`id`, `topic_id`,
`post_number`, `raw`, `username`, ...); one bucket of admin requests per minute answered beyond it with 429,
`Retry-After` and `{"errors", "error_type": "rate_limit", "extras": {"wait_seconds"}}`; a wrong key, 403
`invalid_access` "... The API username or key is invalid."; a reply in a deleted topic, 422 `{"action":
"create_post", "errors": ["Topic not found"]}`. Knobs: `delete_topics(*ids)` (`POST /_sandbox/topics/gone
{"ids"}`), `rotate_key(new)` (`POST /_sandbox/key {"api_key"}`)."""

from memberflow_sandboxes.discourse.sandbox import DiscourseApp, DiscourseSandbox

__all__ = ["DiscourseApp", "DiscourseSandbox"]
