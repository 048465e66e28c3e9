"""Zendesk's error documents: `{"error", "description", "details"}` (the reference, Zendesk: "Errors")."""

from __future__ import annotations

from typing import Any

from memberflow_sandboxes.base import SandboxError, json_response


class ZendeskError(SandboxError):
    """Zendesk's error document: `{"error": ..., "description": ..., "details": ...}`. `error` is usually a name
    (`RecordNotFound`, `RecordInvalid`), for some refusals an object (`{"title", "message"}`)."""

    def __init__(self, status: int, error: Any, description: str = "", details: Any = None, headers: Any = None):
        super().__init__(status, description or str(error), headers)
        self.error = error
        self.description = description
        self.details = details

    def response(self) -> Any:
        body: dict[str, Any] = {"error": self.error}
        if self.description:
            body["description"] = self.description
        if self.details is not None:
            body["details"] = self.details
        response = json_response(body, self.status)
        response.headers.update(self.headers)
        return response


def not_found() -> ZendeskError:
    """A record (ticket, user, job status) that is not there."""
    return ZendeskError(404, "RecordNotFound", "Not found")


def invalid_endpoint() -> ZendeskError:
    """A path Zendesk has no endpoint for: a 404 too, but not a missing record."""
    return ZendeskError(404, "InvalidEndpoint", "Not found")


def invalid(field: str, description: str, error: str = "invalid") -> ZendeskError:
    """422 `RecordInvalid` with `details: {field: [{"description", "error"}]}`, as Zendesk words a validation error."""
    return ZendeskError(
        422, "RecordInvalid", "Record validation errors", {field: [{"description": description, "error": error}]}
    )
