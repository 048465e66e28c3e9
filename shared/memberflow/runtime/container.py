"""One container per cold start, built lazily: each dependency is created on first use, so a function pays only
for what it runs, and the pieces two capabilities share (the Mailchimp client, the member store, the trace) are
built once. Imports stay inside the builders for the same reason."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from memberflow.config import (
    ActivitySettings,
    ConsumerSettings,
    DripSettings,
    EventbriteApiSettings,
    EventbriteClientSettings,
    IntakeSettings,
    MailchimpSettings,
    MembersSettings,
    RedriveService,
    RedriveSettings,
    SuppressionSettings,
    TraceSettings,
    WelcomeSettings,
    ZendeskApiSettings,
    load_settings,
)

if TYPE_CHECKING:
    from memberflow.adapters.activity_log import S3ActivityLog
    from memberflow.adapters.consent_ledger import DynamoConsentLedger
    from memberflow.adapters.due_work import DynamoDueWorkIndex
    from memberflow.adapters.eventbrite import EventbriteClient
    from memberflow.adapters.mailchimp import MailchimpList
    from memberflow.adapters.member_profiles import DynamoMemberRepository
    from memberflow.adapters.suppressions import DynamoSuppressionList
    from memberflow.adapters.trace_store import DynamoTraceStore
    from memberflow.adapters.zendesk import ZendeskDesk
    from memberflow.intake.service import IntakeDeps
    from memberflow.onboarding.consent_ledger import ConsentRules
    from memberflow.onboarding.drip import DripDeps
    from memberflow.onboarding.join import OnboardingDeps
    from memberflow.pipeline.redrive import RedriveReport
    from memberflow.pipeline.worker import Handler, Worker

logger = logging.getLogger(__name__)


class Container:
    @cached_property
    def trace(self) -> DynamoTraceStore:
        from memberflow.adapters.trace_store import DynamoTraceStore

        return DynamoTraceStore(load_settings(TraceSettings).trace_table_name)

    @cached_property
    def members(self) -> DynamoMemberRepository:
        from memberflow.adapters.member_profiles import DynamoMemberRepository

        return DynamoMemberRepository(load_settings(MembersSettings).members_table_name)

    @cached_property
    def due_work(self) -> DynamoDueWorkIndex:
        from memberflow.adapters.due_work import DynamoDueWorkIndex

        return DynamoDueWorkIndex(load_settings(MembersSettings).members_table_name)

    @cached_property
    def suppressions(self) -> DynamoSuppressionList:
        from memberflow.adapters.secrets import get_json_secret
        from memberflow.adapters.suppressions import DynamoSuppressionList

        settings = load_settings(SuppressionSettings)
        return DynamoSuppressionList(
            settings.members_table_name,
            lambda: str(get_json_secret(settings.suppression_key_secret_arn)["suppression_key"]).encode(),
        )

    @cached_property
    def mailing_list(self) -> MailchimpList:
        from memberflow.adapters.mailchimp import MailchimpList
        from memberflow.adapters.secrets import get_json_secret

        settings = load_settings(MailchimpSettings)

        def api_key(fresh: bool) -> str:
            return str(get_json_secret(settings.mailchimp_secret_arn, fresh=fresh)["api_key"])

        return MailchimpList(api_key, settings.mailchimp_api_url, settings.mailchimp_timeout_seconds)

    @cached_property
    def intake(self) -> IntakeDeps:
        from functools import partial

        from memberflow.adapters.delivery_log import DynamoDeliveryLog
        from memberflow.adapters.secrets import get_json_secret
        from memberflow.adapters.sqs import SqsEventRouter
        from memberflow.events import CATALOG
        from memberflow.intake.registry import build_registry
        from memberflow.intake.service import IntakeDeps

        settings = load_settings(IntakeSettings)
        watchers, categories = _escalation_intake()
        return IntakeDeps(
            queue=SqsEventRouter(settings.event_destinations, CATALOG),
            trace=self.trace,
            # Fetched on use, not here: the secret is cached for a few minutes so rotation is picked up.
            secrets=partial(get_json_secret, settings.webhook_secrets_arn),
            registry=build_registry(
                settings.discourse_consent_user_field or None,
                settings.discourse_require_approval,
                categories,
                load_settings(EventbriteApiSettings).eventbrite_api_url,
            ),
            max_body_bytes=settings.max_body_bytes,
            replay_window_seconds=settings.replay_window_seconds,
            deliveries=DynamoDeliveryLog(settings.deliveries_table_name),
            watchers=watchers,
        )

    @cached_property
    def onboarding(self) -> OnboardingDeps:
        from memberflow.onboarding.join import OnboardingDeps

        return OnboardingDeps(
            mailing_list=self.mailing_list,
            members=self.members,
            due_work=self.due_work,
            trace=self.trace,
            rules=self._onboarding_rules(),
            suppressions=self.suppressions,
            erasure_participants=_erasure_participants(),
            ledger=self.consent_ledger,
            consent_rules=self.consent_rules,
            activity=self.activity_log,
        )

    @cached_property
    def drip(self) -> DripDeps:
        from memberflow.onboarding.drip import DripDeps

        rules = self._onboarding_rules()
        load_settings(DripSettings)  # every variable the drip needs, named at once if one is missing
        return DripDeps(
            mailing_list=self._welcoming_list(rules.list_id),
            members=self.members,
            due_work=self.due_work,
            trace=self.trace,
            list_id=rules.list_id,
            step_days=rules.drip_step_days,
            welcome_journey=rules.welcome_journey,
            ledger=self.consent_ledger,
            consent_rules=self.consent_rules,
            activity=self.activity_log,
        )

    def _welcoming_list(self, list_id: str) -> Any:
        """Mailchimp as the welcome journey starts: by its API trigger, or by a tag (WelcomeJourneyTrigger=tag)."""
        from memberflow.config import JourneyTriggerSettings

        tag = load_settings(JourneyTriggerSettings).journey_tag
        if not tag:
            return self.mailing_list
        from memberflow.onboarding.bursts import BurstMailingList

        return BurstMailingList(self.mailing_list, list_id, journey_tag=tag)

    @property
    def onboarding_worst_case_ms(self) -> int:
        """The time an onboarding event is only started with: derived from the Mailchimp and AWS clients' timeouts."""
        from memberflow.adapters.aws import WORST_CASE_CALL_SECONDS
        from memberflow.onboarding.consumer import worst_case_ms_per_event

        return worst_case_ms_per_event(self.mailing_list.worst_case_call_seconds, WORST_CASE_CALL_SECONDS)

    def _onboarding_rules(self) -> Any:
        from memberflow.onboarding.rules import OnboardingRules, WelcomeJourney

        settings = load_settings(WelcomeSettings)
        return OnboardingRules(
            list_id=settings.mailchimp_list_id,
            welcome_journey=WelcomeJourney(settings.welcome_journey_id, settings.welcome_journey_step_id),
            drip_step_days=settings.drip_step_days,
        )

    def redrive_parked(self) -> RedriveReport:
        """Every configured dead-letter queue, once, if the services its consumer calls (REDRIVE_WAITS_ON) answer;
        each service is asked at most once per run, however many queues wait on it. Every probe is built first (that
        makes no call), so a service whose settings this function lacks fails the run before any queue is touched."""
        from functools import partial

        from memberflow.adapters.sqs import SqsDeadLetters
        from memberflow.pipeline.redrive import RedriveReport, redrive_parked

        settings = load_settings(RedriveSettings)
        probes = {service: self._availability_probe(service) for service in settings.services}
        answered: dict[str, bool] = {}

        def answers(service: str) -> bool:
            if service not in answered:
                answered[service] = probes[service]()
            return answered[service]

        total = RedriveReport()
        for dead_letter_queue_url, source_queue_url in settings.redrives.items():
            services = settings.services_for(dead_letter_queue_url)
            report = redrive_parked(
                SqsDeadLetters(dead_letter_queue_url, source_queue_url),
                {service: partial(answers, service) for service in services},
                max_messages=settings.max_messages_per_run,
                max_redrives=settings.max_auto_redrives,
            )
            logger.info(
                "dead-letter queue looked at",
                extra={
                    "dead_letter_queue": queue_name(dead_letter_queue_url),
                    "services": list(services),
                    "service_available": report.service_available,
                    "redriven": report.redriven,
                    "kept": report.kept,
                },
            )
            total.service_available = total.service_available and report.service_available
            total.failing_services += [s for s in report.failing_services if s not in total.failing_services]
            total.redriven += report.redriven
            total.kept += report.kept
        return total

    def _availability_probe(self, service: RedriveService) -> Callable[[], bool]:
        """How the redrive asks whether `service` answers: one cheap authenticated read, not resent. `ConfigError`
        when this function's environment lacks the service's settings; building the client makes no call."""
        if service == "zendesk":
            return self._zendesk_probe().is_available
        if service == "eventbrite":
            return self.eventbrite.is_available
        return self.mailing_list.is_available

    def _zendesk_probe(self) -> ZendeskDesk:
        """Zendesk as memberflow's API user, built for each redrive run: the credentials are read again (a rotated
        token is picked up), and a rate limit is not waited out (the next run asks again)."""
        return zendesk_desk(load_settings(ZendeskApiSettings), PROBE_RATELIMIT_BUDGET_SECONDS)

    @cached_property
    def eventbrite(self) -> EventbriteClient:
        """Eventbrite with the OAuth token (read again when Eventbrite refuses it): event sync's, and the redrive's
        availability probe."""
        from memberflow.adapters.eventbrite import EventbriteClient
        from memberflow.adapters.secrets import get_json_secret

        settings = load_settings(EventbriteClientSettings)

        def token(fresh: bool) -> str:
            return str(get_json_secret(settings.eventbrite_secret_arn, fresh=fresh)["oauth_token"])

        return EventbriteClient(token, settings.eventbrite_api_url, settings.eventbrite_timeout_seconds)

    def worker(
        self,
        consumer: str,
        handlers: Mapping[str, Handler],
        before: Callable[[Any], None] | None,
        settings: ConsumerSettings | None = None,
    ) -> Worker:
        from memberflow.adapters.sqs import SqsWorkQueue
        from memberflow.events import CATALOG
        from memberflow.pipeline.health import ServiceHealth
        from memberflow.pipeline.policy import RetryPolicy
        from memberflow.pipeline.worker import Worker

        settings = settings or load_settings(ConsumerSettings)
        policy = RetryPolicy(
            max_attempts=settings.max_receive_count,
            retry_base_seconds=settings.retry_base_seconds,
            max_receives=settings.max_deliveries,
        )
        return Worker(
            catalog=CATALOG,
            handlers=handlers,
            queue=SqsWorkQueue(
                settings.queue_url, settings.dead_letter_queue_url, settings.idempotency_table_name, consumer
            ),
            trace=self.trace,
            policy=policy,
            health=ServiceHealth(
                open_seconds=max(1.0, float(settings.retry_base_seconds)),
                max_open_seconds=float(policy.max_service_backoff),
            ),
            before=before,
        )

    @cached_property
    def consent_ledger(self) -> DynamoConsentLedger:
        from memberflow.adapters.consent_ledger import DynamoConsentLedger

        return DynamoConsentLedger(load_settings(MembersSettings).members_table_name)

    @cached_property
    def consent_rules(self) -> ConsentRules:
        from memberflow.config import ConsentSettings

        return consent_rules_from(load_settings(ConsentSettings))

    @cached_property
    def activity_log(self) -> S3ActivityLog | None:
        """The activity log in S3 (None where the function has no bucket configured)."""
        from memberflow.adapters.activity_log import S3ActivityLog
        from memberflow.adapters.secrets import get_json_secret

        settings = load_settings(ActivitySettings)
        if not settings.activity_bucket_name:
            return None
        return S3ActivityLog(
            settings.activity_bucket_name,
            lambda: str(get_json_secret(settings.activity_key_secret_arn)["activity_key"]).encode(),
        )

    def flush_activity(self) -> int:
        """Write the activity records buffered by this invocation (nothing when no log was used). A failure is logged
        and the records stay buffered for the next invocation: the members' events themselves went through."""
        log = self.__dict__.get("activity_log")
        if log is None:
            return 0
        try:
            return log.flush()
        except Exception as failure:
            logger.warning(
                "activity records not written yet",
                extra={"reason": str(failure), "failure": type(failure).__name__, "buffered": log.pending},
            )
            return 0


