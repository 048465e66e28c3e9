"""What the activity log keeps of an erased member, and what the README says of it (audit M3): the erasure does not
rewrite the log (a choice the README states), so the records stay until they expire, pseudonymised, not anonymous:
the stack's activity key and the person's address find them again with no member record at all."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from test_onboarding_domain import ADA, NOW, World

from memberflow.activity import member_hash
from memberflow.events import MemberErased
from memberflow.onboarding.erasure import erase_member
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import email_key
from support.fakes import MemoryActivityLog
from support.queue import active, joined

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
KEY = b"the stack's ActivityKeySecret"


def _section(start: str, end: str = "\n\n") -> str:
    text = README[README.index(start) :]
    return text[: text.index(end, len(start))]


def test_an_erased_members_records_stay_and_the_key_and_their_address_alone_find_them():
    world = World()
    log = MemoryActivityLog()
    world.deps.activity = log
    join = joined(ADA, consent=True)
    world.join(join)
    world.activity(active(join.event.identity))
    world.deps.clock = lambda: NOW + timedelta(days=1)
    erase_member(
        QueuedEvent(
            idempotency_key="operator:forget:1",
            correlation_id="c",
            source="operator",
            received_at=NOW + timedelta(days=1),
            event=MemberErased(email=ADA),
        ),
        world.deps,
    )

    assert world.members.profiles == {}  # the member record is gone ...
    stored = {member_hash(KEY, record.member) for record in log.written + log.buffered}
    # ... and the hash is computed again from the address alone, without it (what `memberflow export` does).
    assert stored == {member_hash(KEY, email_key(" Ada@Example.org"))}


def test_the_readme_says_what_an_erasure_leaves_in_the_activity_log_and_for_how_long():
    # Not the claims the audit found untrue: the key and the address match the hash without any member record.
    assert "no longer attributable" not in README
    assert "can only be matched through their member record" not in README
    assert "counts no one can attribute" not in README

    retention = next(line for line in _section("### Retention", "\n## ").splitlines() if line.startswith("| `Activity"))
    after = " ".join(_section("**The activity log after an erasure.**", "\n\n**").split())
    erasure = _section("- **Erasure.**", "\n- **")
    # What stays, pseudonymised, for how long, who can trace it back and how; and that it is a choice.
    assert "pseudonymised, not anonymous" in retention and "ActivityRetentionDays" in retention
    assert "except the activity log" in erasure
    for needed in ("ActivityKeySecret", "address or platform identity", "730 days", "(7 days)", "Slack channel"):
        assert needed in after, needed
    assert re.search(r"by choice", after) and "Why not rewritten" in README
    assert "after the erasure it no longer lists these records" in after  # the export finds them only before
