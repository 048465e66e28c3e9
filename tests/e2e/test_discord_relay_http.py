"""The Discord relay (relays/discord) against the local stack over HTTP: a member joins in membership screening while
the API is down, passes screening, signs up with /newsletter, confirms Mailchimp's opt-in email and is welcomed.
The relay's own queue, signatures and HTTP client carry every event; nothing is lost to the outage."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import mailchimp_marketing
import pytest

from memberflow.adapters.member_profiles import DynamoMemberRepository
from memberflow.adapters.trace_store import DynamoTraceStore
from memberflow.trace_report import collect

pytestmark = pytest.mark.e2e
discord = pytest.importorskip("discord", reason="discord.py is not installed: `make install` adds it (dev extra)")

from memberflow_discord_relay.bot import NewsletterForm  # noqa: E402
from memberflow_discord_relay.delivery import Backoff, Deliverer, HttpPoster  # noqa: E402
from memberflow_discord_relay.handlers import RelayHandlers  # noqa: E402
from memberflow_discord_relay.outbox import Outbox  # noqa: E402
from support.discord_standins import GUILD_ID, Guild, Interaction, Member, submit  # noqa: E402

EMAIL = "nova.quinn@example.org"


@pytest.fixture(scope="module")
def running_stack():
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    with LocalStack(LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0)) as stack:
        # No audience webhook: the member's confirmation is found by the scheduled re-check, the safety net when
        # Mailchimp's webhook does not arrive (tests/e2e/test_consent.py covers the webhook).
        stack.mailchimp.state.webhooks.reset()
        yield stack


def send_all(deliverer: Deliverer, timeout: float = 30) -> None:
    """What the bot's sender does: deliver, sleep until the next attempt is due, until the queue is empty."""
    deadline = time.monotonic() + timeout
    while (wait := deliverer.deliver_due()) is not None:
        assert time.monotonic() < deadline, "the relay could not deliver its queue"
        time.sleep(min(wait, 1.0))


def test_a_discord_member_joins_passes_screening_signs_up_confirms_and_is_welcomed(running_stack, tmp_path: Path):
    stack = running_stack
    api = stack.endpoints()["api_url"].rstrip("/")
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    handlers = RelayHandlers(GUILD_ID, outbox)
    deliverer = Deliverer(
        outbox,
        HttpPoster(f"{api}/webhooks/discord", stack.settings.discord_relay_private_key, timeout=5),
        backoff=Backoff(base=0.2, maximum=1.0),
    )
    guild = Guild()
    pending = Member(id=1187736602143977001, name="nova", global_name="Nova Quinn", guild=guild, pending=True)
    passed = Member(id=pending.id, name="nova", global_name="Nova Quinn", guild=guild, pending=False)
    guild.members[passed.id] = passed

    # The API is down while the member joins and passes screening: the relay keeps both events on disk.
    stack.http.stop()
    try:
        handlers.member_joined(pending)
        assert deliverer.deliver_due() is not None
        handlers.member_updated(pending, passed)
        assert len(outbox) == 2
    finally:
        stack.http.port = urlparse(api).port
        stack.http.start()
    send_all(deliverer)
    assert len(outbox) == 0

    # /newsletter: the form with the address and the consent box ticked.
    interaction = Interaction(passed, interaction_id=1306713011299990001)
    submit(NewsletterForm(handlers, "the community newsletter"), interaction, EMAIL, True)
    send_all(deliverer)
    assert stack.drain(timeout=60)

    client = mailchimp_marketing.Client()
    client.set_config({"api_key": stack.settings.mailchimp_api_key})
    client.api_client.host = stack.mailchimp.url
    list_id = stack.settings.mailchimp_list_id
    assert client.lists.get_list_member(list_id, EMAIL)["status"] == "pending"  # double opt-in, nothing sent yet
    assert not _journeys(stack)

    stack.mailchimp.confirm_opt_in(list_id, EMAIL)  # the member clicks the link in Mailchimp's email
    report = stack.fire_schedule("DripSchedule", datetime.now(UTC) + timedelta(hours=2))

    assert report["opt_ins_confirmed"] >= 1
    assert client.lists.get_list_member(list_id, EMAIL)["status"] == "subscribed"
    assert _journeys(stack) == 1
    traces = DynamoTraceStore(stack.table_name("TraceTable"))
    verdict = collect(EMAIL, traces, DynamoMemberRepository(stack.table_name("MembersTable"))).verdict
    assert verdict.welcomed is True


def _journeys(stack) -> int:
    return sum(1 for t in stack.mailchimp.state.journey_triggers if t["email_address"].lower() == EMAIL)