PROBE_RATELIMIT_BUDGET_SECONDS = 1
"""The Zendesk probe waits out no rate limit (Zendesk's Retry-After is at least 1 s): a Zendesk that throttles counts as
not answering until the next run."""


def queue_name(queue_url: str) -> str:
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def _escalation_intake() -> tuple[tuple[Any, ...], dict[str, str]]:
    """The escalation rules' look at every delivery, and the categories `POST /escalations` accepts; none when the
    stack has no escalation rules configured for intake."""
    from memberflow.runtime.escalation import intake_watchers

    return intake_watchers()


def _erasure_participants() -> tuple[Any, ...]:
    from memberflow.runtime import escalation, event_sync

    return escalation.erasure_participants() + event_sync.erasure_participants()


def consent_rules_from(settings: Any) -> ConsentRules:
    """The consent ledger's rules from `config.ConsentSettings` (the ConsentWording and marketing permission
    parameters)."""
    from memberflow.ledger import Wording
    from memberflow.onboarding.consent_ledger import ConsentRules

    return ConsentRules(
        wording={platform: Wording(w["text"], w["version"]) for platform, w in settings.consent_wording.items()},
        marketing_permission_ids=settings.marketing_permission_ids,
    )


@cache
def container() -> Container:
    return Container()


def reset() -> None:
    """Forget everything built from the environment, as a new container would (the local stack and tests change
    the environment between runs)."""
    from memberflow.adapters import aws, secrets
    from memberflow.runtime import bursts, escalation, event_sync, imports

    for built in (container, load_settings, aws.client, aws.table, event_sync.sync_deps):
        built.cache_clear()
    bursts.reset()
    imports.import_deps.cache_clear()
    secrets.clear_cache()
    escalation.reset()


def zendesk_desk(settings: ZendeskApiSettings, ratelimit_budget_seconds: int) -> ZendeskDesk:
    """Zendesk as memberflow's API user (the escalation's, and the redrive's probe), waiting out a rate limit only
    within `ratelimit_budget_seconds`."""
    from memberflow.adapters.secrets import get_json_secret
    from memberflow.adapters.zendesk import ZendeskDesk

    return ZendeskDesk(
        lambda: get_json_secret(settings.zendesk_secret_arn),
        settings.zendesk_subdomain,
        api_url=settings.zendesk_api_url,
        ratelimit_budget_seconds=ratelimit_budget_seconds,
    )
