"""The Discord relay (relays/discord) without a Discord connection: its Gateway handlers and its /newsletter form are
driven with stand-ins for discord.py's objects, its deliveries are signed by its own code and checked by our intake
(accept_webhook with in-memory dependencies), and its queue on disk survives an outage and a restart."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from memberflow.events import MemberActive, MemberJoined, MemberScreeningPassed
from memberflow.intake.service import IntakeDeps, accept_webhook
from memberflow.models import MemberIdentity, Platform
from memberflow.pipeline.envelope import QueuedEvent
from support.fakes import MemoryTrace

discord = pytest.importorskip("discord", reason="discord.py is not installed: `make install` adds it (dev extra)")

from memberflow_discord_relay import payloads, signing  # noqa: E402
from memberflow_discord_relay.bot import NewsletterForm, RelayBot, intents, newsletter_command, ping  # noqa: E402
from memberflow_discord_relay.config import ConfigError, RelayConfig  # noqa: E402
from memberflow_discord_relay.delivery import Answer, Backoff, Deliverer, HttpPoster, retry_after  # noqa: E402
from memberflow_discord_relay.handlers import RelayHandlers, email_problem  # noqa: E402
from memberflow_discord_relay.outbox import Outbox  # noqa: E402
from support.discord_standins import GUILD_ID, JOINED, Guild, Interaction, Member, Message, submit  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "webhooks"
RELAY_KEY = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"  # RFC 8032 test 1 seed
URL = "https://api.example.org/webhooks/discord"


class Response:
    """requests.Response as HttpPoster reads it."""

    def __init__(self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        self.status_code, self._body, self.headers = status, body, headers or {}

    def json(self) -> Any:
        if self._body is None:
            raise ValueError("no JSON")
        return self._body


class Intake:
    """Our webhook intake behind a requests.Session stand-in: the relay's signed POSTs go to accept_webhook (secrets
    hold the relay's public key), unless an outage is scripted."""

    def __init__(self) -> None:
        self.queued: list[QueuedEvent] = []
        self.deps = IntakeDeps(
            queue=self,
            trace=MemoryTrace(),
            secrets=lambda: {"discord_relay_public_key": signing.public_key_hex(RELAY_KEY)},
            clock=lambda: datetime.now(UTC),
        )
        self.outage: list[Any] = []
        """Answers (a Response) or exceptions to give instead of intake's, one per request, in order."""
        self.answers: list[int] = []

    def send(self, event: QueuedEvent) -> str:
        self.queued.append(event)
        return f"m-{len(self.queued)}"

    def post(self, url: str, *, data: bytes, headers: dict[str, str], timeout: float) -> Response:
        assert url == URL and headers["Content-Type"] == "application/json" and timeout > 0
        if self.outage:
            scripted = self.outage.pop(0)
            if isinstance(scripted, Exception):
                raise scripted
            self.answers.append(scripted.status_code)
            return scripted
        answer = accept_webhook("discord", data, headers, self.deps, correlation_id=f"req-{len(self.answers)}")
        self.answers.append(answer.status)
        return Response(answer.status, answer.body, answer.headers)

    def events(self) -> list[Any]:
        return [queued.event for queued in self.queued]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Relay:
    """The relay's pieces as bot.py wires them, around a fake intake and a controllable clock."""

    def __init__(self, tmp_path: Path, intake: Intake | None = None) -> None:
        self.intake = intake or Intake()
        self.clock = Clock()
        self.outbox = Outbox(tmp_path / "outbox.sqlite3")
        self.handlers = RelayHandlers(GUILD_ID, self.outbox, clock=lambda: datetime.fromtimestamp(self.clock(), UTC))
        self.poster = HttpPoster(URL, RELAY_KEY, session=self.intake)  # type: ignore[arg-type]
        self.deliverer = Deliverer(
            self.outbox, self.poster, backoff=Backoff(base=1, maximum=60, jitter=lambda d: d), clock=self.clock
        )

    def deliver(self) -> float | None:
        return self.deliverer.deliver_due()


