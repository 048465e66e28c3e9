"""Secrets Manager values (JSON objects), cached per container for a few minutes so rotation is picked up.

A dictionary and a timestamp rather than Powertools Parameters: that utility imports its AppConfig and SSM
providers too, which costs the intake's cold start ~100 ms for one GetSecretValue."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from memberflow.errors import ServiceUnavailable

SECRET_MAX_AGE_SECONDS = 300

_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_lock = threading.Lock()


def get_json_secret(arn: str, *, fresh: bool = False) -> dict[str, Any]:
    """The secret's JSON object; `fresh` skips the cache (a service just refused the cached credentials)."""
    now = time.monotonic()
    with _lock:
        cached = _cache.get(arn)
    if cached and not fresh and now - cached[0] < SECRET_MAX_AGE_SECONDS:
        return cached[1]
    from botocore.exceptions import BotoCoreError, ClientError

    from memberflow.adapters.aws import client

    try:
        answer = client("secretsmanager").get_secret_value(SecretId=arn)
    except (BotoCoreError, ClientError) as error:
        raise ServiceUnavailable(f"the secret could not be read: {type(error).__name__}") from None
    value = json.loads(answer["SecretString"])
    if not isinstance(value, dict):
        raise ValueError(f"secret {arn} must hold a JSON object")
    with _lock:
        _cache[arn] = (now, value)
    return value


def clear_cache() -> None:
    with _lock:
        _cache.clear()
