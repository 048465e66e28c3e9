"""Builds the demo scenario (`events/demo/scenario.json`): a week in a small community, as the platforms would
deliver it. Regenerate with `python -m memberflow_local.scenario > events/demo/scenario.json`.

The steps are grouped into scenes, the chapters `make demo` tells: the first step of a scene carries its title in
`scene`; the steps after it, up to the next `scene`, belong to it.

Bodies follow each platform's own payload format; signatures are added when the demo sends them. The Discord
deliveries are built by the Discord relay's own payload functions (relays/discord), from stand-ins for the
discord.py objects the relay would see.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from memberflow_discord_relay import payloads as relay

START = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
SLACK_TEAM = "T0COMMUNITY"
DISCOURSE_URL = "https://forum.example.org"
DISCORD_GUILD = "1187736602143985664"
CONSENT_FIELD = "1"
FIRST = [
    "Ada",
    "Grace",
    "Linus",
    "Margaret",
    "Alan",
    "Katherine",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Guido",
    "Radia",
    "Edsger",
    "Hedy",
    "Tim",
    "Sophie",
    "Donald",
    "Annie",
    "John",
    "Joan",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Turing",
    "Johnson",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Rossum",
    "Perlman",
    "Dijkstra",
    "Lamarr",
    "Berners-Lee",
    "Wilson",
    "Knuth",
    "Easley",
    "Backus",
    "Clarke",
]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class _Community:
    def __init__(self) -> None:
        self.random = random.Random(7)
        self.steps: list[dict[str, Any]] = []
        self.subscribed: set[str] = set()
        self.not_subscribed: set[str] = set()
        self.counter = 0
        self._scenes: dict[int, str] = {}

    def scene(self, title: str) -> None:
        """The steps added from now on make up a scene called `title`."""
        self._scenes[len(self.steps)] = title

    def steps_with_scenes(self) -> list[dict[str, Any]]:
        return [{"scene": self._scenes[n], **step} if n in self._scenes else step for n, step in enumerate(self.steps)]

    def person(self) -> tuple[str, str]:
        self.counter += 1
        first, last = FIRST[self.counter % len(FIRST)], LAST[(self.counter * 7) % len(LAST)]
        return f"{first} {last}", f"{first}.{last}.{self.counter}".lower().replace("-", "") + "@example.org"

    def when(self, day: float) -> datetime:
        return START + timedelta(days=day, minutes=self.random.randint(0, 600))

    def deliver(self, source: str, body: Any, label: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        base = {
            "slack": _slack_headers(),
            "discord": _json_headers("memberflow-discord-relay/1.0"),
            "generic": _json_headers("community-site/2.3"),
        }.get(source, {})
        self.steps.append(
            {
                "kind": "deliver",
                "source": source,
                "label": label,
                "headers": {**base, **(headers or {})},
                "body": body,
                **extra,
            }
        )

    # -- Slack ---------------------------------------------------------------------------------------------------
    def slack_join(self, user_id: str, name: str, email: str, at: datetime) -> dict[str, Any]:
        body = {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "team_id": SLACK_TEAM,
            "api_app_id": "A0MEMBERFLOW",
            "event": {
                "type": "team_join",
                "user": {
                    "id": user_id,
                    "team_id": SLACK_TEAM,
                    "name": name.split()[0].lower(),
                    "deleted": False,
                    "real_name": name,
                    "tz": "Europe/Amsterdam",
                    "is_admin": False,
                    "is_owner": False,
                    "is_bot": False,
                    "is_app_user": False,
                    "updated": int(at.timestamp()),
                    "profile": {
                        "real_name": name,
                        "display_name": name.split()[0],
                        "email": email,
                        "first_name": name.split()[0],
                        "last_name": name.split()[-1],
                    },
                },
                "event_ts": f"{at.timestamp():.6f}",
            },
            "type": "event_callback",
            "event_id": f"Ev{self.random.randrange(10**9, 10**10)}JOIN",
            "event_time": int(at.timestamp()),
            "authorizations": [{"team_id": SLACK_TEAM, "user_id": "U0BOT", "is_bot": True}],
            "is_ext_shared_channel": False,
        }
        self.deliver("slack", body, f"slack team_join {user_id}")
        return body

    def slack_message(self, user_id: str, at: datetime, text: str) -> None:
        ts = f"{at.timestamp():.6f}"
        body = {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "team_id": SLACK_TEAM,
            "api_app_id": "A0MEMBERFLOW",
            "event": {
                "type": "message",
                "channel": "C0INTRODUCE",
                "user": user_id,
                "text": text,
                "ts": ts,
                "event_ts": ts,
                "channel_type": "channel",
            },
            "type": "event_callback",
            "event_id": f"Ev{self.random.randrange(10**9, 10**10)}MSG",
            "event_time": int(at.timestamp()),
        }
        self.deliver("slack", body, f"slack message {user_id}")

    # -- Discourse -----------------------------------------------------------------------------------------------
    def discourse_user(self, user_id: int, name: str, email: str, at: datetime, consent: bool) -> dict[str, Any]:
        """A user as WebHookUserSerializer serializes it (no `active`: whether the address is confirmed is told by
        the user_confirmed_email event); user field 1 is the newsletter box, null while unticked."""
        return {
            "user": {
                "id": user_id,
                "username": name.split()[0].lower() + str(user_id),
                "name": name,
                "avatar_template": "/letter_avatar_proxy/v4/letter/a/8edcca/{size}.png",
                "email": email,
                "secondary_emails": [],
                "last_posted_at": None,
                "last_seen_at": None,
                "created_at": _iso(at),
                "muted": False,
                "trust_level": 0,
                "moderator": False,
                "admin": False,
                "title": None,
                "badge_count": 0,
                "user_fields": {CONSENT_FIELD: "true" if consent else None},
                "time_read": 0,
                "recent_time_read": 0,
                "primary_group_id": None,
                "primary_group_name": None,
                "staged": False,
                "pending_count": 0,
                "post_count": 0,
            }
        }

    def discourse_user_event(self, event: str, body: dict[str, Any]) -> None:
        self.deliver(
            "discourse",
            body,
            f"discourse {event} {body['user']['id']}",
            _discourse_headers("user", event, self.random.randrange(1000, 9999)),
        )

    def discourse_join(self, user_id: int, name: str, email: str, at: datetime, consent: bool) -> dict[str, Any]:
        """user_created: at sign-up, before the member confirms their address."""
        body = self.discourse_user(user_id, name, email, at, consent)
        self.discourse_user_event("user_created", body)
        return body

    def discourse_confirm(self, joined: dict[str, Any]) -> None:
        """user_confirmed_email: the member followed the link in Discourse's confirmation email."""
        body = json.loads(json.dumps(joined))
        body["user"]["last_seen_at"] = body["user"]["created_at"]
        self.discourse_user_event("user_confirmed_email", body)

    def discourse_tick_consent(self, joined: dict[str, Any]) -> None:
        """user_updated: the member ticks the newsletter box in their preferences."""
        body = json.loads(json.dumps(joined))
        body["user"]["user_fields"][CONSENT_FIELD] = "true"
        self.discourse_user_event("user_updated", body)

    def discourse_post(self, user_id: int, username: str, post_id: int, at: datetime) -> None:
        body = {
            "post": {
                "id": post_id,
                "name": None,
                "username": username,
                "user_id": user_id,
                "created_at": _iso(at),
                "cooked": "<p>Hello everyone, glad to be here!</p>",
                "raw": "Hello everyone, glad to be here!",
                "post_number": 1,
                "post_type": 1,
                "topic_id": 40 + post_id % 5,
                "topic_slug": "introductions",
                "topic_title": "Introduce yourself",
                "category_id": 4,
                "reply_count": 0,
                "reads": 1,
            }
        }
        self.deliver(
            "discourse",
            body,
            f"discourse post_created {post_id}",
            _discourse_headers("post", "post_created", self.random.randrange(1000, 9999)),
        )

    # -- Discord relay -------------------------------------------------------------------------------------------
    def discord_join(
        self, user_id: str, name: str, email: str | None, at: datetime, consent: bool, pending: bool = False
    ) -> None:
        body = relay.member_add(_discord_member(user_id, name, at, pending), now=at)
        if email:  # collected by an onboarding step of the server's own, which the format allows (unverified)
            body["member"].update({"email": email, "marketing_consent": consent})
        self.deliver("discord", body, f"discord member_add {user_id}" + (" (in screening)" if pending else ""))

    def discord_screening_passed(self, user_id: str, name: str, joined: datetime, at: datetime) -> None:
        body = relay.member_screening_passed(_discord_member(user_id, name, joined, False), now=at)
        self.deliver("discord", body, f"discord member_update {user_id} (passed screening)")

    def discord_newsletter(self, user_id: str, name: str, joined: datetime, email: str, at: datetime) -> None:
        """The member submits the relay's /newsletter form: the address and the consent box ticked."""
        interaction_id = 1310000000000000000 + self.random.randrange(10**12)
        body = relay.newsletter_signup(interaction_id, _discord_member(user_id, name, joined, False), email, now=at)
        self.deliver("discord", body, f"discord /newsletter {user_id}")

    def discord_message(self, user_id: str, message_id: str, at: datetime) -> None:
        author = SimpleNamespace(id=int(user_id), name="member" + user_id[-3:], bot=False)
        message = SimpleNamespace(
            id=int(message_id), guild=_DISCORD_GUILD, channel=SimpleNamespace(id=1187736602143985670), author=author
        )
        message.created_at = at
        self.deliver("discord", relay.message_create(message, now=at), f"discord message {message_id}")


