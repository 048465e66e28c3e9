"""The bot: a discord.py client on the Gateway with the intents the relay needs, the /newsletter command and its
form, and the sender that drains the outbox in a worker thread.

Intents: `guilds`; `members` (privileged: switch on *Server Members Intent* in the Developer Portal) for joins,
screening passes and the member list; `guild_messages` and `guild_reactions` for activity. Not `message_content`:
the relay forwards who took part and when, never what they wrote.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

import discord
import requests
from discord import app_commands, ui

from memberflow_discord_relay import payloads
from memberflow_discord_relay.config import RelayConfig
from memberflow_discord_relay.delivery import Backoff, Deliverer, HttpPoster
from memberflow_discord_relay.handlers import MAX_EMAIL, RelayHandlers
from memberflow_discord_relay.outbox import Outbox

logger = logging.getLogger("memberflow_discord_relay.bot")

IDLE_SECONDS = 60.0
"""How long the sender sleeps with nothing queued (a new event wakes it at once)."""


def intents() -> discord.Intents:
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.members = True
    wanted.guild_messages = True
    wanted.guild_reactions = True
    return wanted


class NewsletterForm(ui.Modal):
    """The /newsletter form: the address and an explicit consent box (unticked by default)."""

    def __init__(self, handlers: RelayHandlers, newsletter_name: str) -> None:
        super().__init__(title="Newsletter sign-up", custom_id="memberflow-newsletter")
        self.handlers = handlers
        self.email: ui.TextInput[NewsletterForm] = ui.TextInput(
            custom_id="email",
            placeholder="you@example.org",
            min_length=3,
            max_length=MAX_EMAIL,
        )
        self.consent: ui.Checkbox[NewsletterForm] = ui.Checkbox(custom_id="consent", default=False)
        self.add_item(ui.Label(text="Your email address", component=self.email))
        self.add_item(
            ui.Label(
                text="Yes, send me the newsletter",
                description=f"I agree to receive {newsletter_name} by email and can unsubscribe at any time."[:100],
                component=self.consent,
            )
        )

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        answer = self.handlers.newsletter_signup(interaction.id, interaction.user, self.email.value, self.consent.value)
        await interaction.response.send_message(answer.message, ephemeral=True)


def newsletter_command(handlers: RelayHandlers, newsletter_name: str) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="newsletter", description=f"Get {newsletter_name} by email"[:100])
    @app_commands.guild_only()
    async def newsletter(interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_modal(NewsletterForm(handlers, newsletter_name))

    return newsletter


class RelayBot(discord.Client):
    def __init__(self, config: RelayConfig, *, outbox: Outbox | None = None, deliverer: Deliverer | None = None):
        super().__init__(intents=intents())
        self.config = config
        self.outbox = outbox or Outbox(config.outbox_path)
        self._wakeup = asyncio.Event()
        self.handlers = RelayHandlers(config.guild_id, self.outbox, wake=self._wake)
        self.deliverer = deliverer or Deliverer(
            self.outbox,
            HttpPoster(config.webhook_url, config.private_key_hex),
            backoff=Backoff(maximum=config.max_backoff_seconds),
        )
        self.tree = app_commands.CommandTree(self)
        self.guild = discord.Object(id=config.guild_id)
        self.tree.add_command(newsletter_command(self.handlers, config.newsletter_name), guild=self.guild)
        self._sender: asyncio.Task[None] | None = None

    def _wake(self) -> None:
        self._wakeup.set()

    async def setup_hook(self) -> None:
        # A guild command is available at once (global ones take up to an hour to appear).
        await self.tree.sync(guild=self.guild)
        self._sender = asyncio.create_task(self.send_forever(), name="memberflow-relay-sender")

    async def send_forever(self) -> None:
        """Drain the outbox whenever something is queued or a retry is due; the HTTP calls run in a thread so the
        Gateway's heartbeat never waits for memberflow."""
        while not self.is_closed():
            self._wakeup.clear()
            try:
                wait = await asyncio.to_thread(self.deliverer.deliver_due)
            except Exception:
                logger.exception("sending failed unexpectedly: retrying")
                wait = IDLE_SECONDS
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=IDLE_SECONDS if wait is None else wait)
            except TimeoutError:
                pass

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
        await super().close()

    # -- Gateway events ------------------------------------------------------------------------------------------
    async def on_ready(self) -> None:
        logger.info("connected to Discord", extra={"guilds": len(self.guilds), "queued": len(self.outbox)})

    async def on_guild_available(self, guild: discord.Guild) -> None:
        if guild.id == self.config.guild_id:
            if not guild.chunked:
                await guild.chunk()
            caught_up = self.handlers.catch_up_screening(guild)
            logger.info("membership screening caught up", extra={"passes_relayed": caught_up})

    async def on_member_join(self, member: discord.Member) -> None:
        self.handlers.member_joined(member)

    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        self.handlers.member_updated(before, after)

    async def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        self.handlers.member_left(payload.user.id, payload.guild_id)

    async def on_message(self, message: discord.Message) -> None:
        self.handlers.message_created(message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.handlers.reaction_added(payload)


def ping(config: RelayConfig, session: requests.Session | None = None) -> tuple[bool, str]:
    """Send a signed PING: checks the URL, the key pair and the clock without queuing anything."""
    poster = HttpPoster(config.webhook_url, config.private_key_hex, session=session)
    answer = poster(json.dumps(payloads.ping(now=datetime.now(UTC))).encode())
    ok = answer.status == 200
    return ok, f"{config.webhook_url} answered {answer.status or 'nothing'} {answer.error}".rstrip()
