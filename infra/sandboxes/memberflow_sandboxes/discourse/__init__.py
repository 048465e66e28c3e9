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
`email` and `secondary_emails` only with `show_emails=true`; the same key check (403 `invalid_access` for a bad key
or an `Api-Username` Discourse does not know), and 404 `not_found` unless `Api-Username` is `system` or staff, as
Discourse's staff-only route answers (a moderator sees no emails); `user_fields` and `last_posted_at` only in one
user's `GET /u/{username}.json` (`{"user_badges", "user"}`, 404 `not_found` for an unknown one); every call with a key
takes from the same site-wide bucket as replies (`set_budget(requests, window_seconds)`, `POST /_sandbox/budget`);
its 429 also carries `extras.time_left` and `Discourse-Rate-Limit-Error-Code: admin_api_key_rate_limit`. A request
without `Api-Key` is a visitor's: a reply is 403 `not_logged_in`, the admin list 404 `not_found`.

Webhooks: `set_webhook(url, secret, content_type, instance)` (`POST /_sandbox/webhook`); every reply made through the
API is sent as `post_created`, and `send_user_event(event, username)` (`POST /_sandbox/user_event {"event",
"username"}`) sends a user event for a stored user; both as Discourse's EmitWebHookEvent job posts them (raw compact
JSON whatever the content type, `X-Discourse-*` headers, `X-Discourse-Event-Signature: sha256=` with a secret)."""

from memberflow_sandboxes.discourse.sandbox import DiscourseApp, DiscourseSandbox

__all__ = ["DiscourseApp", "DiscourseSandbox"]