@pytest.fixture
def relay(tmp_path: Path) -> Relay:
    return Relay(tmp_path)


@pytest.fixture
def guild() -> Guild:
    return Guild()


def nova(guild: Guild, **changes: Any) -> Member:
    member = Member(id=1187736602143911111, name="nova", global_name="Nova Quinn", guild=guild, **changes)
    guild.members[member.id] = member
    return member


def identity(member: Member) -> MemberIdentity:
    return MemberIdentity(platform=Platform.DISCORD, workspace=str(GUILD_ID), user_id=str(member.id))


# ---------------------------------------------------------------- Gateway events -> intake


def test_a_join_is_relayed_signed_and_intake_queues_it_as_a_join(relay: Relay, guild: Guild) -> None:
    member = nova(guild)

    assert relay.handlers.member_joined(member)
    assert relay.deliver() is None  # nothing left to send

    assert relay.intake.answers == [200]
    assert relay.intake.events() == [
        MemberJoined(
            identity=identity(member), name="Nova Quinn", username="nova", joined_at=JOINED, email_verified=False
        )
    ]
    assert relay.intake.queued[0].idempotency_key.startswith(f"discord:{GUILD_ID}:")
    assert len(relay.outbox) == 0


def test_the_same_join_dispatched_twice_keeps_one_id(relay: Relay, guild: Guild) -> None:
    member = nova(guild)

    assert relay.handlers.member_joined(member) is True
    assert relay.handlers.member_joined(member) is False  # Discord dispatched it again after a reconnect
    relay.deliver()

    assert len(relay.intake.queued) == 1


def test_bots_and_other_servers_are_not_relayed(relay: Relay, guild: Guild) -> None:
    other = Guild(id=42)

    assert not relay.handlers.member_joined(nova(guild, bot=True))
    assert not relay.handlers.member_joined(Member(id=7, name="x", global_name=None, guild=other))
    assert len(relay.outbox) == 0


def test_a_member_in_screening_is_held_and_their_pass_is_relayed_once(relay: Relay, guild: Guild) -> None:
    before = nova(guild, pending=True)
    after = nova(guild, pending=False)
    renamed = nova(guild, pending=False)

    relay.handlers.member_joined(before)
    assert relay.handlers.member_updated(before, after)
    # Discord sends pending: false on every later update too (a nickname, a role): not a pass.
    assert not relay.handlers.member_updated(after, renamed)
    relay.deliver()

    join, passed = relay.intake.events()
    assert isinstance(join, MemberJoined) and join.screening_pending is True
    assert passed == MemberScreeningPassed(
        identity=identity(after), joined_at=JOINED, passed_at=datetime.fromtimestamp(relay.clock(), UTC)
    )
    assert relay.outbox.held() == {}


def test_a_held_member_s_pass_is_relayed_even_when_the_cached_member_was_not_pending(
    relay: Relay, guild: Guild
) -> None:
    relay.handlers.member_joined(nova(guild, pending=True))
    stale = nova(guild, pending=False)  # discord.py's copy from before the update, refreshed meanwhile

    assert relay.handlers.member_updated(stale, nova(guild, pending=False))
    assert relay.outbox.held() == {}


def test_a_pass_missed_while_the_relay_was_down_is_relayed_when_it_is_back(tmp_path: Path, guild: Guild) -> None:
    first = Relay(tmp_path)
    first.handlers.member_joined(nova(guild, pending=True))
    left = Member(id=5, name="gone", global_name=None, guild=guild, pending=True)
    first.handlers.member_joined(left)
    first.deliver()

    # The relay is down while Nova accepts the rules and the other member leaves; it restarts on the same disk.
    nova(guild, pending=False)
    back = Relay(tmp_path, first.intake)
    assert back.handlers.catch_up_screening(guild) == 1
    back.deliver()

    assert [type(event).__name__ for event in back.intake.events()] == [
        "MemberJoined",
        "MemberJoined",
        "MemberScreeningPassed",
    ]
    assert back.outbox.held() == {}


