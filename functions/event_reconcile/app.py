"""Scheduled reconciliation: repairs registrations the webhooks missed, cancels those Eventbrite no longer lists,
tags no-shows after an event, and reports what it repaired, with each event's figures, which events were left for
the next run, and the Eventbrite calls it made out of its budget (`RECONCILE_EVENTBRITE_CALL_BUDGET`)."""

from dataclasses import asdict

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.config import EventSyncSettings, load_settings
from memberflow.models import ScheduledRun
from memberflow.registrations.figures import figures
from memberflow.registrations.reconcile import CallBudget, raise_if_incomplete, reconcile_all
from memberflow.runtime.container import container
from memberflow.runtime.event_sync import sync_deps

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    run = ScheduledRun.model_validate(event)
    deps = sync_deps()
    settings = load_settings(EventSyncSettings)
    budget = CallBudget(settings.reconcile_eventbrite_call_budget)
    try:
        reports = reconcile_all(
            deps,
            recent_days=settings.reconcile_recent_days,
            correlation_id=run.id or context.aws_request_id,
            budget=budget,
        )
    finally:
        container().flush_activity()
    # One figure every run, even with no event to reconcile: the schedule is seen to fire, and the metrics flush is
    # never empty.
    done = [report for report in reports if not report.left]
    left = [{"event_slug": report.event_slug, "reason": report.left} for report in reports if report.left]
    metrics.add_metric(name="EventsReconciled", unit=MetricUnit.Count, value=len(done))
    metrics.add_metric(name="EventsLeftForNextRun", unit=MetricUnit.Count, value=len(left))
    metrics.add_metric(name="EventbriteCalls", unit=MetricUnit.Count, value=budget.spent)
    answer = []
    for report in done:
        repaired = report.created + report.changed
        metrics.add_metric(name="RegistrationsRepaired", unit=MetricUnit.Count, value=repaired)
        event_figures = figures(report.event_slug, deps.registrations.for_event(report.event_slug))
        logger.info("event reconciled", extra={"report": asdict(report), "figures": event_figures.as_dict()})
        answer.append({"report": asdict(report), "figures": event_figures.as_dict()})
    raise_if_incomplete(reports)  # an account problem or a defect: the run fails (and alarms) after the others
    calls = {"made": budget.spent, "budget": budget.limit}
    return {"events": answer, "left_for_next_run": left, "eventbrite_calls": calls}
