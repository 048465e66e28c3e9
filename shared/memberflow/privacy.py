"""Keep personal data out of logs and trace keys."""

from __future__ import annotations

import hashlib
import hmac
import re

_ADDRESS = re.compile(r"[^@\s\"'<>(),;:]+@[^@\s\"'<>(),;:]+\.[A-Za-z]{2,}")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lowercased address."""
    return hashlib.md5(normalise_email(email).encode(), usedforsecurity=False).hexdigest()


def email_key(email: str) -> str:
    """A stable, non-reversible key for an address (used in traces and logs)."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()[:32]


def keyed_hash(key: bytes, text: str) -> str:
    """HMAC-SHA256 of `text` under a secret key, in hex: one-way, and, unlike a plain hash of an address, not
    testable by anyone who merely guesses the address (a plain SHA-256 or MD5 of an email can be confirmed with a
    list of candidate addresses in seconds)."""
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def email_suppression_name(email: str) -> str:
    """What the suppression list hashes for an address (the same normalisation as every other key of ours)."""
    return f"email:{normalise_email(email)}"


def identity_suppression_name(identity_key: str) -> str:
    """What the suppression list hashes for a platform identity (platform:workspace:user)."""
    return f"identity:{identity_key}"


def mask_email(email: str | None) -> str | None:
    """`jane.doe@example.com` -> `j***@e***.com`: enough to tell members apart in a log line."""
    if not email or "@" not in email:
        return None if email is None else "***"
    local, _, domain = email.partition("@")
    host, dot, tld = domain.rpartition(".")
    return f"{local[:1]}***@{(host or tld)[:1]}***{dot}{tld if host else ''}"


def redact_emails(text: str) -> str:
    """Mask every address in a service's message (Mailchimp puts the address in its error details)."""
    return _ADDRESS.sub(lambda match: mask_email(match.group(0)) or "***", text)