def test_messages_are_relayed_as_metadata_only(relay: Relay, guild: Guild) -> None:
    author = nova(guild)
    written = JOINED + timedelta(hours=2)
    message = Message(id=1300000000000000001, guild=guild, author=author, created_at=written)
    message.content = "my phone number is ..."  # type: ignore[attr-defined]

    relay.handlers.message_created(message)
    sent = relay.outbox.next_due(relay.clock()).body  # type: ignore[union-attr]
    relay.deliver()

    assert relay.intake.events() == [
        MemberActive(
            identity=identity(author),
            activity="message",
            active_at=written,
            channel="1187736602143985670",
            item="1300000000000000001",
        )
    ]
    assert set(json.loads(sent)["message"]) == {"id", "channel_id", "author", "timestamp"}
    assert b"phone" not in sent


@pytest.mark.parametrize(
    "change",
    [
        {"guild": None},  # a direct message
        {"guild": Guild(id=42)},
        {"webhook_id": 99},
        {"type": discord.MessageType.new_member},  # "Nova joined the server", authored by Nova
        {"type": discord.MessageType.pins_add},
    ],
    ids=["dm", "other-server", "webhook", "join-system-message", "pin-system-message"],
)
def test_messages_that_are_not_a_members_own_words_are_not_relayed(relay: Relay, guild: Guild, change: dict) -> None:
    message = Message(id=1300000000000000002, guild=guild, author=nova(guild), created_at=JOINED)
    for name, value in change.items():
        setattr(message, name, value)

    assert not relay.handlers.message_created(message)
    assert len(relay.outbox) == 0


def test_bot_messages_are_not_relayed(relay: Relay, guild: Guild) -> None:
    bot = Member(id=3, name="helper", global_name=None, guild=guild, bot=True)
    assert not relay.handlers.message_created(Message(id=1, guild=guild, author=bot, created_at=JOINED))


def test_a_reaction_is_relayed_as_reaction_activity(relay: Relay, guild: Guild) -> None:
    member = nova(guild)
    reaction = discord.RawReactionActionEvent(
        {
            "message_id": "1300000000000000003",
            "channel_id": "1187736602143985670",
            "user_id": str(member.id),
            "guild_id": str(GUILD_ID),
            "burst": False,
            "type": 0,
        },
        discord.PartialEmoji(name="\N{WAVING HAND SIGN}"),
        "REACTION_ADD",
    )
    reaction.member = member  # what discord.py sets for a guild reaction

    assert relay.handlers.reaction_added(reaction)
    assert not relay.handlers.reaction_added(reaction)  # the same reaction again: one id
    relay.deliver()

    assert relay.intake.events() == [
        MemberActive(
            identity=identity(member),
            activity="reaction",
            active_at=datetime.fromtimestamp(relay.clock(), UTC),
            channel="1187736602143985670",
            item="1300000000000000003",
        )
    ]


def test_the_relays_deliveries_are_the_sample_deliveries(guild: Guild) -> None:
    """events/webhooks/discord_{member_update,reaction_add,newsletter_signup}.json are what the relay sends."""
    sample_guild = Guild(id=1098765432109876543)
    jane = Member(
        id=843210987654321098,
        name="janedoe",
        global_name="Jane Doe",
        guild=sample_guild,
        joined_at=datetime.fromisoformat("2024-11-14T22:13:20.861000+00:00"),
    )

    def sample(name: str) -> dict[str, Any]:
        return json.loads((SAMPLES / f"{name}.json").read_text())["body"]

    reaction = SimpleNamespace(
        message_id=1306712399912345600,
        channel_id=1098765432109876550,
        guild_id=sample_guild.id,
        user_id=jane.id,
        member=jane,
        emoji=discord.PartialEmoji(name="\N{WAVING HAND SIGN}"),
    )
    at = datetime.fromisoformat
    assert payloads.member_screening_passed(jane, now=at("2024-11-14T22:16:02.118000+00:00")) == sample(
        "discord_member_update"
    )
    assert payloads.reaction_add(reaction, now=at("2024-11-14T22:31:40.250000+00:00")) == sample("discord_reaction_add")
    signup = payloads.newsletter_signup(
        1306713011234567890, jane, "jane.doe@example.com", now=at("2024-11-14T22:33:12.907000+00:00")
    )
    assert signup == sample("discord_newsletter_signup")


