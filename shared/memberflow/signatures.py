"""Webhook signatures: verification (intake) and signing (demo, tests, docs) for every source we accept.

All verifiers take the raw body bytes exactly as received (re-serialised JSON would not match) and the request
headers (any case). They return nothing and raise `SignatureError` with a code the HTTP answer can carry.
Schemes with a timestamp reject requests more than `window` seconds away from now in either direction, so a
captured request cannot be replayed later. Discourse signs no timestamp: downstream dedup is its replay
defence.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime

REPLAY_WINDOW_SECONDS = 300

SLACK_SIGNATURE = "X-Slack-Signature"
SLACK_TIMESTAMP = "X-Slack-Request-Timestamp"
DISCOURSE_SIGNATURE = "X-Discourse-Event-Signature"
DISCORD_SIGNATURE = "X-Signature-Ed25519"
DISCORD_TIMESTAMP = "X-Signature-Timestamp"
GENERIC_SIGNATURE = "X-Memberflow-Signature"
GENERIC_TIMESTAMP = "X-Memberflow-Timestamp"
ZENDESK_SIGNATURE = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
ZOOM_SIGNATURE = "x-zm-signature"
ZOOM_TIMESTAMP = "x-zm-request-timestamp"


class SignatureError(Exception):
    """The request is not provably from the sender: `code` is missing_signature, invalid_signature or
    stale_timestamp."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


# ---------------------------------------------------------------- verification


def verify_slack(
    signing_secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    window: int = REPLAY_WINDOW_SECONDS,
) -> None:
    _verify_v0(signing_secret, body, headers, SLACK_SIGNATURE, SLACK_TIMESTAMP, now, window)


def _verify_v0(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    signature_header: str,
    timestamp_header: str,
    now: float | None,
    window: int,
    ahead: int | None = None,
) -> None:
    """Slack's v0 scheme, which Zoom uses too: `v0=` + hex HMAC-SHA256(secret, `v0:{timestamp}:{body}`)."""
    signature = _header(headers, signature_header)
    timestamp = _header(headers, timestamp_header)
    _require_equal(_slack_signature(secret, body, timestamp), signature, signature_header)
    _require_fresh(timestamp, now, window, timestamp_header, ahead)


