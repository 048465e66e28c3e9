"""POST /webhooks/{source} and /webhooks/{source}/{secret} (HTTP API, payload 2.0): hand the raw delivery to intake,
answer in JSON; a GET of /webhooks/{source}/{secret} is a sender checking the URL (Mailchimp).

The HTTP API has one route to this function, so the event is read directly rather than through a router: the
answer must reach Slack within 3 s even on a cold start."""

import base64
import json

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.intake.service import IntakeResponse, accept_webhook, answer_url_check, unexpected_failure
from memberflow.runtime.container import container

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict, context: LambdaContext) -> dict:
    # POST /webhooks/{source}, or POST /escalations (internal tools asking for a ticket).
    source = (event.get("pathParameters") or {}).get("source") or _route_source(event)
    correlation_id = (event.get("requestContext") or {}).get("requestId")
    try:
        method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "POST")
        if method == "GET":  # a sender checking the URL before it delivers (Mailchimp, when a webhook is saved)
            answer = answer_url_check(
                source,
                event.get("headers") or {},
                container().intake,
                path=event.get("rawPath", ""),
                correlation_id=correlation_id,
            )
            return _http_answer(answer, json.dumps(answer.body))
        # Signatures cover the exact bytes sent, so never verify a decoded or re-serialised body.
        raw = event.get("body") or ""
        body = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else raw.encode()
        answer = accept_webhook(
            source,
            body,
            event.get("headers") or {},
            container().intake,
            correlation_id=correlation_id,
            path=event.get("rawPath", ""),
            query=event.get("queryStringParameters") or {},
        )
        encoded = json.dumps(answer.body)
    except Exception as error:
        # Whatever happens here, the platform gets JSON and a status that makes it deliver again, never a bare 500.
        answer = unexpected_failure(error, str(source), correlation_id)
        encoded = json.dumps(answer.body)
    return _http_answer(answer, encoded)


def _http_answer(answer: IntakeResponse, encoded: str) -> dict:
    metrics.add_metric(name="WebhookRequests", unit=MetricUnit.Count, value=1)
    # The per-source metric is its own record, so requests never share (and re-add) a dimension.
    with single_metric(name=f"Webhook{answer.outcome.capitalize()}", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="source", value=answer.source)
    return {
        "statusCode": answer.status,
        "headers": {"Content-Type": "application/json", **answer.headers},
        "body": encoded,
    }


def _route_source(event: dict) -> str:
    return "escalations" if event.get("routeKey") == "POST /escalations" else ""
