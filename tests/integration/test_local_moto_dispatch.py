"""The local stack's request dispatch (memberflow_local.moto_dispatch): moto lists a handler class's methods once,
not on every request, and answers as before, an action it does not know included."""

from __future__ import annotations

import inspect

import pytest
from botocore.exceptions import ClientError

from memberflow_local import moto_dispatch
from support.moto_tables import mocked_table


def test_a_class_is_listed_once_and_requests_are_answered_as_before(monkeypatch):
    from moto.dynamodb.responses import DynamoHandler

    moto_dispatch.install()
    listed = []
    original = inspect.getmembers
    monkeypatch.setattr(inspect, "getmembers", lambda obj, *a, **k: listed.append(obj) or original(obj, *a, **k))
    with mocked_table("members", ("pk", "S")) as client:
        for n in range(5):
            client.put_item(TableName="members", Item={"pk": {"S": f"m{n}"}})
        assert client.scan(TableName="members")["Count"] == 5
        with pytest.raises(ClientError) as missing:
            client.get_item(TableName="nowhere", Key={"pk": {"S": "m0"}})

    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert listed.count(DynamoHandler) <= 1  # once per request (8 here) before
