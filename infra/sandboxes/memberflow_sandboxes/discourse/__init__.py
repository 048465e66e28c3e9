"""Sandbox of the Discourse API's `POST /posts.json` (a reply in a topic), for escalation's member replies, and
`GET /admin/users/list/{flag}.json`, for the bulk import's fetch.

Auth with `Api-Key` and `Api-Username` headers; answers the post as Discourse does (`id`, `topic_id`,
`post_number`, `raw`, `username`, ...); one bucket of admin requests per minute answered beyond it with 429,
`Retry-After` and `{"errors", "error_type": "rate_limit", "extras": {"wait_seconds"}}`; a wrong key, 403
`invalid_access` "... The API username or key is invalid."; a reply in a deleted topic, 422 `{"action":
"create_post", "errors": ["Topic not found"]}`. Knobs: `delete_topics(*ids)` (`POST /_sandbox/topics/gone
{"ids"}`), `rotate_key(new)` (`POST /_sandbox/key {"api_key"}`).

Admin users list: `add_users([...])` (`POST /_sandbox/seed {"users"}`) fills the forum; a JSON array of 100 users a
page (`page` 1 and 0 are both the first; a short page is the last), ordered as asked (`order=created&asc=true`);
`email` and `secondary_emails` only with `show_emails=true`; the same key check, and 403 `invalid_access` unless
`Api-Username` is `system` or an admin; every call takes from the same site-wide bucket as replies
(`set_budget(requests, window_seconds)`, `POST /_sandbox/budget`)."""

from memberflow_sandboxes.discourse.sandbox import DiscourseApp, DiscourseSandbox

__all__ = ["DiscourseApp", "DiscourseSandbox"]
