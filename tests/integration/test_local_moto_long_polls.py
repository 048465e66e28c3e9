"""The local stack's long polls (memberflow_local.moto_long_polls): a 20-second ReceiveMessage waits inside moto,
answers as soon as a message comes (or becomes visible), and answers at once, empty-handed, when the stack ends the
long polls."""

from __future__ import annotations

import threading
import time

import boto3
import pytest
from moto import mock_aws

from memberflow_local import moto_long_polls


@pytest.fixture
def sqs():
    moto_long_polls.install()
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        yield client, client.create_queue(QueueName="work")["QueueUrl"]


def _long_poll(client, url: str, answers: list) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: answers.append(client.receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages", [])),
        daemon=True,
    )
    thread.start()
    return thread


def test_a_long_poll_answers_as_soon_as_a_message_comes(sqs):
    client, url = sqs
    answers: list = []
    poll = _long_poll(client, url, answers)
    time.sleep(0.3)
    client.send_message(QueueUrl=url, MessageBody="member joined")
    poll.join(timeout=10)
    assert not poll.is_alive() and [m["Body"] for m in answers[0]] == ["member joined"]


def test_ending_the_long_polls_answers_those_waiting_and_not_later_ones(sqs):
    client, url = sqs
    answers: list = []
    waiting = _long_poll(client, url, answers)
    time.sleep(0.3)
    moto_long_polls.end_long_polls()
    waiting.join(timeout=5)
    assert not waiting.is_alive() and answers == [[]]  # at once, not after the 20 seconds asked

    later = _long_poll(client, url, answers)
    time.sleep(1.5)
    assert later.is_alive()  # a poll begun after the end waits as usual (its slices end every second)
    client.send_message(QueueUrl=url, MessageBody="after")
    later.join(timeout=10)
    assert [m["Body"] for m in answers[1]] == ["after"]


def test_a_long_poll_with_nothing_to_receive_answers_when_its_wait_is_over(sqs):
    client, url = sqs
    began = time.monotonic()
    assert client.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", []) == []
    assert time.monotonic() - began >= 2


def test_a_message_that_becomes_visible_while_a_long_poll_waits_is_received(sqs):
    client, url = sqs
    client.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=1)
    began = time.monotonic()
    got = client.receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages", [])
    assert [m["Body"] for m in got] == ["delayed"] and time.monotonic() - began < 10
