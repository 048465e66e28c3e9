"""The escalation's wiring: its settings, Zendesk, the ticket links, the messenger, the rules; and what intake gets
from the rules (the watcher and the categories `POST /escalations` accepts). Built once per container, lazily."""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from memberflow.config import EscalationSettings, load_settings

if TYPE_CHECKING:
    from memberflow.adapters.zendesk import ZendeskDesk
    from memberflow.escalation.rules import EscalationRules
    from memberflow.escalation.service import EscalationDeps

RULES_FILE_VARIABLE = "ESCALATION_RULES_FILE"


@cache
def rules() -> EscalationRules:
    """The escalation rules (a bad file fails here, at cold start, naming the rule and the field)."""
    from memberflow.escalation.rules import load_rules

    return load_rules(os.environ.get(RULES_FILE_VARIABLE) or None)


def intake_watchers() -> tuple[tuple[Any, ...], dict[str, str]]:
    from memberflow.escalation.watch import EscalationWatcher

    loaded = rules()
    categories: dict[str, str] = {}
    for rule in sorted(loaded.rules, key=lambda r: ("urgent", "high", "normal", "low").index(r.priority)):
        categories.setdefault(rule.category, rule.name)
    return (EscalationWatcher(loaded),), categories


def settings() -> EscalationSettings:
    return load_settings(EscalationSettings)


@cache
def desk() -> ZendeskDesk:
    from memberflow.runtime.container import zendesk_desk

    config = settings()
    return zendesk_desk(config, config.zendesk_ratelimit_budget_seconds)


@cache
def deps() -> EscalationDeps:
    from memberflow.adapters.member_messages import DiscourseReplies, MemberMessenger, SesEmail, SlackMessages
    from memberflow.adapters.secrets import get_json_secret
    from memberflow.adapters.ticket_links import DynamoTicketLinks
    from memberflow.escalation.service import EscalationDeps
    from memberflow.runtime.container import container

    config = settings()

    def slack_token(fresh: bool) -> str:
        return str(get_json_secret(config.slack_secret_arn, fresh=fresh)["bot_token"])

    def discourse_credentials(fresh: bool) -> dict[str, Any]:
        return get_json_secret(config.discourse_secret_arn, fresh=fresh)

    # Both read their secret again (past the cache) once when the service refuses it: a rotated token or key is
    # picked up without a redeploy.
    slack = SlackMessages(slack_token, config.slack_api_url)
    discourse = DiscourseReplies(config.discourse_url, discourse_credentials) if config.discourse_url else None
    return EscalationDeps(
        desk=desk(),
        links=DynamoTicketLinks(config.ticket_links_table_name),
        messenger=MemberMessenger(slack, config.moderators_channel, discourse, SesEmail(config.email_from)),
        rules=rules(),
        trace=container().trace,
        activity=container().activity_log,
        # The suppression list (members table, SuppressionKeySecret): escalations queued before their author's
        # erasure are dropped.
        suppressions=container().suppressions,
    )


def worst_case_ms_per_message() -> int:
    """An escalation is only started with this much time left: its most Zendesk calls (the requester, the ticket, a
    job status and a lookup by external id, each with its brief retries and rate-limit budget), one Slack post and
    eight DynamoDB calls (two of them the suppression list: was the author erased?). With the defaults:
    4 x 22 s + 10 s + 8 x 10 s = 178 s.

    The Slack post's 10 s is its real worst case (member_messages.SLACK_POST_SECONDS): two attempts of the 4 s
    request timeout with the longest inline pause (2 s) between them; its retries (a connection error, a 429's short
    Retry-After, a resend with a token read again) only start when they still end within it. A status change (at
    most a Slack post or a Discourse reply, then an email, and three DynamoDB calls) takes less."""
    from memberflow.adapters.aws import WORST_CASE_CALL_SECONDS
    from memberflow.adapters.member_messages import SLACK_POST_SECONDS

    return int((4 * desk().worst_case_call_seconds + SLACK_POST_SECONDS + 8 * WORST_CASE_CALL_SECONDS) * 1000)


def reset() -> None:
    for built in (rules, desk, deps):
        built.cache_clear()


ERASURE_QUEUE_VARIABLE = "ESCALATION_QUEUE_URL"


class EscalationErasure:
    """`ports.ErasureParticipant` for the onboarding erasure: hands the person's addresses and identities on to the
    escalation queue (a `requester_erased` event), where the Zendesk credentials and the ticket links are."""

    def __init__(self, queue_url: str) -> None:
        self._queue_url = queue_url

    def forget(self, emails: list[str], identities: list[str], erasure_key: str, correlation_id: str) -> str:
        from memberflow.adapters.sqs import SqsEventRouter
        from memberflow.events import CATALOG, ESCALATIONS, RequesterErased
        from memberflow.pipeline.envelope import QueuedEvent

        router = SqsEventRouter({ESCALATIONS: self._queue_url}, CATALOG)
        router.send(
            QueuedEvent(
                idempotency_key=f"{erasure_key}:zendesk"[:500],
                correlation_id=correlation_id,
                source="erasure",
                event=RequesterErased(emails=emails, identities=identities),
            )
        )
        return "Zendesk user and ticket links: handed on to the escalation queue"


def erasure_participants() -> tuple[EscalationErasure, ...]:
    """The escalation's part of an erasure, when the function's stack has an escalation queue."""
    queue_url = os.environ.get(ERASURE_QUEUE_VARIABLE, "")
    return (EscalationErasure(queue_url),) if queue_url else ()