# ---------------------------------------------------------------- /newsletter


def test_the_newsletter_command_opens_a_form_with_the_address_and_an_unticked_consent_box(relay: Relay) -> None:
    command = newsletter_command(relay.handlers, "the Makers newsletter")
    interaction = Interaction(nova(Guild()))

    asyncio.run(command.callback(interaction))  # type: ignore[arg-type]

    [form] = interaction.modals
    assert isinstance(form, NewsletterForm)
    rendered = json.dumps(form.to_dict())
    components = [row["component"] for row in form.to_dict()["components"]]
    assert [c["custom_id"] for c in components] == ["email", "consent"]
    assert components[1]["type"] == 23 and components[1].get("default") is False  # a checkbox, not ticked
    assert "the Makers newsletter" in rendered
    assert command.name == "newsletter" and command.guild_only


def test_a_submitted_form_is_relayed_and_intake_asks_for_double_opt_in(relay: Relay, guild: Guild) -> None:
    member = nova(guild)
    interaction = Interaction(member)

    submit(NewsletterForm(relay.handlers, "the newsletter"), interaction, " nova@example.org ", True)
    relay.deliver()

    [(reply, ephemeral)] = interaction.sent
    assert ephemeral and "nova@example.org" in reply and "confirmation email" in reply
    [queued] = relay.intake.queued
    assert queued.idempotency_key == f"discord:{GUILD_ID}:{interaction.id}"
    assert queued.event == MemberJoined(
        identity=identity(member),
        email="nova@example.org",
        name="Nova Quinn",
        username="nova",
        joined_at=JOINED,
        marketing_consent=True,
        # The consent's time: when the member sent the form, not when they joined the server.
        consented_at=datetime.fromtimestamp(relay.clock(), UTC),
        email_verified=False,  # proven only by Mailchimp's confirmation email
    )


def test_a_signup_from_a_member_in_screening_says_so_and_is_held(relay: Relay, guild: Guild) -> None:
    interaction = Interaction(nova(guild, pending=True))

    submit(NewsletterForm(relay.handlers, "the newsletter"), interaction, "nova@example.org", True)
    relay.deliver()

    assert "accepted the server's rules" in interaction.sent[0][0]
    assert relay.intake.events()[0].screening_pending is True


def test_a_form_without_the_consent_box_ticked_relays_nothing(relay: Relay, guild: Guild) -> None:
    interaction = Interaction(nova(guild))

    submit(NewsletterForm(relay.handlers, "the newsletter"), interaction, "nova@example.org", False)

    assert "Nothing was sent" in interaction.sent[0][0] and interaction.sent[0][1]
    assert len(relay.outbox) == 0


@pytest.mark.parametrize(
    "email",
    ["not-an-address", "nova@example", "nova@exa mple.org", "nova@example.org\u202e", "a" * 65 + "@example.org", ""],
)
def test_a_form_with_an_address_mail_systems_refuse_relays_nothing(relay: Relay, guild: Guild, email: str) -> None:
    interaction = Interaction(nova(guild))

    submit(NewsletterForm(relay.handlers, "the newsletter"), interaction, email, True)

    assert "Nothing was sent" in interaction.sent[0][0]
    assert len(relay.outbox) == 0


def test_addresses_the_relay_accepts_are_addresses_intake_accepts(relay: Relay, guild: Guild) -> None:
    for n, email in enumerate(["n@example.org", "first.last+news@mail.example.co.uk", "a" * 64 + "@example.org"]):
        assert email_problem(email) is None
        relay.handlers.newsletter_signup(n + 1, nova(guild), email, True)
    relay.deliver()

    assert relay.intake.answers == [200, 200, 200]
    assert len(relay.intake.queued) == 3


