"""Each function's environment, validated once at cold start: a bad or missing variable is named in the error."""

from __future__ import annotations

import os
from functools import cache
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(RuntimeError):
    pass


class _Env(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class IntakeSettings(_Env):
    member_events_queue_url: str = Field(alias="MEMBER_EVENTS_QUEUE_URL")
    webhook_secrets_arn: str = Field(alias="WEBHOOK_SECRETS_ARN")
    trace_table_name: str = Field(alias="TRACE_TABLE_NAME")
    max_body_bytes: int = Field(default=256 * 1024, alias="MAX_BODY_BYTES", gt=0)
    replay_window_seconds: int = Field(default=300, alias="REPLAY_WINDOW_SECONDS", gt=0)
    discourse_consent_user_field: str = Field(default="", alias="DISCOURSE_CONSENT_USER_FIELD")
    """Id of the Discourse custom user field that records marketing consent; empty: none."""


class MailchimpSettings(_Env):
    mailchimp_secret_arn: str = Field(alias="MAILCHIMP_SECRET_ARN")
    mailchimp_api_url: str = Field(default="", alias="MAILCHIMP_API_URL")
    """Empty means the real API of the key's data centre."""
    mailchimp_list_id: str = Field(alias="MAILCHIMP_LIST_ID", min_length=1)
    mailchimp_timeout_seconds: float = Field(default=5.0, alias="MAILCHIMP_TIMEOUT_SECONDS", gt=0)


class OnboardingSettings(MailchimpSettings):
    members_table_name: str = Field(alias="MEMBERS_TABLE_NAME")
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME")
    trace_table_name: str = Field(alias="TRACE_TABLE_NAME")
    member_events_queue_url: str = Field(alias="MEMBER_EVENTS_QUEUE_URL")
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL")
    welcome_journey_id: str = Field(alias="MAILCHIMP_WELCOME_JOURNEY_ID", min_length=1)
    welcome_journey_step_id: str = Field(alias="MAILCHIMP_WELCOME_JOURNEY_STEP_ID", min_length=1)
    max_receive_count: int = Field(default=5, alias="MAX_RECEIVE_COUNT", ge=1)
    retry_base_seconds: int = Field(default=30, alias="RETRY_BASE_SECONDS", ge=0)
    drip_step_days: tuple[int, ...] = Field(default=(1, 3, 7), alias="DRIP_STEP_DAYS")

    @field_validator("drip_step_days", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        return _parse_days(value)


class DripSettings(MailchimpSettings):
    members_table_name: str = Field(alias="MEMBERS_TABLE_NAME")
    trace_table_name: str = Field(alias="TRACE_TABLE_NAME")
    welcome_journey_id: str = Field(alias="MAILCHIMP_WELCOME_JOURNEY_ID", min_length=1)
    welcome_journey_step_id: str = Field(alias="MAILCHIMP_WELCOME_JOURNEY_STEP_ID", min_length=1)
    drip_step_days: tuple[int, ...] = Field(default=(1, 3, 7), alias="DRIP_STEP_DAYS")

    @field_validator("drip_step_days", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        return _parse_days(value)


def _parse_days(value: object) -> object:
    if isinstance(value, str):
        days = tuple(int(part) for part in value.split(",") if part.strip())
        if not days or list(days) != sorted(set(days)) or days[0] < 0:
            raise ValueError("must be increasing whole days, e.g. 1,3,7")
        return days
    return value


Settings = TypeVar("Settings", bound=_Env)


@cache
def load_settings(model: type[Settings]) -> Settings:
    try:
        return model.model_validate(dict(os.environ))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"invalid environment for {model.__name__}: {problems}") from None
