"""DynamoDB updates in moto parse each distinct update expression once.

moto parses an UpdateItem's update expression twice per call (once to find the names and values it uses, once to
apply it), and our adapters send a few dozen distinct expressions over and over (a bench sends millions). The tree is
only read, or deep-copied by moto's validator before it changes anything, so `install()` keeps the trees of the
expressions seen (a bounded cache). Errors in an expression are not cached: they are raised again each time.
"""

from __future__ import annotations

import functools
from typing import Any

PARSED_EXPRESSIONS = 1024


def install() -> None:
    """Patch moto's update expression parser once per process (idempotent)."""
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    if getattr(UpdateExpressionParser.make, "_cached", False):
        return
    parse = UpdateExpressionParser.make.__func__  # type: ignore[attr-defined]

    @functools.lru_cache(maxsize=PARSED_EXPRESSIONS)
    def parsed(expression: str) -> Any:
        return parse(UpdateExpressionParser, expression)

    def make(cls: type, expression: str) -> Any:
        return parsed(expression) if cls is UpdateExpressionParser else parse(cls, expression)

    make._cached = True  # type: ignore[attr-defined]
    UpdateExpressionParser.make = classmethod(make)  # type: ignore[method-assign, assignment]
