"""Secrets Manager values (JSON objects), cached per container for a few minutes so rotation is picked up."""

from __future__ import annotations

from typing import Any

SECRET_MAX_AGE_SECONDS = 300

_provider: Any = None


def get_json_secret(arn: str, *, fresh: bool = False) -> dict[str, Any]:
    """The secret's JSON object; `fresh` skips the cache (a service just refused the cached credentials)."""
    global _provider
    if _provider is None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        from memberflow.adapters.aws import client

        _provider = SecretsProvider(boto3_client=client("secretsmanager"))
    value = _provider.get(arn, transform="json", max_age=SECRET_MAX_AGE_SECONDS, force_fetch=fresh)
    if not isinstance(value, dict):
        raise ValueError(f"secret {arn} must hold a JSON object")
    return value


def clear_cache() -> None:
    global _provider
    _provider = None
