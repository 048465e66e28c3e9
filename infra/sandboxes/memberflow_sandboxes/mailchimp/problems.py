"""Mailchimp's error documents: RFC 7807 problem+json, which clients parse for `title` and `detail`."""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from typing import Any

from werkzeug.wrappers import Response

from memberflow_sandboxes.base import NOT_FOUND_DETAIL, SandboxError

ERROR_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"
PROBLEM_JSON = "application/problem+json; charset=utf-8"


class ApiError(SandboxError):
    """An error answered as a Mailchimp problem document."""

    def __init__(self, status: int, title: str, detail: str, errors: list[dict] | None = None):
        super().__init__(status, detail)
        self.title = title
        self.errors = errors

    def response(self) -> Response:
        body: dict[str, Any] = {
            "type": ERROR_TYPE,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": str(uuid.uuid4()),
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return Response(json.dumps(body), status=self.status, content_type=PROBLEM_JSON, headers=self.headers)


def invalid_resource(detail: str | None = None, errors: list[dict] | None = None) -> ApiError:
    detail = detail or (
        "The resource submitted could not be validated. For field-specific details, see the 'errors' array."
    )
    return ApiError(400, "Invalid Resource", detail, errors)


def field_error(field_name: str, message: str) -> ApiError:
    return invalid_resource(errors=[{"field": field_name, "message": message}])


def not_found() -> ApiError:
    return ApiError(404, "Resource Not Found", NOT_FOUND_DETAIL)


def problem_for_status(status: int, detail: str) -> ApiError:
    """A problem titled with the standard reason phrase, as Mailchimp does for generic errors."""
    return ApiError(status, HTTPStatus(status).phrase, detail)
