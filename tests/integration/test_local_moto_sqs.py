"""The local stack's SQS (memberflow_local.moto_sqs): a send or a receive no longer walks every waiting message of the
queue, and the counts a drain reads in-process are the ones GetQueueAttributes gives."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from memberflow_local import moto_sqs
from memberflow_local.aws import MotoAws

REGION = "us-east-1"


@pytest.fixture
def sqs():
    moto_sqs.install()
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


def test_a_send_and_a_receive_do_not_read_each_waiting_messages_clock(sqs, monkeypatch):
    import moto.sqs.models

    url = sqs.create_queue(QueueName="burst")["QueueUrl"]
    for start in range(0, 300, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"event {n}"} for n in range(start, start + 10)]
        )
    clock_reads = []
    original = moto.sqs.models.unix_time_millis
    monkeypatch.setattr(moto.sqs.models, "unix_time_millis", lambda *a: clock_reads.append(1) or original(*a))

    sqs.send_message(QueueUrl=url, MessageBody="one more")
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]

    assert len(received) == 10
    # moto's own code still asks the clock for the messages it hands out; before, every send and every message
    # received counted the 300 waiting messages (about 38,000 clock readings here)
    assert len(clock_reads) < 100


def test_the_counts_a_drain_reads_are_those_get_queue_attributes_gives(sqs):
    url = sqs.create_queue(QueueName="events", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for n in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=f"now {n}")
    for n in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=f"later {n}", DelaySeconds=60)
    assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3)["Messages"]) == 3

    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    counts = MotoAws(region=REGION).queue_counts(url)

    assert counts == {name: int(value) for name, value in attributes.items()}
    assert counts == {
        "ApproximateNumberOfMessages": 1,
        "ApproximateNumberOfMessagesNotVisible": 3,
        "ApproximateNumberOfMessagesDelayed": 2,
    }
    # retention still holds: a message older than the queue's retention period is not handed out
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "60"})
    import moto.sqs.models

    queue = moto.sqs.models.sqs_backends["123456789012"][REGION].get_queue("events")
    for message in queue._messages:
        message.sent_timestamp -= 120_000
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
