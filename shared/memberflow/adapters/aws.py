"""boto3 clients, created once per container and only when first used.

The endpoint comes from the standard `AWS_ENDPOINT_URL` variable when it is set (a local stack), so no code here
knows whether it talks to AWS or to an emulator.
"""

from __future__ import annotations

from functools import cache
from typing import Any


def _config() -> Any:
    from botocore.config import Config

    # Short timeouts and few attempts: intake must answer Slack within 3 s, and a failed SQS write is better
    # answered with a fast 503 (the platform retries) than with a Lambda timeout. Same-region calls take ms.
    return Config(connect_timeout=1, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})


@cache
def client(service: str) -> Any:
    import boto3

    return boto3.client(service, config=_config())


@cache
def table(name: str) -> Any:
    import boto3

    return boto3.resource("dynamodb", config=_config()).Table(name)
