"""Win-back's wiring: the campaign file, the DynamoDB store, Mailchimp's bulk tags, the S3 results file."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from memberflow.config import MembersSettings, WinbackCampaignSettings, WinbackSettings, load_settings
from memberflow.errors import AccountProblem, Transient
from memberflow.runtime.container import container
from memberflow.winback.campaign import CampaignFile, parse_campaigns
from memberflow.winback.ports import RunReport
from memberflow.winback.run import WinbackDeps, run_campaign, write_results

logger = logging.getLogger(__name__)


def campaigns(code_root: str) -> CampaignFile:
    """The campaign file, validated (a bad file fails the invocation, naming the field); parsed once per version."""
    configured = Path(load_settings(WinbackCampaignSettings).campaigns_file)
    path = configured if configured.is_absolute() else Path(code_root) / configured
    return _parsed(str(path), path.stat().st_mtime_ns)


@cache
def _parsed(path: str, modified_ns: int) -> CampaignFile:
    return parse_campaigns(Path(path).read_text(), Path(path).name)


PREVIEW_SETTINGS = (WinbackCampaignSettings,)
"""All the preview function reads: its role and environment hold nothing of Mailchimp or the results bucket."""


def store() -> Any:
    from memberflow.adapters.winback_store import DynamoWinbackStore

    return DynamoWinbackStore(load_settings(MembersSettings).members_table_name)


def deps() -> WinbackDeps:
    from memberflow.adapters.winback_store import S3ResultsStore

    settings = load_settings(WinbackSettings)
    return WinbackDeps(
        store=store(),
        mailing_list=container().mailing_list,
        results=S3ResultsStore(settings.results_bucket),
        list_id=settings.mailchimp_list_id,
        activity=container().activity_log,
    )


def run_campaigns(
    code_root: str, today: date, remaining_ms: Callable[[], int], *, resume_only: bool = False
) -> list[RunReport]:
    """Every enabled campaign's run for `today` (with `resume_only`, only runs already in progress are continued),
    stopping `safety_margin_seconds` before the invocation's end: the next invocation continues."""
    margin_ms = load_settings(WinbackSettings).safety_margin_seconds * 1000
    run_deps = deps()
    reports = []
    for campaign in campaigns(code_root).campaigns:
        state = run_deps.store.state(campaign.id)
        in_progress = state.run_day is not None and state.done_through != state.run_day
        if resume_only and not in_progress:
            report = RunReport(campaign.id, today.isoformat())
        else:
            report = run_campaign(campaign, today, run_deps, time_left=lambda: remaining_ms() > margin_ms)
        report.results_location = results_if_due(campaign, run_deps)
        if resume_only and not in_progress and not report.results_location:
            continue
        reports.append(report)
    return reports


def results_if_due(campaign: Any, run_deps: WinbackDeps) -> str:
    """Write the results file for the last completed run unless it was written already. A failure is logged and
    left for the next invocation (the resume schedule), never lost: the checkpoint says what is written."""
    state = run_deps.store.state(campaign.id)
    if state.done_through is None or (state.results_through and state.results_through >= state.done_through):
        return ""
    try:
        location = write_results(campaign, state.done_through, run_deps.store, run_deps.results)
    except (Transient, AccountProblem) as failure:
        logger.warning("win-back results not written yet", extra={"campaign": campaign.id, "reason": str(failure)})
        return ""
    state.results_through = state.done_through
    run_deps.store.save_state(campaign.id, state)
    return location


def preview_campaign(code_root: str, campaign_id: str, today: date, *, limit: int = 1000) -> dict[str, Any]:
    from memberflow.winback.preview import preview

    return preview(campaigns(code_root).get(campaign_id), today, store(), limit=limit)
