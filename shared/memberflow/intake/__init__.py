"""Webhook intake: verify a delivery, validate it, normalise it into a member event and queue it."""
