"""Builds each function's dependencies from its validated environment, once per container and only when first
needed. Imports stay inside the builders so a function loads only the adapters it uses (cold start)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from memberflow.config import DripSettings, IntakeSettings, MailchimpSettings, OnboardingSettings, load_settings

if TYPE_CHECKING:
    from memberflow.adapters.mailchimp import MailchimpClient
    from memberflow.drip import DripDeps
    from memberflow.intake.service import IntakeDeps
    from memberflow.onboarding import OnboardingDeps
    from memberflow.queue_worker import RedeliveryPolicy


@cache
def intake_deps() -> IntakeDeps:
    from functools import partial

    from memberflow.adapters.event_queue import SqsEventQueue
    from memberflow.adapters.secrets import get_json_secret
    from memberflow.adapters.trace_store import DynamoTraceStore
    from memberflow.intake.registry import build_registry
    from memberflow.intake.service import IntakeDeps

    settings = load_settings(IntakeSettings)
    return IntakeDeps(
        queue=SqsEventQueue(settings.member_events_queue_url),
        trace=DynamoTraceStore(settings.trace_table_name),
        # Fetched on use, not here: the secret is cached for a few minutes so rotation is picked up.
        secrets=partial(get_json_secret, settings.webhook_secrets_arn),
        registry=build_registry(settings.discourse_consent_user_field or None),
        max_body_bytes=settings.max_body_bytes,
        replay_window_seconds=settings.replay_window_seconds,
    )


def mailchimp_client(settings: MailchimpSettings) -> MailchimpClient:
    from memberflow.adapters.mailchimp import MailchimpClient
    from memberflow.adapters.secrets import get_json_secret

    api_key = get_json_secret(settings.mailchimp_secret_arn)["api_key"]
    return MailchimpClient(api_key, settings.mailchimp_api_url, settings.mailchimp_timeout_seconds)


@cache
def onboarding_deps() -> OnboardingDeps:
    from memberflow.adapters.member_store import MemberStore
    from memberflow.adapters.trace_store import DynamoTraceStore
    from memberflow.onboarding import OnboardingDeps, OnboardingRules
    from memberflow.welcome import WelcomeJourney

    settings = load_settings(OnboardingSettings)
    return OnboardingDeps(
        mailchimp=mailchimp_client(settings),
        members=MemberStore(settings.members_table_name),
        trace=DynamoTraceStore(settings.trace_table_name),
        rules=OnboardingRules(
            list_id=settings.mailchimp_list_id,
            welcome_journey=WelcomeJourney(settings.welcome_journey_id, settings.welcome_journey_step_id),
            drip_step_days=settings.drip_step_days,
        ),
    )


@cache
def redelivery_policy() -> RedeliveryPolicy:
    from memberflow.queue_worker import RedeliveryPolicy

    settings = load_settings(OnboardingSettings)
    return RedeliveryPolicy(
        queue_url=settings.member_events_queue_url,
        dead_letter_queue_url=settings.dead_letter_queue_url,
        max_receive_count=settings.max_receive_count,
        retry_base_seconds=settings.retry_base_seconds,
    )


@cache
def drip_deps() -> DripDeps:
    from memberflow.adapters.member_store import MemberStore
    from memberflow.adapters.trace_store import DynamoTraceStore
    from memberflow.drip import DripDeps
    from memberflow.welcome import WelcomeJourney

    settings = load_settings(DripSettings)
    return DripDeps(
        mailchimp=mailchimp_client(settings),
        members=MemberStore(settings.members_table_name),
        trace=DynamoTraceStore(settings.trace_table_name),
        list_id=settings.mailchimp_list_id,
        step_days=settings.drip_step_days,
        welcome_journey=WelcomeJourney(settings.welcome_journey_id, settings.welcome_journey_step_id),
    )


def reset() -> None:
    """Forget everything built from the environment, as a new container would (the local stack and tests change
    the environment between runs)."""
    from memberflow.adapters import aws, secrets

    for built in (intake_deps, onboarding_deps, redelivery_policy, drip_deps, load_settings, aws.client, aws.table):
        built.cache_clear()
    secrets.clear_cache()
