"""Refusals of a webhook request as data: HTTP status, a stable code and a sentence saying what and where."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

ROOT_FIELD = "body"
"""How a problem with the body as a whole (not one of its fields) is named."""


class IntakeError(Exception):
    def __init__(self, status: int, code: str, detail: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.problems = problems or []

    def body(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"error": self.code, "detail": self.detail}
        if self.status == 400:
            answer["problems"] = self.problems
        return answer


def invalid_payload(problems: list[dict[str, str]], what: str = "the payload") -> IntakeError:
    fields = ", ".join(problem["field"] for problem in problems[:5])
    return IntakeError(400, "invalid_payload", f"{what} is not valid: {fields}", problems)


def problems_from(error: ValidationError, paths: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """Pydantic errors as `{"field", "problem"}` with dotted paths; `paths` renames fields of our own models
    to where they came from in the platform's body (e.g. `email` -> `event.user.profile.email`)."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in item["loc"])
        if paths:
            field = paths.get(field) or paths.get(str(item["loc"][0]) if item["loc"] else "", field)
        problems.append({"field": field or ROOT_FIELD, "problem": _problem_text(item)})
    return problems


Model = TypeVar("Model", bound=BaseModel)


def validate(model: type[Model], payload: Any) -> Model:
    """The payload as `model`, or a 400 naming every field that is missing or wrong."""
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise invalid_payload(problems_from(error)) from None


def build(model: type[Model], paths: Mapping[str, str], **fields: Any) -> Model:
    """One of our models from platform values already validated in shape; what our models add (an email that
    is an address, non-empty ids) is reported under the platform's field names."""
    try:
        return model(**fields)
    except ValidationError as error:
        raise invalid_payload(problems_from(error, paths)) from None


def _problem_text(item: Any) -> str:
    # Pydantic names our classes here; the sender only needs to know an object was expected.
    if item["type"] in ("model_type", "dict_type"):
        return "Input should be a JSON object"
    return str(item["msg"])
