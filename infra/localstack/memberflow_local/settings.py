"""Configuration of the local stack: ports, local secrets and template parameter overrides.

Every field can be overridden with an environment variable ``MEMBERFLOW_LOCAL_<FIELD>`` (upper case),
e.g. ``MEMBERFLOW_LOCAL_API_PORT=3001`` or ``MEMBERFLOW_LOCAL_MAILCHIMP_LIST_ID=abc``.

Nothing here is a real secret: these values only ever sign or verify requests against the local stack.
The default Discord relay key is the Ed25519 seed made of the 32 ASCII bytes
``memberflow-local-discord-relay!!`` (hex below); its public key is derived from it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "MEMBERFLOW_LOCAL_"

#: ``b"memberflow-local-discord-relay!!".hex()``: a fixed, documented, *public* test seed.
DEFAULT_DISCORD_RELAY_PRIVATE_KEY = b"memberflow-local-discord-relay!!".hex()

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_TEMPLATE_PATH = REPO_ROOT / "template.yaml"

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"


@dataclass
class LocalSettings:
    host: str = "127.0.0.1"
    api_port: int = 3000
    aws_port: int = 4566
    mailchimp_port: int = 8025
    template_path: Path = DEFAULT_TEMPLATE_PATH
    stack_name: str = "memberflow-local"

    # webhook verification secrets (stored in the WebhookSigningSecrets secret)
    slack_signing_secret: str = "local-slack-signing-secret"
    discourse_secret: str = "local-discourse-secret"
    generic_hmac_secret: str = "local-generic-secret"
    discord_relay_private_key: str = DEFAULT_DISCORD_RELAY_PRIVATE_KEY
    """Hex Ed25519 seed (32 bytes) the local Discord relay signs with; the stack stores its public key."""
    eventbrite_webhook_token: str = "local-eventbrite-url-secret"
    """The secret the sandbox Eventbrite puts in the webhook URL, as its last path segment
    (`/webhooks/eventbrite/<secret>`)."""
    zoom_secret_token: str = "local-zoom-secret-token"

    mailchimp_webhook_secret: str = "local-mailchimp-webhook-secret"
    """The last part of the URL the sandbox Mailchimp sends its audience webhooks to."""

    # Mailchimp (sandbox)
    mailchimp_api_key: str = "local-key-us1"
    mailchimp_list_id: str = "list123"
    welcome_journey_id: str = "101"
    welcome_journey_step_id: str = "201"

    # template parameter overrides
    discourse_consent_user_field: str = "1"
    """The local forum's consent field is user field 1 (as in the sample deliveries)."""
    discourse_require_approval: bool = False
    """The local forum onboards members at sign-up (no approval step)."""
    retry_base_seconds: int = 1
    """Onboarding retries back off from 1 s locally (template default: 30 s)."""
    batching_window_seconds: int | None = 1
    """Onboarding's and escalation's batching windows (Lambda takes whole seconds): 1 s locally, so a lone event is
    handled in about a second (template defaults: 2 s and 5 s). A burst still fills a batch within it. None keeps
    the template's defaults."""
    max_receive_count: int | None = None
    """Attempts per member event; None keeps the template's default."""
    max_deliveries: int | None = None
    """The queue's redrive limit; None keeps the template's default."""
    log_level: str | None = None
    """None keeps the template's default (INFO)."""
    drip_step_days: str | None = None
    """None keeps the template's default ("1,3,7")."""
    consent_wording: str = json.dumps(
        {
            "discourse": {"text": "Send me the community newsletter", "version": "2026-01"},
            "discord": {"text": "/newsletter: yes, send me the community newsletter", "version": "2026-01"},
            "generic": {"text": "Keep me posted by email", "version": "2026-01"},
        }
    )
    """The local forum's consent field label and the relay's form, as the ledger records them."""

    # runtime
    sqs_max_workers: int = 2
    """Poller threads per SQS event source, at most the source's MaximumConcurrency: up to that many batches
    run at once, each in its own container of the function."""
    http_max_containers: int = 50
    """Containers an HTTP API function may run at once: as Lambda does, a new one is started whenever every
    existing one is busy, up to this cap (the HTTP API's burst limit in template.yaml is 50); concurrent requests
    beyond it wait. ``MEMBERFLOW_LOCAL_HTTP_MAX_CONTAINERS`` sets it."""
    disable_tracing: bool = True
    """Set POWERTOOLS_TRACE_DISABLED=true: there is no X-Ray daemon locally."""

    extra_parameter_overrides: dict[str, str] = field(default_factory=dict)
    """Further template parameters, as JSON in the environment:
    ``MEMBERFLOW_LOCAL_EXTRA_PARAMETER_OVERRIDES='{"DripSchedule": "..."}'``."""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> LocalSettings:
        """Defaults, then ``MEMBERFLOW_LOCAL_*`` variables, then keyword overrides."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _convert(f.name, f.type, raw)
        values.update(overrides)
        return cls(**values)

    # ------------------------------------------------------------------ derived values
    @property
    def discord_relay_public_key(self) -> str:
        from nacl.signing import SigningKey

        seed = bytes.fromhex(self.discord_relay_private_key)
        return SigningKey(seed).verify_key.encode().hex()

    def webhook_secrets(self) -> dict[str, str]:
        """Value of the WebhookSigningSecrets secret (the keys its description in template.yaml names)."""
        return {
            "slack_signing_secret": self.slack_signing_secret,
            "discourse_secret": self.discourse_secret,
            "discord_relay_public_key": self.discord_relay_public_key,
            "generic_hmac_secret": self.generic_hmac_secret,
            "mailchimp_webhook_secret": self.mailchimp_webhook_secret,
            "eventbrite_webhook_token": self.eventbrite_webhook_token,
            "zoom_secret_token": self.zoom_secret_token,
        }

    def mailchimp_secret(self) -> dict[str, str]:
        return {"api_key": self.mailchimp_api_key}

    def secret_values(self) -> dict[str, str]:
        """Secret logical id -> SecretString stored in moto (the template creates the secrets without a value)."""
        return {
            "MailchimpApiSecret": json.dumps(self.mailchimp_secret()),
            "WebhookSigningSecrets": json.dumps(self.webhook_secrets()),
        }

    def parameter_overrides(self, mailchimp_api_url: str | None = None) -> dict[str, str]:
        """Template parameters, like ``sam deploy --parameter-overrides``."""
        params = {
            "MailchimpListId": self.mailchimp_list_id,
            "MailchimpWelcomeJourneyId": self.welcome_journey_id,
            "MailchimpWelcomeJourneyStepId": self.welcome_journey_step_id,
            "RetryBaseSeconds": str(self.retry_base_seconds),
            "DiscourseConsentUserField": self.discourse_consent_user_field,
            "DiscourseRequireApproval": "true" if self.discourse_require_approval else "false",
            "ConsentWording": self.consent_wording,
        }
        if self.batching_window_seconds is not None:
            params["OnboardingBatchingWindowSeconds"] = str(self.batching_window_seconds)
            params["EscalationBatchingWindowSeconds"] = str(self.batching_window_seconds)
        if self.max_receive_count is not None:
            params["MaxReceiveCount"] = str(self.max_receive_count)
        if self.max_deliveries is not None:
            params["MaxDeliveries"] = str(self.max_deliveries)
        if self.log_level is not None:
            params["LogLevel"] = self.log_level
        if self.drip_step_days is not None:
            params["DripStepDays"] = self.drip_step_days
        if mailchimp_api_url is not None:
            params["MailchimpApiUrl"] = mailchimp_api_url
        params.update({k: str(v) for k, v in self.extra_parameter_overrides.items()})
        return params


def _convert(name: str, annotation: Any, raw: str) -> Any:
    text = str(annotation)
    try:
        if name == "extra_parameter_overrides":
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object")
            return {str(k): str(v) for k, v in value.items()}
        if "None" in text and raw.strip().lower() in ("", "none", "null"):
            return None
        if text.startswith("int"):
            return int(raw)
        if text.startswith("bool"):
            if raw.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if raw.strip().lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if text.startswith("Path"):
            return Path(raw)
        return raw
    except ValueError as error:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r}: {error}") from None
