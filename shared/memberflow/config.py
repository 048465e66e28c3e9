"""Each function's environment, validated once at cold start: a bad or missing variable is named in the error.
Settings share their common fields by inheritance: a function's settings class lists the groups it needs."""

from __future__ import annotations

import json
import os
import re
from functools import cache
from typing import Literal, TypeVar

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from memberflow.schema import Model


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


class _Env(Model):
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


RedriveService = Literal["mailchimp", "zendesk", "eventbrite"]
"""A service the redrive can ask whether it answers (one cheap authenticated read each)."""
DEFAULT_REDRIVE_WAITS_ON: tuple[RedriveService, ...] = ("mailchimp",)
"""What a dead-letter queue that REDRIVE_WAITS_ON does not list waits on: the service most consumers call."""


class RedriveSettings(_Env):
    """The dead-letter redrive: which dead-letter queue goes back to which queue, and once which services answer.
    Each service's own settings (`MailchimpSettings`, `ZendeskApiSettings`, `EventbriteClientSettings`) are read only
    when a queue waits on it."""

    redrives: dict[str, str] = Field(alias="REDRIVES")
    """Dead-letter queue URL -> the queue its messages came from."""
    waits_on: dict[str, tuple[RedriveService, ...]] = Field(default_factory=dict, alias="REDRIVE_WAITS_ON")
    """Dead-letter queue URL -> the services the consumer of its queue calls: its messages go back only once each of
    them answers. A queue not listed waits on Mailchimp."""
    max_messages_per_run: int = Field(default=100, alias="REDRIVE_MAX_MESSAGES", ge=1)
    max_auto_redrives: int = Field(default=3, alias="REDRIVE_MAX_TIMES", ge=1)

    @field_validator("redrives", "waits_on", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("waits_on")
    @classmethod
    def _services(cls, value: dict[str, tuple[RedriveService, ...]]) -> dict[str, tuple[RedriveService, ...]]:
        empty = [queue for queue, services in value.items() if not services]
        if empty:
            raise ValueError(f"each dead-letter queue waits on one service at least; none given for {empty}")
        return {queue: tuple(dict.fromkeys(services)) for queue, services in value.items()}

    @model_validator(mode="after")
    def _known_queues(self) -> RedriveSettings:
        unknown = sorted(set(self.waits_on) - set(self.redrives))
        if unknown:
            raise ValueError(f"REDRIVE_WAITS_ON names dead-letter queues that REDRIVES does not redrive: {unknown}")
        return self

    def services_for(self, dead_letter_queue_url: str) -> tuple[RedriveService, ...]:
        """The services this dead-letter queue's messages wait on."""
        return self.waits_on.get(dead_letter_queue_url, DEFAULT_REDRIVE_WAITS_ON)

    @property
    def services(self) -> tuple[RedriveService, ...]:
        """Every service some redriven queue waits on, each once."""
        return tuple(dict.fromkeys(s for queue in self.redrives for s in self.services_for(queue)))


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


class RegistrationsConsumerSettings(ConsumerSettings):
    """The event sync consumer's queue and dead-letter queue, named apart from onboarding's: the local stack runs every
    function in one process, where two functions' `QUEUE_URL` would be one variable."""

    queue_url: str = Field(alias="REGISTRATIONS_QUEUE_URL")
    dead_letter_queue_url: str = Field(alias="REGISTRATIONS_DEAD_LETTER_QUEUE_URL")


class ImportConsumerSettings(ConsumerSettings):
    """The bulk import consumer's queue and dead-letter queue, named apart as event sync's are."""

    queue_url: str = Field(alias="MEMBER_IMPORT_QUEUE_URL")
    dead_letter_queue_url: str = Field(alias="MEMBER_IMPORT_DEAD_LETTER_QUEUE_URL")


class ZendeskApiSettings(_Env):
    """What reaching Zendesk as memberflow's API user takes: the escalation's, and the redrive's availability probe."""

    zendesk_secret_arn: str = Field(alias="ZENDESK_SECRET_ARN")
    """{"email", "api_token"} of the Zendesk API user."""
    zendesk_subdomain: str = Field(alias="ZENDESK_SUBDOMAIN", min_length=1)
    zendesk_api_url: str = Field(default="", alias="ZENDESK_API_URL")
    """Empty: https://<subdomain>.zendesk.com; else another host (a sandbox)."""


class EscalationSettings(ConsumerSettings, ZendeskApiSettings):
    """The escalation consumer: its own queue (named apart: the local stack runs every function in one process),
    the ticket links, Zendesk, and the channels that reach moderators and members."""

    queue_url: str = Field(alias="ESCALATION_QUEUE_URL")
    dead_letter_queue_url: str = Field(alias="ESCALATION_DEAD_LETTER_QUEUE_URL")
    ticket_links_table_name: str = Field(alias="TICKET_LINKS_TABLE_NAME", min_length=1)
    rules_file: str = Field(default="", alias="ESCALATION_RULES_FILE")
    """Empty: the rules shipped with the layer (memberflow/escalation/escalation-rules.json)."""
    zendesk_ratelimit_budget_seconds: int = Field(default=5, alias="ZENDESK_RATELIMIT_BUDGET_SECONDS", ge=1, le=17)
    slack_secret_arn: str = Field(alias="SLACK_SECRET_ARN")
    """{"bot_token"} of the Slack app that posts replies and moderator alerts."""
    slack_api_url: str = Field(default="", alias="SLACK_API_URL")
    moderators_channel: str = Field(default="", alias="ESCALATION_MODERATORS_CHANNEL")
    discourse_secret_arn: str = Field(alias="DISCOURSE_API_SECRET_ARN")
    """{"api_key", "api_username"} for replies in forum topics."""
    discourse_url: str = Field(default="", alias="DISCOURSE_URL")
    email_from: str = Field(default="", alias="ESCALATION_EMAIL_FROM")


class ConsentSettings(_Env):
    """The consent ledger's configuration: the wording each source asks members to agree to, and the audience's
    marketing permissions (GDPR fields) to enable for members who consented."""

    consent_wording: dict[str, dict[str, str]] = Field(default_factory=dict, alias="CONSENT_WORDING")
    """Platform -> {"text", "version"}, e.g. {"discourse": {"text": "Send me the newsletter", "version": "2"}}."""
    marketing_permission_ids: tuple[str, ...] = Field(default=(), alias="MAILCHIMP_MARKETING_PERMISSION_IDS")

    @field_validator("consent_wording", mode="before")
    @classmethod
    def _wording(cls, value: object) -> object:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if not isinstance(value, dict) or not all(
            isinstance(wording, dict) and isinstance(wording.get("text"), str) and wording.get("version")
            for wording in value.values()
        ):
            raise ValueError('must map each platform to {"text": ..., "version": ...}')
        return {platform: {"text": w["text"], "version": str(w["version"])} for platform, w in value.items()}

    @field_validator("marketing_permission_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class ActivitySettings(_Env):
    """The activity log (S3) the functions append to for the health report; an empty bucket name: not recorded."""

    activity_bucket_name: str = Field(default="", alias="ACTIVITY_BUCKET_NAME")
    activity_key_secret_arn: str = Field(default="", alias="ACTIVITY_KEY_SECRET_ARN")
    """The secret holding {"activity_key"}: the key of the keyed hash that names members in the log."""


class HealthReportSettings(ActivitySettings):
    """The weekly health report: Athena over the activity log, the page in S3, the Slack announcement."""

    athena_workgroup: str = Field(alias="ATHENA_WORKGROUP", min_length=1)
    athena_database: str = Field(alias="ATHENA_DATABASE", min_length=1)
    athena_table: str = Field(default="activity", alias="ATHENA_TABLE", min_length=1)
    report_bucket_name: str = Field(alias="REPORT_BUCKET_NAME", min_length=1)
    community_name: str = Field(default="our community", alias="COMMUNITY_NAME")
    slack_secret_arn: str = Field(default="", alias="SLACK_SECRET_ARN")
    """The secret holding {"bot_token"} (xoxb-...); empty: no announcement."""
    slack_channel: str = Field(default="", alias="REPORT_SLACK_CHANNEL")
    report_link_base: str = Field(default="", alias="REPORT_LINK_BASE")
    """Where readers open the pages (a CloudFront or intranet URL in front of the bucket); empty: a presigned link."""
    email_from: str = Field(default="", alias="REPORT_EMAIL_FROM")
    email_to: str = Field(default="", alias="REPORT_EMAIL_TO")
    """Comma-separated; empty: no email (SES)."""
    activity_retention_days: int = Field(default=400, alias="ACTIVITY_RETENTION_DAYS", ge=60)
    """How long the activity log is kept (`ActivityRetentionDays`): how far back "first ever" looks."""


class WinbackCampaignSettings(MembersSettings):
    """What reading win-back campaigns needs (the preview too): the members table and the campaign file."""

    campaigns_file: str = Field(default="campaigns.json", alias="WINBACK_CAMPAIGNS_FILE", min_length=1)
    """The campaign file, relative to the function's code (or an absolute path)."""


class WinbackSettings(WinbackCampaignSettings, MailchimpSettings):
    """The win-back run: the members table (its inactivity index and win-back records), Mailchimp, the results."""

    results_bucket: str = Field(alias="WINBACK_RESULTS_BUCKET", min_length=1)
    safety_margin_seconds: int = Field(default=120, alias="WINBACK_SAFETY_MARGIN_SECONDS", ge=10)
    """A run stops reading new pages when less time than this is left, and continues in the next invocation."""


class JourneyTriggerSettings(_Env):
    """How the welcome journey starts (template parameter WelcomeJourneyTrigger)."""

    welcome_journey_trigger: str = Field(default="api", alias="WELCOME_JOURNEY_TRIGGER", pattern="^(api|tag)$")
    """api: one trigger call per member; tag: the journey starts on "tag added" (`welcome_journey_tag`)."""
    welcome_journey_tag: str = Field(default="welcome", alias="WELCOME_JOURNEY_TAG", min_length=1)

    @property
    def journey_tag(self) -> str:
        """The tag that starts the journey, or empty for the API trigger."""
        return self.welcome_journey_tag if self.welcome_journey_trigger == "tag" else ""


class ImportSettings(ImportConsumerSettings, SuppressionSettings, WelcomeSettings, JourneyTriggerSettings):
    """The bulk import consumer: onboarding's settings, and who of the imported members is welcomed, and how."""

    import_welcome_window_days: int = Field(default=0, alias="IMPORT_WELCOME_WINDOW_DAYS", ge=0)
    """Imported members who joined at most this many days ago get the welcome journey (0: nobody)."""


class EventbriteApiSettings(_Env):
    eventbrite_api_url: str = Field(default="https://www.eventbriteapi.com/v3", alias="EVENTBRITE_API_URL")
    """The Eventbrite API (a sandbox's URL locally): webhooks' `api_url` must lead here, and only here is fetched."""


class EventbriteClientSettings(EventbriteApiSettings):
    """What calling Eventbrite with the OAuth token takes: event sync's, and the redrive's availability probe."""

    eventbrite_secret_arn: str = Field(alias="EVENTBRITE_SECRET_ARN")
    """The secret holding {"oauth_token"}."""
    eventbrite_timeout_seconds: float = Field(default=5.0, alias="EVENTBRITE_TIMEOUT_SECONDS", gt=0)


class SyncedEvent(Model):
    """An event whose registrations are synced: its slug (in Mailchimp tags), its Eventbrite event, and the Zoom
    webinar or meeting it is held in, if any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    eventbrite_event_id: str = Field(pattern=r"^[0-9]{1,32}$")
    zoom_id: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")


class EventSyncSettings(TraceSettings, SuppressionSettings, MailchimpSettings, EventbriteClientSettings):
    """The event sync consumer and the reconciliation run."""

    registrations_table_name: str = Field(alias="REGISTRATIONS_TABLE_NAME")
    eventbrite_organization_id: str = Field(default="", alias="EVENTBRITE_ORGANIZATION_ID")
    """Resources of this organization are synced (besides those of the configured events); empty: only those."""
    synced_events: tuple[SyncedEvent, ...] = Field(default=(), alias="SYNCED_EVENTS")
    reconcile_recent_days: int = Field(default=7, alias="RECONCILE_RECENT_DAYS", ge=0)
    """Events that ended at most this many days ago are still reconciled (late check-ins, refunds)."""
    reconcile_eventbrite_call_budget: int = Field(default=250, alias="RECONCILE_EVENTBRITE_CALL_BUDGET", ge=2)
    """Eventbrite calls one reconciliation run may make (event reads and attendee pages, each attempt counted); the
    run stops there and leaves the other events for the next run, which starts with them. The default: a quarter of
    the 1,000 calls an hour quoted as Eventbrite's lower limit per OAuth token (its error reference says 2,000),
    for one run an hour (`ReconcileSchedule`'s default `rate(1 hour)`): 250, 50 attendees a page, so an event of up
    to about 12,000 attendees fits one run. The rest of the hour is left to the webhook fetches, which share the
    token. Run it more often and lower this alike (`rate(30 minutes)`: 125). At least 2 (an event read and a page).
    """

    @field_validator("synced_events", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value
