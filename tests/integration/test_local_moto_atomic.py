"""The local stack's SQS and DynamoDB keep their promises when calls arrive at once (memberflow_local.moto_atomic):
a deleted message stays deleted, a sent one is kept, a visible message goes to one receiver, a conditional write
lets one writer through, and a read never sees an update half done. Without the patch moto breaks each of these
under the threaded server (a deleted registration came back 12 minutes later and stalled the demo)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from memberflow_local import moto_atomic

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def contended() -> Iterator[None]:
    """Patched, in a fresh moto, with threads switching often enough for races to show within a second."""
    moto_atomic.install()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        with mock_aws():
            yield
    finally:
        sys.setswitchinterval(interval)


def table_keyed_by(name: str, key: str):
    """A DynamoDB client, and a table `name` in it keyed by the string `key`."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def run_together(*work: Callable[[], None]) -> None:
    threads = [threading.Thread(target=job) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)


def test_messages_deleted_by_two_consumers_at_once_stay_deleted_and_one_sent_meanwhile_is_kept():
    backend = sqs_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.create_queue("registrations", VisibilityTimeout="720")
    for number in range(200):
        backend.send_message("registrations", f"received-{number}")
    handles = [message.receipt_handle for message in backend.receive_message("registrations", 200, 0, 720)]
    assert len(handles) == 200

    def delete(some: list[str]) -> Callable[[], None]:
        return lambda: [backend.delete_message("registrations", handle) for handle in some]

    def send_more() -> None:
        for number in range(100):
            backend.send_message("registrations", f"sent-later-{number}")

    run_together(delete(handles[0::2]), delete(handles[1::2]), send_more)

    left = sorted(message.body for message in backend.get_queue("registrations")._messages)
    assert left == sorted(f"sent-later-{number}" for number in range(100))


def test_receivers_polling_at_once_never_get_the_same_message():
    backend = sqs_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.create_queue("events", VisibilityTimeout="720")
    for number in range(300):
        backend.send_message("events", f"event-{number}")
    received: list[list[str]] = [[] for _ in range(6)]

    def receive(into: list[str]) -> Callable[[], None]:
        def work() -> None:
            while batch := backend.receive_message("events", 10, 0, 720):
                into.extend(message.body for message in batch)

        return work

    run_together(*(receive(into) for into in received))

    everything = [body for bodies in received for body in bodies]
    assert sorted(everything) == sorted(f"event-{number}" for number in range(300))


def test_a_conditional_write_lets_exactly_one_of_several_concurrent_writers_through():
    dynamodb = table_keyed_by("idempotency", "id")
    keys = [f"memberflow.consumer#{number}" for number in range(40)]
    claimed: list[str] = []
    lock = threading.Lock()

    def claim_all(writer: str) -> Callable[[], None]:
        def work() -> None:
            for key in keys:
                try:
                    dynamodb.put_item(
                        TableName="idempotency",
                        Item={"id": {"S": key}, "writer": {"S": writer}},
                        ConditionExpression="attribute_not_exists(id)",
                    )
                except dynamodb.exceptions.ConditionalCheckFailedException:
                    continue
                with lock:
                    claimed.append(key)

        return work

    run_together(*(claim_all(f"writer-{number}") for number in range(4)))

    assert sorted(claimed) == sorted(keys)


def test_a_read_never_finds_a_new_item_before_its_update_is_complete():
    dynamodb = table_keyed_by("members", "pk")
    keys = [f"MEMBER#{number}" for number in range(300)]
    done = threading.Event()
    torn: list[dict] = []

    def record_joins() -> None:
        for key in keys:
            dynamodb.update_item(
                TableName="members",
                Key={"pk": {"S": key}},
                UpdateExpression="SET member_id = :id, email = :email",
                ExpressionAttributeValues={":id": {"S": key}, ":email": {"S": "sam@example.org"}},
            )
        done.set()

    def read_them() -> None:
        while not done.is_set():
            for key in keys:
                item = dynamodb.get_item(TableName="members", Key={"pk": {"S": key}}).get("Item")
                if item is not None and "member_id" not in item:
                    torn.append(item)

    run_together(record_joins, read_them, read_them)

    assert torn == []
