"""Parked messages whose failure may pass (retries spent on a transient error, an outage that outlasted the
deferrals) go back to their queue once every service their consumer calls answers again: bounded per run and per
message, so a message that keeps failing stays parked for an operator."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

logger = logging.getLogger(__name__)

REDRIVES_ATTRIBUTE = "auto_redrives"
"""How often a message was redriven automatically; it travels with the message and back into the DLQ."""


@dataclass(frozen=True)
class ParkedMessage:
    message_id: str
    body: str
    attributes: Mapping[str, str]

    @property
    def retryable(self) -> bool:
        return self.attributes.get("retryable") == "true"

    @property
    def redrives(self) -> int:
        value = self.attributes.get(REDRIVES_ATTRIBUTE, "0")
        return int(value) if value.isdigit() else 0


class DeadLetters(Protocol):
    def receive(self, max_messages: int) -> list[ParkedMessage]:
        """Parked messages, hidden from other readers for a while."""

    def send_back(self, message: ParkedMessage, redrives: int) -> None:
        """Put the message on its original queue (with `redrives` recorded), then remove it from the DLQ."""


@dataclass
class RedriveReport:
    service_available: bool = True
    """False when a service some queue waits on did not answer."""
    redriven: int = 0
    kept: int = 0
    failing_services: list[str] = field(default_factory=list)
    """The services that did not answer: the queues that need them were left as they are."""


def redrive_parked(
    dead_letters: DeadLetters,
    services: Mapping[str, Callable[[], bool]],
    *,
    max_messages: int = 100,
    max_redrives: int = 3,
) -> RedriveReport:
    """The queue's retryable messages go back once every service their consumer calls (name -> does it answer)
    answers: sent back while one still fails, a message would only wait out the outage again and spend a redrive."""
    report = RedriveReport()
    failing = next((name for name, answers in services.items() if not answers()), None)
    if failing is not None:
        report.service_available = False
        report.failing_services.append(failing)
        logger.info("redrive skipped: a service the messages need is still failing", extra={"service": failing})
        return report
    for message in dead_letters.receive(max_messages):
        if message.retryable and message.redrives < max_redrives:
            dead_letters.send_back(message, message.redrives + 1)
            report.redriven += 1
            logger.info(
                "parked message redriven",
                extra={"message_id": message.message_id, "redrives": message.redrives + 1},
            )
        else:
            report.kept += 1
    return report
