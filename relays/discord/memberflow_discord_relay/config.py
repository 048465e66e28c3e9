"""The relay's configuration, from environment variables (a container's usual way)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from memberflow_discord_relay.signing import signing_key

WEBHOOK_PATH = "/webhooks/discord"


class ConfigError(ValueError):
    """The configuration is incomplete or wrong; the message names every variable concerned."""


@dataclass(frozen=True)
class RelayConfig:
    bot_token: str
    """DISCORD_BOT_TOKEN: Developer Portal -> your application -> Bot -> Token."""
    private_key_hex: str
    """RELAY_PRIVATE_KEY: the relay's Ed25519 seed in hex (`python -m memberflow_discord_relay keygen`)."""
    webhook_url: str
    """From MEMBERFLOW_API_URL: the stack's `WebhookApiUrl` output (or the full `.../webhooks/discord` URL)."""
    guild_id: int
    """DISCORD_GUILD_ID: the server whose members are relayed (right-click the server -> Copy Server ID)."""
    outbox_path: Path = Path("/data/outbox.sqlite3")
    """RELAY_OUTBOX_PATH: the queue on disk; keep it on a volume, it survives restarts."""
    newsletter_name: str = "the community newsletter"
    """RELAY_NEWSLETTER_NAME: how the /newsletter form names what the member signs up for."""
    max_backoff_seconds: float = 300.0
    """RELAY_MAX_BACKOFF_SECONDS: the longest wait between two attempts while memberflow cannot take events."""
    log_level: str = "INFO"
    """RELAY_LOG_LEVEL."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RelayConfig:
        env = os.environ if env is None else env
        problems: list[str] = []

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set")
            return value

        token = required("DISCORD_BOT_TOKEN")
        key = required("RELAY_PRIVATE_KEY")
        if key:
            try:
                signing_key(key)
            except ValueError:
                problems.append("RELAY_PRIVATE_KEY is not 64 hex characters (an Ed25519 seed)")
        api = required("MEMBERFLOW_API_URL")
        if api and not api.startswith(("https://", "http://")):
            problems.append("MEMBERFLOW_API_URL is not an http(s) URL")
        guild = required("DISCORD_GUILD_ID")
        if guild and not guild.isdigit():
            problems.append("DISCORD_GUILD_ID is not a server id (digits)")
        backoff = env.get("RELAY_MAX_BACKOFF_SECONDS", "300")
        try:
            max_backoff = float(backoff)
            if max_backoff <= 0:
                raise ValueError
        except ValueError:
            problems.append("RELAY_MAX_BACKOFF_SECONDS is not a positive number of seconds")
            max_backoff = 300.0
        if problems:
            raise ConfigError("; ".join(problems))
        return cls(
            bot_token=token,
            private_key_hex=key,
            webhook_url=webhook_url(api),
            guild_id=int(guild),
            outbox_path=Path(env.get("RELAY_OUTBOX_PATH") or cls.outbox_path),
            newsletter_name=env.get("RELAY_NEWSLETTER_NAME") or cls.newsletter_name,
            max_backoff_seconds=max_backoff,
            log_level=(env.get("RELAY_LOG_LEVEL") or cls.log_level).upper(),
        )


def webhook_url(api_url: str) -> str:
    """`https://<api>` or `https://<api>/webhooks/discord` -> the webhook URL."""
    base = api_url.strip().rstrip("/")
    return base if base.endswith(WEBHOOK_PATH) else base + WEBHOOK_PATH
