"""The bulk import consumer's wiring: onboarding's pieces from the container, with the import's own rules."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from memberflow.config import ImportSettings, load_settings
from memberflow.runtime.container import container

if TYPE_CHECKING:
    from memberflow.onboarding.imports import ImportDeps, ImportRules


def import_rules(settings: ImportSettings) -> ImportRules:
    from memberflow.onboarding.imports import ImportRules

    return ImportRules(
        welcome_window_days=settings.import_welcome_window_days,
        journey_tag=settings.journey_tag,
    )


def consumer_settings() -> ImportSettings:
    """Every variable the import needs, its own queue's included (not onboarding's `QUEUE_URL`)."""
    return load_settings(ImportSettings)


@cache
def import_deps() -> ImportDeps:
    from memberflow.onboarding.imports import ImportDeps

    onboarding = container().onboarding
    return ImportDeps(
        bulk=onboarding.mailing_list,  # type: ignore[arg-type]  # MailchimpList implements both ports
        mailing_list=onboarding.mailing_list,
        members=onboarding.members,
        due_work=onboarding.due_work,
        trace=onboarding.trace,
        suppressions=onboarding.suppressions,
        rules=onboarding.rules,
        ledger=onboarding.ledger,
        consent_rules=onboarding.consent_rules,
        import_rules=import_rules(load_settings(ImportSettings)),
        activity=onboarding.activity,  # flushed by the SQS consumer after each batch, as onboarding's
    )
