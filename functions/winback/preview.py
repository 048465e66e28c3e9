"""GET /winback/preview?campaign=ID[&day=YYYY-MM-DD][&limit=N] (HTTP API, IAM-authenticated, for internal tools):
who today's run would contact, hold out or exclude and why, without contacting anyone. Read-only."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.runtime.winback import preview_campaign
from memberflow.winback.campaign import CampaignError

logger = Logger()
CODE_ROOT = str(Path(__file__).parent)


def _answer(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def _problem(field: str, problem: str) -> dict:
    return _answer(400, {"error": "invalid_request", "problems": [{"field": field, "problem": problem}]})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: LambdaContext) -> dict:
    query = event.get("queryStringParameters") or {}
    campaign_id = query.get("campaign", "")
    if not campaign_id:
        return _problem("campaign", "required: the campaign id, e.g. winback")
    try:
        day = date.fromisoformat(query["day"]) if query.get("day") else datetime.now(UTC).date()
    except ValueError:
        return _problem("day", "must be a date, YYYY-MM-DD")
    try:
        limit = int(query.get("limit", "1000"))
        if not 0 <= limit <= 10000:
            raise ValueError
    except ValueError:
        return _problem("limit", "must be a whole number from 0 to 10000")
    try:
        shown = preview_campaign(CODE_ROOT, campaign_id, day, limit=limit)
    except CampaignError as error:
        return _answer(404, {"error": "unknown_campaign", "problems": [{"field": "campaign", "problem": str(error)}]})
    logger.info("win-back preview", extra={"campaign": campaign_id, "counts": shown["counts"]})
    return _answer(200, shown)
