"""Each function's environment, validated once at cold start: a bad or missing variable is named in the error.
Settings share their common fields by inheritance: a function's settings class lists the groups it needs."""

from __future__ import annotations

import json
import os
import re
from functools import cache
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(RuntimeError):
    pass


DISCOURSE_USER_FIELD = re.compile(r"(?:user_field_)?([0-9]*)")


def discourse_user_field_id(value: str) -> str:
    """A Discourse custom user field as its deliveries key it: `"1"`, whether given as `1` or as the internal name
    `user_field_1`; empty stays empty (no field)."""
    match = DISCOURSE_USER_FIELD.fullmatch(value.strip().lower())
    if match is None:
        raise ValueError("must be the user field's id, e.g. 1 (or its internal name user_field_1)")
    return match.group(1)


class _Env(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class TraceSettings(_Env):
    trace_table_name: str = Field(alias="TRACE_TABLE_NAME")


class MembersSettings(_Env):
    members_table_name: str = Field(alias="MEMBERS_TABLE_NAME")


class SuppressionSettings(MembersSettings):
    suppression_key_secret_arn: str = Field(alias="SUPPRESSION_KEY_SECRET_ARN")
    """The secret holding {"suppression_key"}: the key of the keyed hash under which erased members are kept."""


class MailchimpSettings(_Env):
    mailchimp_secret_arn: str = Field(alias="MAILCHIMP_SECRET_ARN")
    mailchimp_api_url: str = Field(default="", alias="MAILCHIMP_API_URL")
    """Empty means the real API of the key's data centre."""
    mailchimp_list_id: str = Field(alias="MAILCHIMP_LIST_ID", min_length=1)
    mailchimp_timeout_seconds: float = Field(default=5.0, alias="MAILCHIMP_TIMEOUT_SECONDS", gt=0)


class WelcomeSettings(MailchimpSettings):
    welcome_journey_id: str = Field(alias="MAILCHIMP_WELCOME_JOURNEY_ID", min_length=1)
    welcome_journey_step_id: str = Field(alias="MAILCHIMP_WELCOME_JOURNEY_STEP_ID", min_length=1)
    drip_step_days: tuple[int, ...] = Field(default=(1, 3, 7), alias="DRIP_STEP_DAYS")

    @field_validator("drip_step_days", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        if isinstance(value, str):
            days = tuple(int(part) for part in value.split(",") if part.strip())
            if not days or list(days) != sorted(set(days)) or days[0] < 0:
                raise ValueError("must be increasing whole days, e.g. 1,3,7")
            return days
        return value


class ConsumerSettings(TraceSettings):
    """What every queue consumer needs: its queue, its dead-letter queue, idempotency and the retry policy."""

    queue_url: str = Field(alias="QUEUE_URL")
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL")
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME")
    max_receive_count: int = Field(default=5, alias="MAX_RECEIVE_COUNT", ge=1)
    """Attempts an event gets for failures that may be its own."""
    max_deliveries: int = Field(default=50, alias="MAX_DELIVERIES", ge=1)
    """The queue's redrive limit (maxReceiveCount in template.yaml)."""
    retry_base_seconds: int = Field(default=30, alias="RETRY_BASE_SECONDS", ge=0)


class IntakeSettings(TraceSettings):
    event_destinations: dict[str, str] = Field(alias="EVENT_DESTINATIONS")
    """Destination name -> queue URL, as template.yaml declares them."""
    webhook_secrets_arn: str = Field(alias="WEBHOOK_SECRETS_ARN")
    max_body_bytes: int = Field(default=256 * 1024, alias="MAX_BODY_BYTES", gt=0)
    replay_window_seconds: int = Field(default=300, alias="REPLAY_WINDOW_SECONDS", gt=0)
    discourse_consent_user_field: str = Field(default="", alias="DISCOURSE_CONSENT_USER_FIELD")
    """Id of the Discourse custom user field that records marketing consent (`1`, or its internal name
    `user_field_1`: both become `1`); empty: none."""
    deliveries_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME", min_length=1)
    """Where deliveries of retrying platforms (Slack) are remembered for a while: the idempotency table."""
    discourse_require_approval: bool = Field(default=False, alias="DISCOURSE_REQUIRE_APPROVAL")
    """The forum approves sign-ups (must_approve_users): members are onboarded at `user_approved`."""

    @field_validator("discourse_consent_user_field", mode="before")
    @classmethod
    def _user_field(cls, value: object) -> object:
        return discourse_user_field_id(value) if isinstance(value, str) else value

    @field_validator("event_destinations", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value


class OnboardingSettings(ConsumerSettings, SuppressionSettings, WelcomeSettings):
    pass


class DripSettings(TraceSettings, MembersSettings, WelcomeSettings):
    pass


class RedriveSettings(MailchimpSettings):
    """The dead-letter redrive: which dead-letter queue goes back to which queue."""

    redrives: dict[str, str] = Field(alias="REDRIVES")
    """Dead-letter queue URL -> the queue its messages came from."""
    max_messages_per_run: int = Field(default=100, alias="REDRIVE_MAX_MESSAGES", ge=1)
    max_auto_redrives: int = Field(default=3, alias="REDRIVE_MAX_TIMES", ge=1)

    @field_validator("redrives", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value


Settings = TypeVar("Settings", bound=_Env)


@cache
def load_settings(model: type[Settings]) -> Settings:
    try:
        return model.model_validate(dict(os.environ))
    except (ValidationError, ValueError) as error:
        if isinstance(error, ValidationError):
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        else:
            problems = str(error)
        raise ConfigError(f"invalid environment for {model.__name__}: {problems}") from None


class EventbriteApiSettings(_Env):
    eventbrite_api_url: str = Field(default="https://www.eventbriteapi.com/v3", alias="EVENTBRITE_API_URL")
    """The Eventbrite API (a sandbox's URL locally): webhooks' `api_url` must lead here, and only here is fetched."""


class SyncedEvent(BaseModel):
    """An event whose registrations are synced: its slug (in Mailchimp tags), its Eventbrite event, and the Zoom
    webinar or meeting it is held in, if any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    eventbrite_event_id: str = Field(pattern=r"^[0-9]{1,32}$")
    zoom_id: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")


class EventSyncSettings(TraceSettings, SuppressionSettings, MailchimpSettings, EventbriteApiSettings):
    """The event sync consumer and the reconciliation run."""

    registrations_table_name: str = Field(alias="REGISTRATIONS_TABLE_NAME")
    eventbrite_secret_arn: str = Field(alias="EVENTBRITE_SECRET_ARN")
    """The secret holding {"oauth_token"}."""
    eventbrite_organization_id: str = Field(default="", alias="EVENTBRITE_ORGANIZATION_ID")
    """Resources of this organization are synced (besides those of the configured events); empty: only those."""
    synced_events: tuple[SyncedEvent, ...] = Field(default=(), alias="SYNCED_EVENTS")
    eventbrite_timeout_seconds: float = Field(default=5.0, alias="EVENTBRITE_TIMEOUT_SECONDS", gt=0)
    reconcile_recent_days: int = Field(default=7, alias="RECONCILE_RECENT_DAYS", ge=0)
    """Events that ended at most this many days ago are still reconciled (late check-ins, refunds)."""

    @field_validator("synced_events", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value
