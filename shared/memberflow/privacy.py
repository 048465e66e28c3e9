"""Keep personal data out of logs and trace keys."""

from __future__ import annotations

import hashlib
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
