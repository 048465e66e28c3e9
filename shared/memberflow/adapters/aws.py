"""boto3 clients, created once per container and only when first used.

The endpoint comes from the standard `AWS_ENDPOINT_URL` variable when it is set (a local stack), so no code here
knows whether it talks to AWS or to an emulator.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3

    return boto3.client(service)


@cache
def table(name: str) -> Any:
    import boto3

    return boto3.resource("dynamodb").Table(name)