_DISCORD_GUILD = SimpleNamespace(id=int(DISCORD_GUILD))


def _discord_member(user_id: str, name: str, joined: datetime, pending: bool) -> SimpleNamespace:
    """The attributes of discord.Member the relay reads."""
    return SimpleNamespace(
        id=int(user_id),
        name=name.split()[0].lower() + user_id[-3:],
        global_name=name,
        bot=False,
        guild=_DISCORD_GUILD,
        joined_at=joined,
        pending=pending,
    )


def _json_headers(agent: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": agent}


def _slack_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}


def _discourse_headers(event_type: str, event: str, delivery_id: int) -> dict[str, str]:
    # The demo forum's webhook is set to "application/x-www-form-urlencoded": Discourse still posts the raw JSON.
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "Discourse/3.4.0",
        "X-Discourse-Instance": DISCOURSE_URL,
        "X-Discourse-Event-Id": str(delivery_id),
        "X-Discourse-Event-Type": event_type,
        "X-Discourse-Event": event,
    }


def build_scenario() -> dict[str, Any]:
    c = _Community()
    unsubscriber = "former.member@example.org"
    failing = "bounce.loop@example.org"
    c.scene("Before the week starts: the sandbox Mailchimp")
    c.steps.append(
        {
            "kind": "seed_mailchimp",
            "email": unsubscriber,
            "status": "unsubscribed",
            "note": f"{unsubscriber} unsubscribed from the newsletter last year",
        }
    )
    c.steps.append(
        {
            "kind": "sandbox_faults",
            "fail_emails": {failing: 500},
            "note": f"Mailchimp answers 500 for every call about {failing}",
        }
    )

    # Where each member ends up: welcomed when the queue drains (the drip sends them 3 steps unless they take part),
    # welcomed as soon as they confirm Mailchimp's opt-in email (Mailchimp's subscribe webhook: 3 steps too), waiting
    # for that confirmation, or stored without marketing permission.
    welcomed_at_once: set[str] = set()
    welcomed_after_opt_in: set[str] = set()
    pending: set[str] = set()
    active: set[str] = set()

    slack_members, discourse_members, discord_members = [], [], []
    c.scene("Members join on Slack, Discourse and Discord")
    for n in range(18):  # Slack gives no consent signal: stored without marketing permission
        name, email = c.person()
        user_id = f"U0{n:07d}"
        body = c.slack_join(user_id, name, email, c.when(n * 0.1))
        slack_members.append((user_id, email, body))
        c.not_subscribed.add(email)
    for n in range(18):
        name, email = c.person()
        consent = n % 3 != 0
        joined = c.discourse_join(100 + n, name, email, c.when(n * 0.1), consent)
        discourse_members.append((100 + n, joined["user"]["username"], email, consent, joined))
        # user_created comes before the address is confirmed: consent means double opt-in, not a subscribe.
        (pending if consent else c.not_subscribed).add(email)
    for n in range(16):
        name, email = c.person()
        user_id = f"11877366021439{n:05d}"
        has_email, consent = n % 4 != 3, n % 2 == 0
        c.discord_join(user_id, name, email if has_email else None, c.when(n * 0.1), consent)
        discord_members.append((user_id, email if has_email else None))
        if has_email:  # Discord verified none of these addresses: consent means double opt-in
            (pending if consent else c.not_subscribed).add(email)

    c.scene(
        "Four sign-ups to watch: a Slack member consents on the forum, a former subscriber, a failing address, "
        "a new reader"
    )
    # One person on two platforms: Slack first (no consent), then the forum with consent -> double opt-in, which
    # they confirm later: one welcome journey.
    both_user, both_email, _ = slack_members[0]
    c.not_subscribed.discard(both_email)
    c.discourse_join(200, "Cross Platform", both_email, c.when(0.6), True)
    # The earlier unsubscriber joins the forum and ticks the consent box, asking again: Mailchimp's re-opt-in email
    # (pending), never a resubscribe by memberflow; they have not confirmed it by the end of the week.
    c.discourse_join(201, "Former Member", unsubscriber, c.when(0.7), True)
    pending.add(unsubscriber)
    # Mailchimp keeps failing for this member: retried, then parked in the DLQ with the reason.
    c.discourse_join(202, "Bounce Loop", failing, c.when(0.8), True)
    # A new reader with consent: double opt-in; welcomed once they confirm Mailchimp's email.
    confirming = "new.reader@example.org"
    c.discourse_join(203, "New Reader", confirming, c.when(0.9), True)

    c.scene("A Slack retry and a Discourse redelivery")
    # Duplicates: Slack retries a team_join (same event_id); a Discourse admin redelivers a user_created.
    retried = slack_members[3][2]
    c.deliver(
        "slack",
        retried,
        "slack retry of a team_join",
        {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    redelivered = next(step for step in c.steps if step.get("label") == "discourse user_created 101")
    c.deliver("discourse", redelivered["body"], "discourse redelivery of user_created 101", redelivered["headers"])

    # Bad input.
    c.scene("Forged, replayed and malformed requests")
    forged = json.loads(json.dumps(slack_members[5][2]))
    forged["event"]["user"]["profile"]["email"] = "attacker@example.net"
    c.deliver("slack", forged, "forged Slack signature", forge=True, expect=401)
    c.steps.append(
        {
            "kind": "deliver",
            "source": "discourse",
            "label": "malformed Discourse body (truncated JSON)",
            "headers": _discourse_headers("user", "user_created", 4242),
            "raw_body": '{"user": {"id": 77, "us',
            "expect": 400,
        }
    )
    c.deliver(
        "generic",
        {
            "event_id": "web-1",
            "type": "member_joined",
            "occurred_at": _iso(c.when(1)),
            "member": {"email": "no.id@example.org", "marketing_consent": True},
        },
        "generic join missing member.id",
        expect=400,
    )
    c.deliver(
        "discord",
        relay.member_add(_discord_member("999", "Replayer", START, False), now=START),
        "Discord relay delivery replayed 10 minutes later",
        signed_seconds_ago=600,
        expect=401,
    )
    c.scene("The queue drains: memberflow onboards everyone in Mailchimp")
    c.steps.append({"kind": "drain"})

    c.scene("Forum members confirm their addresses and tick the newsletter box; members post and chat")
    # Discourse's confirmation proves the address. A member already asked for double opt-in stays pending: the
    # confirmation that counts is Mailchimp's.
    for _, _, _, _, joined in discourse_members[0:13:2]:
        c.discourse_confirm(joined)
    # Members tick the box minutes after confirming, not in the same instant: let the confirmations land first, or
    # a tick handled before its confirmation would (rightly) ask for double opt-in.
    c.steps.append({"kind": "drain"})
    # Consent given later: by a member whose address the forum has confirmed, a direct subscribe and the welcome;
    # by one who has not confirmed it yet, double opt-in.
    for index in (0, 6, 3):
        _, _, email, _, joined = discourse_members[index]
        c.discourse_tick_consent(joined)
        c.not_subscribed.discard(email)
        (welcomed_at_once if index % 2 == 0 else pending).add(email)
    # Activity: some members take part, which stops their drip.
    day = 0.5
    for user_id, email, _ in slack_members[1:6]:
        c.slack_message(user_id, c.when(day), "Hi all! Happy to be here.")
        active.add(email)
    for user_id, username, email, _, _ in discourse_members[1:8:2]:
        c.discourse_post(user_id, username, 500 + user_id, c.when(day))
        active.add(email)
    for n, (user_id, email) in enumerate(discord_members[:6:2]):
        c.discord_message(user_id, f"13000000000000{n:05d}", c.when(day))
        if email:
            active.add(email)
    c.steps.append({"kind": "drain"})

    # Discord gives bots no addresses: a member asks for the newsletter with the relay's /newsletter command.
    c.scene("On Discord, a member passes membership screening, signs up with /newsletter and confirms by email")
    discord_reader, discord_reader_id, discord_joined = "nova.quinn@example.org", "1187736602143977001", c.when(1.2)
    c.discord_join(discord_reader_id, "Nova Quinn", None, discord_joined, False, pending=True)
    c.steps.append({"kind": "drain"})
    c.discord_screening_passed(discord_reader_id, "Nova Quinn", discord_joined, discord_joined + timedelta(minutes=4))
    c.discord_newsletter(
        discord_reader_id, "Nova Quinn", discord_joined, discord_reader, discord_joined + timedelta(minutes=9)
    )
    c.steps.append(
        {
            "kind": "confirm_opt_in",
            "email": discord_reader,
            "note": f"{discord_reader} clicks the link in Mailchimp's opt-in email",
        }
    )
    welcomed_after_opt_in.add(discord_reader)

    c.scene("Double opt-in confirmed")
    confirmers = [confirming, both_email, discourse_members[1][2], discourse_members[2][2]]
    for email in confirmers:
        c.steps.append(
            {"kind": "confirm_opt_in", "email": email, "note": f"{email} clicks the link in Mailchimp's opt-in email"}
        )
        pending.discard(email)
        welcomed_after_opt_in.add(email)

    # Drip runs 1, 3 and 7 days (and an hour) after the demo's joins were processed: steps 1, 2 and 3 for every
    # inactive member welcomed then. Members who confirmed the opt-in (the Discord reader too) are welcomed when
    # Mailchimp's subscribe webhook arrives, before the first run: 3 steps as well.
    c.scene("The onboarding drip runs on days 1, 3 and 7")
    for days in (1.04, 3.04, 7.04):
        c.steps.append({"kind": "schedule", "name": "DripSchedule", "after_days": days})

    welcomed_at_once -= {failing}
    drip_steps = 3 * len((welcomed_at_once | welcomed_after_opt_in) - active)
    c.subscribed = welcomed_at_once | welcomed_after_opt_in
    return {
        "description": "A week in a small community: joins on Slack, Discourse and Discord, consent and no consent, "
        "forum addresses confirmed and consent given later, an earlier unsubscriber asking again, double opt-ins, a "
        "Discord member's /newsletter sign-up after membership screening, duplicates, a forged, a malformed and a "
        "replayed request, activity, and the onboarding drip.",
        "steps": c.steps_with_scenes(),
        "trace_examples": [
            sorted(c.subscribed)[0],
            slack_members[1][1],
            unsubscriber,
            confirming,
            discord_reader,
            failing,
        ],
        "expected": {
            "subscribed": sorted(c.subscribed),
            "pending": sorted(pending - {failing}),
            "not_subscribed": sorted(c.not_subscribed),
            "still_unsubscribed": [],
            "rejections": {"401": 2, "400": 2},
            "dead_letters": 1,
            "drip_steps": drip_steps,
        },
    }


if __name__ == "__main__":
    print(json.dumps(build_scenario(), indent=1))
