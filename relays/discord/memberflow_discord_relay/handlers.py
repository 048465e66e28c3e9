"""What the relay does with each Gateway event and with a /newsletter form: decide whether it is ours to relay,
build the delivery (payloads) and queue it on disk (outbox). No Discord connection is needed here, so the tests
drive these handlers with stand-ins for discord.py's objects; bot.py wires them to the Gateway.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from memberflow_discord_relay import payloads
from memberflow_discord_relay.outbox import Outbox

logger = logging.getLogger("memberflow_discord_relay.handlers")

RELAYED_MESSAGE_TYPES = frozenset({"default", "reply"})
"""Messages a person wrote. System messages ("X joined the server", pins, boosts) are not activity: the join
message is even authored by the new member."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 254
MAX_LOCAL_PART = 64


class RelayHandlers:
    """One guild's Gateway events -> deliveries in the outbox. `wake` tells the sender there is something new."""

    def __init__(
        self,
        guild_id: int,
        outbox: Outbox,
        *,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.guild_id = guild_id
        self.outbox = outbox
        self._wake = wake
        self._clock = clock

    # -- Gateway events ------------------------------------------------------------------------------------------
    def member_joined(self, member: Any) -> bool:
        """GUILD_MEMBER_ADD (on_member_join)."""
        if member.guild.id != self.guild_id or member.bot:
            return False
        delivery = payloads.member_add(member, now=self._clock())
        if member.pending:  # remembered, so a pass while the relay is down is relayed when it is back
            self.outbox.hold(member.id, delivery["member"]["joined_at"])
        return self._queue(delivery)

    def member_updated(self, before: Any, after: Any) -> bool:
        """GUILD_MEMBER_UPDATE (on_member_update): relayed only when the member passed membership screening.
        Discord sends `pending: false` on every later update too (a nickname, a role), so the change is what counts:
        pending before, or held by us, and not pending now."""
        if after.guild.id != self.guild_id or after.bot or after.pending:
            return False
        if not (before.pending or self.outbox.is_held(after.id)):
            return False
        queued = self._queue(payloads.member_screening_passed(after, now=self._clock()))
        self.outbox.release(after.id)
        return queued

    def member_left(self, user_id: int, guild_id: int) -> None:
        """GUILD_MEMBER_REMOVE (on_raw_member_remove): a held member who left will not pass screening."""
        if guild_id == self.guild_id:
            self.outbox.release(user_id)

    def catch_up_screening(self, guild: Any) -> int:
        """After a (re)connect, once the member list is in: relay the passes missed while the relay was down. A held
        member who left, or joined again, is forgotten (a new join is relayed as such)."""
        if guild.id != self.guild_id:
            return 0
        relayed = 0
        for user_id, joined_at in self.outbox.held().items():
            member = guild.get_member(user_id)
            if member is None or payloads.joined_at(member, now=self._clock()) != joined_at:
                self.outbox.release(user_id)
            elif not member.pending:
                relayed += self._queue(payloads.member_screening_passed(member, now=self._clock()))
                self.outbox.release(user_id)
        return relayed

    def message_created(self, message: Any) -> bool:
        """MESSAGE_CREATE (on_message): metadata only; the relay never reads the text."""
        if message.guild is None or message.guild.id != self.guild_id:
            return False
        if message.author.bot or message.webhook_id is not None:
            return False
        if getattr(message.type, "name", str(message.type)) not in RELAYED_MESSAGE_TYPES:
            return False
        return self._queue(payloads.message_create(message, now=self._clock()))

    def reaction_added(self, reaction: Any) -> bool:
        """MESSAGE_REACTION_ADD (on_raw_reaction_add: no message cache needed)."""
        if reaction.guild_id != self.guild_id or reaction.member is None or reaction.member.bot:
            return False
        return self._queue(payloads.reaction_add(reaction, now=self._clock()))

    # -- /newsletter ---------------------------------------------------------------------------------------------
    def newsletter_signup(self, interaction_id: int, member: Any, email: str, consent: bool) -> SignupAnswer:
        """A submitted /newsletter form. Only an address and a ticked consent box are relayed; memberflow then asks
        Mailchimp for double opt-in, so nothing is sent before the member confirms the address by email."""
        if getattr(getattr(member, "guild", None), "id", None) != self.guild_id:
            return SignupAnswer(False, "This command works in the community's server only.")
        if member.bot:
            return SignupAnswer(False, "Bots cannot sign up.")
        if not consent:
            return SignupAnswer(
                False, "Nothing was sent: tick the box to agree to receive the newsletter, then try /newsletter again."
            )
        address = email.strip()
        problem = email_problem(address)
        if problem:
            return SignupAnswer(False, f"{problem} Nothing was sent: try /newsletter again.")
        self._queue(payloads.newsletter_signup(interaction_id, member, address, now=self._clock()))
        note = " You will get it once you have accepted the server's rules." if member.pending else ""
        return SignupAnswer(
            True,
            f"Almost done: we are sending a confirmation email to {address}. Click the link in it to start "
            f"receiving the newsletter; until you do, we send you nothing.{note}",
        )

    def _queue(self, delivery: dict[str, Any]) -> bool:
        added = self.outbox.add(delivery, now=self._clock().timestamp())
        logger.info(
            "event queued" if added else "event already queued",
            extra={"event_id": delivery["id"], "event_type": delivery["type"]},
        )
        self._wake()
        return added


@dataclass(frozen=True)
class SignupAnswer:
    relayed: bool
    message: str
    """What the member is told (an ephemeral reply only they see)."""


def email_problem(address: str) -> str | None:
    """Why `address` cannot be an email address (the limits mail systems enforce), or None."""
    if not address:
        return "Please type your email address."
    if len(address) > MAX_EMAIL or any(_unsendable(char) for char in address):
        return "That is not an email address we can send to."
    if not _EMAIL.match(address) or len(address.rsplit("@", 1)[0]) > MAX_LOCAL_PART:
        return "That does not look like an email address."
    return None


def _unsendable(char: str) -> bool:
    """Control characters and the bidirectional overrides that make an address display as another."""
    code = ord(char)
    return code < 32 or code == 127 or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069