# ---------------------------------------------------------------- the queue on disk


def test_an_outage_then_recovery_delivers_every_event_once_in_order(tmp_path: Path, guild: Guild) -> None:
    relay = Relay(tmp_path)
    members = [Member(id=100 + n, name=f"m{n}", global_name=None, guild=guild) for n in range(5)]
    for member in members[:3]:
        relay.handlers.member_joined(member)
    relay.intake.outage = [
        requests.ConnectionError("refused"),
        Response(503, {"error": "queue_unavailable", "detail": "SQS is throttling"}),
        Response(502),
        requests.Timeout("read timed out"),
    ]

    waits = []
    while (wait := relay.deliver()) is not None:
        waits.append(wait)
        relay.clock.now += wait
        if len(waits) == 2:  # the relay restarts mid-outage: a new process reads the same queue
            relay = _restarted(relay, tmp_path)
            for member in members[3:]:
                relay.handlers.member_joined(member)

    # The back-off grows while intake cannot take events, and keeps growing across the restart.
    assert waits == [1, 2, 4, 8]
    assert relay.intake.answers == [503, 502, 200, 200, 200, 200, 200]
    delivered = [event.identity.user_id for event in relay.intake.events()]
    assert delivered == [str(member.id) for member in members]  # every event once, oldest first
    assert len(relay.outbox) == 0


def _restarted(relay: Relay, tmp_path: Path) -> Relay:
    back = Relay(tmp_path, relay.intake)
    back.clock.now = relay.clock.now
    return back


def test_retry_after_is_honoured_for_429_and_503(relay: Relay, guild: Guild) -> None:
    relay.handlers.member_joined(nova(guild))
    relay.intake.outage = [Response(429, {"error": "throttled"}, {"Retry-After": "30"})]

    wait = relay.deliver()

    assert wait == 30
    relay.clock.now += 29
    assert relay.deliver() == pytest.approx(1)
    assert relay.intake.answers == [429]  # not retried before Retry-After
    relay.clock.now += 1
    assert relay.deliver() is None
    assert relay.intake.answers == [429, 200]


@pytest.mark.parametrize("status", [400, 401, 413, 404])
def test_a_refusal_for_good_is_logged_and_dropped_and_the_next_event_goes_on(
    relay: Relay, guild: Guild, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = nova(guild), Member(id=9, name="next", global_name=None, guild=guild)
    relay.handlers.member_joined(first)
    relay.handlers.member_joined(second)
    relay.intake.outage = [Response(status, {"error": "invalid_payload", "detail": "..."})]

    with caplog.at_level(logging.ERROR, logger="memberflow_discord_relay.delivery"):
        assert relay.deliver() is None

    assert relay.intake.answers == [status, 200]
    assert [event.identity.user_id for event in relay.intake.events()] == ["9"]
    [line] = caplog.records
    assert line.getMessage() == "memberflow refused the event: dropped"
    assert line.status == status and line.event_type == "GUILD_MEMBER_ADD"  # type: ignore[attr-defined]
    assert "nova" not in caplog.text  # no personal data in the log


def test_each_attempt_is_signed_anew(relay: Relay, guild: Guild) -> None:
    """The signature's timestamp must be within five minutes of intake's clock: a retry an hour later is re-signed."""
    seen: list[str] = []
    original = relay.intake.post

    def spy(url: str, *, data: bytes, headers: dict[str, str], timeout: float) -> Response:
        seen.append(headers["X-Signature-Timestamp"])
        return original(url, data=data, headers=headers, timeout=timeout)

    relay.intake.post = spy  # type: ignore[method-assign]
    relay.handlers.member_joined(nova(guild))
    relay.intake.outage = [Response(503)]
    relay.poster._clock = relay.clock
    relay.deliver()
    relay.clock.now += 3600
    relay.poster._clock = lambda: datetime.now(UTC).timestamp()  # intake checks against the real clock
    relay.deliver()

    assert len(set(seen)) == 2 and relay.intake.answers == [503, 200]


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = 1_800_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 120, UTC), usegmt=True)

    assert retry_after("7", now) == 7
    assert retry_after(date, now) == pytest.approx(120)
    assert retry_after(None, now) is None and retry_after("soon", now) is None


