"""POST /webhooks/{source} (HTTP API, payload 2.0): hand the raw delivery to intake, answer in JSON."""

import base64
import json

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from memberflow.intake.service import accept_webhook
from memberflow.wiring import intake_deps

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"memberflow"})
metrics = Metrics()
app = APIGatewayHttpResolver()


@app.post("/webhooks/<source>")
def receive_webhook(source: str) -> Response:
    event = app.current_event
    # Signatures cover the exact bytes sent, so never verify a decoded or re-serialised body.
    body = base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode()
    answer = accept_webhook(source, body, event.headers, intake_deps(), correlation_id=event.request_context.request_id)
    metrics.add_dimension(name="source", value=answer.source)
    metrics.add_metric(name=f"Webhook{answer.outcome.capitalize()}", unit=MetricUnit.Count, value=1)
    return Response(
        answer.status, content_type="application/json", body=json.dumps(answer.body), headers=answer.headers
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
