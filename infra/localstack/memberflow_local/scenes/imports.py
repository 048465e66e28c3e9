"""Demo scene: a community that existed before memberflow. `memberflow import csv` brings in a few hundred members
(consenting or not, some who unsubscribed long ago, a few who joined this week, a couple of broken rows), with its
progress bar and summary; the checks read the sandbox back."""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import SceneContext

MEMBERS = 300
UNSUBSCRIBED = range(0, MEMBERS, 50)
"""Members who unsubscribed from the newsletter before memberflow: they must stay unsubscribed."""
RECENT = range(MEMBERS - 5, MEMBERS)
"""Members who joined this week: inside the welcome window."""


def play(scene: SceneContext) -> None:
    from memberflow_cli import imports

    settings, stack = scene.settings, scene.stack
    list_id = settings.mailchimp_list_id
    now = datetime.now(UTC)
    for n in UNSUBSCRIBED:
        stack.mailchimp.seed_member(list_id, _email(n), "unsubscribed")
    calls_before = sum(stack.mailchimp.state.calls.values())
    journeys_before = len(stack.mailchimp.state.journey_triggers)
    scene.say(
        f"{MEMBERS} members who were in the forum before memberflow, from a CSV export; "
        f"{len(UNSUBSCRIBED)} of them unsubscribed from the newsletter years ago, {len(RECENT)} joined this week."
    )
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "community.csv"
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["email", "name", "platform", "user_id", "joined", "last_active", "consent", "workspace"])
            for n in range(MEMBERS):
                joined = now - timedelta(days=2) if n in RECENT else datetime(2024, 1 + n % 4, 10, tzinfo=UTC)
                writer.writerow(
                    [
                        _email(n),
                        f"Member {n}",
                        "discourse",
                        str(5000 + n),
                        joined.isoformat(),
                        "",
                        "true" if n % 10 < 7 else "false",
                        "https://forum.example.org",
                    ]
                )
            writer.writerow(["not an address", "Broken Row", "discourse", "9998", "2024-01-01", "", "true", "x"])
            writer.writerow(["late@example.org", "Late Date", "discourse", "9999", "sometime", "", "true", "x"])
        parser = argparse.ArgumentParser(prog="memberflow")
        imports.register(parser.add_subparsers())
        endpoints = stack.endpoints()
        ports = {
            "MEMBERFLOW_LOCAL_AWS_PORT": endpoints["aws_endpoint"].rsplit(":", 1)[1],
            "MEMBERFLOW_LOCAL_MAILCHIMP_PORT": endpoints["mailchimp_url"].rsplit(":", 1)[1].split("/")[0],
        }
        previous = {name: os.environ.get(name) for name in ports}
        os.environ.update(ports)
        try:
            scene.say("$ memberflow import csv community.csv", indent=False)
            code = imports.run(parser.parse_args(["import", "csv", str(path)]), out=scene.story.out)
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    state = stack.mailchimp.state
    status = {
        n: (state.get_member(list_id, _email(n)).status if state.get_member(list_id, _email(n)) else None)
        for n in range(MEMBERS)
    }
    calls = sum(state.calls.values()) - calls_before
    journeys = [t["email_address"] for t in state.journey_triggers[journeys_before:]]
    scene.say(f"{calls} Mailchimp calls for {MEMBERS} members (one batch subscribe, one call per tag)")
    scene.check(code == 0, "the import finished")
    scene.check(all(status[n] == "unsubscribed" for n in UNSUBSCRIBED), "nobody who unsubscribed was resubscribed")
    scene.check(
        all(
            status[n] == ("subscribed" if n % 10 < 7 else "transactional")
            for n in range(MEMBERS)
            if n not in UNSUBSCRIBED
        ),
        "every other member is in the audience once, subscribed only with consent",
    )
    expected = sorted(_email(n) for n in RECENT if n % 10 < 7 and n not in UNSUBSCRIBED)
    scene.check(sorted(journeys) == expected, "a welcome journey only for consenting members who joined this week")
    scene.check(calls <= MEMBERS // 10, "the import used Mailchimp's bulk endpoints, not one call per member")


def _email(n: int) -> str:
    return f"existing{n}@example.org"
