"""Request body validation, refused with the field errors Mailchimp gives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from memberflow_sandboxes.mailchimp.problems import ApiError, field_error
from memberflow_sandboxes.mailchimp.state import WRITABLE_STATUSES


def object_body(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "Bad Request", "The request body must be a JSON object.")
    return body


def required_string(body: dict[str, Any], name: str) -> str:
    value = optional_string(body, name)
    if value is None:
        raise field_error(name, "This value should not be blank.")
    return value


def optional_string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise field_error(name, "Schema describes string, but a different type or an empty value was found.")
    return value.strip()


def status_field(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise field_error(name, "This value should not be blank.")
        return None
    if value not in WRITABLE_STATUSES:
        raise field_error(name, f"Data presented is not one of the accepted values: {', '.join(WRITABLE_STATUSES)}.")
    return value


def merge_fields(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("merge_fields") or {}
    if not isinstance(value, dict):
        raise field_error("merge_fields", "Schema describes object, but a different type was found.")
    return value


def string_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise field_error(name, "Schema describes an array of strings.")
    return value


def tag_changes(body: dict[str, Any]) -> list[tuple[str, bool]]:
    tags = body.get("tags")
    if not isinstance(tags, list):
        raise field_error("tags", "Schema describes array, but a different type was found.")
    changes = []
    for tag in tags:
        if not isinstance(tag, dict) or not isinstance(tag.get("name"), str) or not tag["name"].strip():
            raise field_error("tags", "Each tag needs a non-empty name.")
        if tag.get("status") not in ("active", "inactive"):
            raise field_error("tags", "Tag status must be one of: active, inactive.")
        changes.append((tag["name"].strip(), tag["status"] == "active"))
    return changes


def timestamp(body: dict[str, Any], name: str) -> str | None:
    """An ISO 8601 date and time (a naive one is UTC), as Mailchimp stores it; None when absent or empty."""
    value = body.get(name)
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise field_error(name, "Schema describes string in ISO 8601 date and time format.")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def email_list(body: dict[str, Any], name: str, limit: int) -> list[str]:
    """A list of addresses of at most `limit` (Mailchimp refuses more with 400)."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise field_error(name, "Schema describes array of strings, but a different type was found.")
    if len(value) > limit:
        raise ApiError(400, "Invalid Resource", "Maximum allowed member items exceeded")
    return value
