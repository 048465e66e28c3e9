"""Intake's production dependencies: SQS, the DynamoDB trace and Secrets Manager.

What is costly is cached where it is built (settings in `load_settings`, boto3 clients in `adapters.aws`, the
secret in `adapters.secrets`), so `memberflow.wiring.reset()` also resets intake; the container put together
here is a handful of small objects.
"""

from __future__ import annotations

from functools import partial

from pydantic import Field

from memberflow.adapters.event_queue import SqsEventQueue
from memberflow.adapters.secrets import get_json_secret
from memberflow.adapters.trace_store import DynamoTraceStore
from memberflow.config import IntakeSettings, load_settings
from memberflow.intake.registry import build_registry
from memberflow.intake.service import IntakeDeps


class IntakeEnvironment(IntakeSettings):
    discourse_consent_user_field: str | None = Field(default=None, alias="DISCOURSE_CONSENT_USER_FIELD")
    """Id of the Discourse custom user field that records marketing consent (optional)."""


def intake_deps() -> IntakeDeps:
    settings = load_settings(IntakeEnvironment)
    return IntakeDeps(
        queue=SqsEventQueue(settings.member_events_queue_url),
        trace=DynamoTraceStore(settings.trace_table_name),
        # Fetched on use, not here: the secret is cached for a few minutes so rotation is picked up.
        secrets=partial(get_json_secret, settings.webhook_secrets_arn),
        registry=build_registry(settings.discourse_consent_user_field or None),
        max_body_bytes=settings.max_body_bytes,
        replay_window_seconds=settings.replay_window_seconds,
    )
