"""Parked messages whose failure may pass (retries spent on a transient error, an outage that outlasted the
deferrals) go back to their queue once the service they need answers again: bounded per run and per message, so
a message that keeps failing stays parked for an operator."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    redriven: int = 0
    kept: int = 0


def redrive_parked(
    dead_letters: DeadLetters,
    service_available: Callable[[], bool],
    *,
    max_messages: int = 100,
    max_redrives: int = 3,
) -> RedriveReport:
    report = RedriveReport()
    if not service_available():
        report.service_available = False
        logger.info("redrive skipped: the service is still failing")
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