def verify_discourse(secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    signature = _header(headers, DISCOURSE_SIGNATURE)
    _require_equal(_sha256_header(secret, body), signature, DISCOURSE_SIGNATURE)


def verify_discord_relay(
    public_key_hex: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    window: int = REPLAY_WINDOW_SECONDS,
) -> None:
    signature_hex = _header(headers, DISCORD_SIGNATURE)
    timestamp = _header(headers, DISCORD_TIMESTAMP)
    # PyNaCl loads libsodium: only the Discord path pays for it.
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    verify_key = VerifyKey(_key_bytes(public_key_hex, "discord_relay_public_key"))
    try:
        signature = bytes.fromhex(signature_hex)
        verify_key.verify(timestamp.encode() + body, signature)
    except (BadSignatureError, ValueError, TypeError):
        # ValueError/TypeError: not hex, or not 64 bytes long.
        raise SignatureError("invalid_signature", f"{DISCORD_SIGNATURE} does not match the body") from None
    _require_fresh(timestamp, now, window, DISCORD_TIMESTAMP)


def verify_generic(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    window: int = REPLAY_WINDOW_SECONDS,
) -> None:
    signature = _header(headers, GENERIC_SIGNATURE)
    timestamp = _header(headers, GENERIC_TIMESTAMP)
    expected = _sha256_header(secret, timestamp.encode() + b"." + body)
    _require_equal(expected, signature, GENERIC_SIGNATURE)
    _require_fresh(timestamp, now, window, GENERIC_TIMESTAMP)


def verify_zendesk(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    window: int = REPLAY_WINDOW_SECONDS,
) -> None:
    """Zendesk webhooks: base64 HMAC-SHA256 of the timestamp header (ISO-8601) followed by the raw body (the order
    of Zendesk's current docs and verifiers; an older worked example in its docs puts the body first)."""
    signature = _header(headers, ZENDESK_SIGNATURE)
    timestamp = _header(headers, ZENDESK_TIMESTAMP)
    expected = _zendesk_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise SignatureError("invalid_signature", f"{ZENDESK_SIGNATURE} does not match the body")
    try:
        sent_at = datetime.fromisoformat(timestamp.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SignatureError("invalid_signature", f"{ZENDESK_TIMESTAMP} is not an ISO-8601 time") from None
    if sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=UTC)
    _require_fresh(str(int(sent_at.timestamp())), now, window, ZENDESK_TIMESTAMP)


def _zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    if not secret:
        raise ValueError("a webhook secret must not be empty")
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_zoom(
    secret_token: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    window: int = REPLAY_WINDOW_SECONDS,
    ahead: int | None = None,
) -> None:
    """Zoom's v0 scheme: `v0=` + hex HMAC-SHA256(secret token, `v0:{timestamp}:{body}`). `window` is how old a
    timestamp may be, `ahead` how far in the future (clock skew; `window` when not given)."""
    _verify_v0(secret_token, body, headers, ZOOM_SIGNATURE, ZOOM_TIMESTAMP, now, window, ahead)


def zoom_url_validation(secret_token: str, plain_token: str) -> dict[str, str]:
    """Zoom's endpoint validation answer: the plain token and its hex HMAC-SHA256 under the secret token."""
    return {"plainToken": plain_token, "encryptedToken": _hmac_hex(secret_token, plain_token.encode())}


# ---------------------------------------------------------------- signing (the sender's side)


def sign_slack(signing_secret: str, body: bytes | str, ts: int | str) -> dict[str, str]:
    timestamp = str(ts)
    return {
        SLACK_TIMESTAMP: timestamp,
        SLACK_SIGNATURE: _slack_signature(signing_secret, _as_bytes(body), timestamp),
    }


def sign_discourse(secret: str, body: bytes | str) -> dict[str, str]:
    return {DISCOURSE_SIGNATURE: _sha256_header(secret, _as_bytes(body))}


def sign_discord_relay(private_key_hex_seed: str, body: bytes | str, ts: int | str) -> dict[str, str]:
    from nacl.signing import SigningKey

    timestamp = str(ts)
    signing_key = SigningKey(_key_bytes(private_key_hex_seed, "private key seed"))
    signature = signing_key.sign(timestamp.encode() + _as_bytes(body)).signature
    return {DISCORD_SIGNATURE: signature.hex(), DISCORD_TIMESTAMP: timestamp}


def sign_generic(secret: str, body: bytes | str, ts: int | str) -> dict[str, str]:
    timestamp = str(ts)
    return {
        GENERIC_TIMESTAMP: timestamp,
        GENERIC_SIGNATURE: _sha256_header(secret, timestamp.encode() + b"." + _as_bytes(body)),
    }


def sign_zendesk(secret: str, body: bytes | str, at: datetime | None = None) -> dict[str, str]:
    timestamp = (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {ZENDESK_TIMESTAMP: timestamp, ZENDESK_SIGNATURE: _zendesk_signature(secret, timestamp, _as_bytes(body))}


def sign_zoom(secret_token: str, body: bytes | str, ts: int | str) -> dict[str, str]:
    timestamp = str(ts)
    return {
        ZOOM_TIMESTAMP: timestamp,
        ZOOM_SIGNATURE: _slack_signature(secret_token, _as_bytes(body), timestamp),
    }


def discord_public_key(private_seed_hex: str) -> str:
    """The hex public key to store as `discord_relay_public_key` for a relay signing with this seed."""
    from nacl.signing import SigningKey

    return SigningKey(_key_bytes(private_seed_hex, "private key seed")).verify_key.encode().hex()


# ---------------------------------------------------------------- internals


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted and value:
            return value
    raise SignatureError("missing_signature", f"the {name} header is missing")


def _slack_signature(secret: str, body: bytes, timestamp: str) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + _hmac_hex(secret, base)


def _sha256_header(secret: str, message: bytes) -> str:
    return "sha256=" + _hmac_hex(secret, message)


def _hmac_hex(secret: str, message: bytes) -> str:
    if not secret:
        # An empty key would make every signature computable by anyone.
        raise ValueError("a webhook secret must not be empty")
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _require_equal(expected: str, received: str, header: str) -> None:
    # compare_digest: the time taken must not reveal how many leading characters matched.
    if not hmac.compare_digest(expected.encode(), received.strip().lower().encode()):
        raise SignatureError("invalid_signature", f"{header} does not match the body")


def _require_fresh(timestamp: str, now: float | None, window: int, header: str, ahead: int | None = None) -> None:
    """At most `window` seconds old and at most `ahead` (default `window`) in the future."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureError("invalid_signature", f"{header} is not unix seconds") from None
    current = time.time() if now is None else now
    ahead = window if ahead is None else ahead
    if current - sent_at > window:
        raise SignatureError("stale_timestamp", f"{header} is more than {window} seconds away from the current time")
    if sent_at - current > ahead:
        raise SignatureError("stale_timestamp", f"{header} is more than {ahead} seconds in the future")


def _key_bytes(hex_value: str, what: str) -> bytes:
    try:
        key = bytes.fromhex(hex_value)
    except (ValueError, TypeError):
        raise ValueError(f"{what} must be 32 bytes in hex") from None
    if len(key) != 32:
        raise ValueError(f"{what} must be 32 bytes in hex")
    return key


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body