def test_answers_are_sorted_into_delivered_retry_and_drop() -> None:
    assert Answer(200).delivered and Answer(202).delivered
    assert all(Answer(status).retryable for status in (None, 408, 429, 500, 502, 503, 504))
    assert not any(Answer(status).retryable or Answer(status).delivered for status in (400, 401, 403, 404, 413))


# ---------------------------------------------------------------- configuration and the bot


def test_configuration_comes_from_the_environment() -> None:
    config = RelayConfig.from_env(
        {
            "DISCORD_BOT_TOKEN": "token",
            "RELAY_PRIVATE_KEY": RELAY_KEY,
            "MEMBERFLOW_API_URL": "https://abc.execute-api.eu-west-1.amazonaws.com/",
            "DISCORD_GUILD_ID": str(GUILD_ID),
            "RELAY_OUTBOX_PATH": "/tmp/relay/outbox.sqlite3",
        }
    )

    assert config.webhook_url == "https://abc.execute-api.eu-west-1.amazonaws.com/webhooks/discord"
    assert config.guild_id == GUILD_ID and str(config.outbox_path) == "/tmp/relay/outbox.sqlite3"


def test_incomplete_configuration_names_every_variable() -> None:
    with pytest.raises(ConfigError) as refused:
        RelayConfig.from_env({"RELAY_PRIVATE_KEY": "abc", "DISCORD_GUILD_ID": "my server"})

    for name in ("DISCORD_BOT_TOKEN", "RELAY_PRIVATE_KEY", "MEMBERFLOW_API_URL", "DISCORD_GUILD_ID"):
        assert name in str(refused.value)


def test_the_bot_asks_for_the_members_intent_and_never_for_message_content(tmp_path: Path) -> None:
    wanted = intents()
    assert wanted.members and wanted.guilds and wanted.guild_messages and wanted.guild_reactions
    assert not wanted.message_content and not wanted.presences

    config = RelayConfig("token", RELAY_KEY, URL, GUILD_ID, outbox_path=tmp_path / "outbox.sqlite3")
    bot = RelayBot(config)
    assert bot.tree.get_command("newsletter", guild=discord.Object(id=GUILD_ID)) is not None


def test_keygen_prints_a_pair_intake_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    from memberflow_discord_relay.__main__ import main

    assert main(["keygen"]) == 0
    printed = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    assert signing.public_key_hex(printed["RELAY_PRIVATE_KEY"]) == printed["discord_relay_public_key"]


def test_ping_checks_url_key_and_clock_against_intake(tmp_path: Path) -> None:
    config = RelayConfig("token", RELAY_KEY, URL, GUILD_ID, outbox_path=tmp_path / "outbox.sqlite3")
    intake = Intake()

    ok, said = ping(config, session=intake)  # type: ignore[arg-type]
    wrong_key, _ = ping(replace(config, private_key_hex="11" * 32), session=intake)  # type: ignore[arg-type]

    assert ok and "200" in said
    assert not wrong_key and intake.answers == [200, 401]
    assert intake.queued == []


def test_the_relays_lock_pins_what_the_tests_run_with() -> None:
    import nacl

    lock = (Path(__file__).resolve().parents[2] / "relays" / "discord" / "requirements.txt").read_text()
    for name, version in (("discord-py", discord.__version__), ("pynacl", nacl.__version__)):
        assert f"\n{name}=={version} \\\n    --hash=sha256:" in lock, f"{name} {version} is not what the relay ships"
    assert "\nrequests==" in lock
