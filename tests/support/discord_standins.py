"""Stand-ins for the discord.py objects the Discord relay reads (relays/discord), so its handlers and its
/newsletter form run without a Discord connection. Import only where discord.py is installed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import discord

from memberflow_discord_relay.bot import NewsletterForm

GUILD_ID = 1187736602143985664
JOINED = datetime(2026, 11, 16, 9, 30, 12, 441000, tzinfo=UTC)


@dataclass
class Guild:
    id: int = GUILD_ID
    members: dict[int, Member] = field(default_factory=dict)

    def get_member(self, user_id: int) -> Member | None:
        return self.members.get(user_id)


@dataclass
class Member:
    """The attributes of discord.Member the relay reads."""

    id: int
    name: str
    global_name: str | None
    guild: Guild
    joined_at: datetime = JOINED
    pending: bool = False
    bot: bool = False


@dataclass
class Message:
    id: int
    guild: Guild | None
    author: Member
    created_at: datetime
    channel: Any = field(default_factory=lambda: SimpleNamespace(id=1187736602143985670))
    type: Any = field(default_factory=lambda: discord.MessageType.default)
    webhook_id: int | None = None


class Interaction:
    """The parts of discord.Interaction the command and the form use."""

    def __init__(self, user: Member, interaction_id: int = 1306713011234567890) -> None:
        self.id = interaction_id
        self.user = user
        self.guild_id = user.guild.id
        self.sent: list[tuple[str, bool]] = []
        self.modals: list[Any] = []
        self.response = SimpleNamespace(send_message=self._send_message, send_modal=self._send_modal)

    async def _send_message(self, content: str, *, ephemeral: bool = False) -> None:
        self.sent.append((content, ephemeral))

    async def _send_modal(self, modal: Any) -> None:
        self.modals.append(modal)


def submit(form: NewsletterForm, interaction: Interaction, email: str, consent: bool) -> None:
    """What discord.py does when Discord delivers the submitted form: fill the components, then call on_submit."""

    async def run() -> None:
        form._refresh(  # the library's own parsing of Discord's MODAL_SUBMIT component data
            interaction,  # type: ignore[arg-type]
            [
                {"type": 18, "component": {"type": 4, "custom_id": "email", "value": email}},
                {"type": 18, "component": {"type": 23, "custom_id": "consent", "value": consent}},
            ],
            {},
        )
        await form.on_submit(interaction)  # type: ignore[arg-type]

    asyncio.run(run())
