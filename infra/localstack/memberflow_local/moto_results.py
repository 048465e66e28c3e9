"""DynamoDB item results leave moto as the JSON they already are.

moto serialises every response by walking the operation's output shape, value by value, with an attribute picker
that tries several spellings of each key: about a millisecond per item. A DynamoDB item result (an item, a page of a
query or a scan) is already in DynamoDB's wire form once moto has turned its types into maps, so walking the shape
only copies it. A scan of the demo's 36,000-item member table took seconds; the win-back's inactivity pages
(a thousand items each) a large share of each run.

`install()` gives the item operations' results (`ITEM_OPERATIONS`) a plain copy instead: binary values base64
encoded as moto encodes them, keys without a value or outside the output's shape left out as moto leaves them
out. The status, headers and body
encoding are moto's own. Anything else (a timestamp, a type the wire has no plain form for, any other operation)
goes through moto's serializer as before.
"""

from __future__ import annotations

import base64
from typing import Any

ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "TransactGetItems",
    }
)
"""The operations whose results carry items (moto's `DynamoResult`); BatchWriteItem and TransactWriteItems answer
with small results moto builds otherwise."""


class NotPlain(Exception):
    """A value the shape walk must serialise (a timestamp, say)."""


def plain(value: Any) -> Any:
    """`value` as DynamoDB's JSON wire form carries it: maps without None entries, lists, strings, numbers, booleans;
    bytes base64 encoded. Raises NotPlain for anything else."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).strip().decode("utf-8")
    raise NotPlain(type(value).__name__)


def install() -> None:
    """Patch moto's DynamoDB results once per process (idempotent)."""
    from moto import settings
    from moto.core.serialize import XFormedAttributePicker
    from moto.dynamodb.responses import DynamoResult

    if getattr(DynamoResult.execute_result, "_plain", False):
        return
    shape_walk = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name not in ITEM_OPERATIONS or not isinstance(self.result, dict):
            return shape_walk(self, context)
        output = context.operation_model.output_shape
        try:  # the output's members only, as the shape walk picks them (moto keeps a legacy key or two besides)
            body = plain({key: value for key, value in self.result.items() if key in output.members})
        except NotPlain:
            return shape_walk(self, context)
        serializer = context.serializer_class(
            operation_model=context.operation_model,
            pretty_print=settings.PRETTIFY_RESPONSES,
            value_picker=XFormedAttributePicker(),
        )
        response = serializer._serialized_result_to_response(
            serializer._create_default_response(), self.result, output, body
        )
        return response["status_code"], response["headers"], response["body"]

    execute_result._plain = True  # type: ignore[attr-defined]
    execute_result.shape_walk = shape_walk  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
