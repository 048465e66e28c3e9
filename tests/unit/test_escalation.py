"""Escalation rules and the consumer's work on in-memory fakes: one ticket per thread, comments for repeats,
follow-ups after a solved ticket, moderators first for safety reports, members told once per status."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from memberflow.errors import PermanentRefusal, Transient
from memberflow.escalation.rules import DEFAULT_RULES_FILE, RulesError, load_rules
from memberflow.escalation.service import EscalationDeps, escalate, escalate_in_bulk, external_id, status_changed
from memberflow.events import EscalationRequested, TicketStatusChanged
from memberflow.pipeline.envelope import QueuedEvent
from support.fakes import FakeDesk, FakeMessenger, MemoryTicketLinks, MemoryTrace

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RULES = load_rules()


def deps(**overrides):
    values = dict(
        desk=FakeDesk(), links=MemoryTicketLinks(), messenger=FakeMessenger(), rules=RULES, trace=MemoryTrace()
    )
    values.update(overrides)
    return EscalationDeps(clock=lambda: NOW, **values)


def escalation(
    key="k1",
    thread="slack:T1:C1:1700000000.000100",
    rule="billing",
    text="I was charged twice",
    email="ada@example.org",
    via="keyword",
):
    event = EscalationRequested(
        thread=thread,
        platform="slack",
        via=via,
        rule=rule,
        author={"platform": "slack", "workspace": "T1", "user_id": "U1"},
        author_name="Ada",
        email=email,
        text=text,
        permalink="https://example.slack.com/archives/C1/p1700000000000100",
        requested_at=NOW,
        reply_to={"channel": "C1", "thread_ts": "1700000000.000100"},
    )
    return QueuedEvent(idempotency_key=key, correlation_id="c-" + key, source="slack", event=event)


def status(ticket_id, value, key="s1", public_reply=False, at=NOW + timedelta(hours=1)):
    event = TicketStatusChanged(ticket_id=ticket_id, status=value, changed_at=at, public_reply=public_reply)
    return QueuedEvent(idempotency_key=key, correlation_id="c-" + key, source="zendesk", event=event)


# ---------------------------------------------------------------- rules


def test_the_shipped_rules_match_keywords_patterns_reactions_and_flags():
    assert RULES.for_text("I was CHARGED TWICE this month").name == "billing"
    assert RULES.for_text("the app crashes, here is the stack trace").category == "bug"
    assert RULES.for_text("he said he would hurt you").category == "safety"
    assert RULES.for_text("a refund please, I am being threatened").category == "safety"  # most urgent wins
    assert RULES.for_text("nice meetup yesterday") is None
    assert RULES.for_text("the invoices page") is None  # whole words only
    assert RULES.for_reaction("ticket").name == "moderator-reaction"
    assert RULES.for_reaction("ticket::skin-tone-2").name == "moderator-reaction"
    assert RULES.for_flag().name == "forum-flag"
    assert RULES.for_category("billing").priority == "normal"
    assert RULES.for_category("safety").priority == "urgent"


def rules_document():
    return json.loads(DEFAULT_RULES_FILE.read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["rules"][1].update(priority="asap"), "rule 'account-access' (rules[1]), field 'priority'"),
        (
            lambda d: d["rules"][2].setdefault("patterns", []).append("(unclosed"),
            "rule 'billing' (rules[2]), field 'patterns'",
        ),
        (lambda d: d["rules"][0].update(priority="high"), "rule 'safety' (rules[0])"),
        (lambda d: d["rules"][3].update(colour="red"), "rule 'bug' (rules[3]), field 'colour'"),
        (lambda d: d["rules"].append(dict(d["rules"][2])), "rule 'billing' is defined twice"),
        (lambda d: d["templates"].update(solved="Hi {member_email}"), "unknown placeholder {member_email}"),
        (lambda d: d.update(version=2), "field 'version'"),
    ],
)
def test_a_bad_rule_file_is_refused_naming_the_rule_and_the_field(tmp_path, change, message):
    document = rules_document()
    change(document)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document))
    with pytest.raises(RulesError) as refused:
        load_rules(path)
    assert str(path) in str(refused.value)
    assert message in str(refused.value)


def test_a_rule_file_that_is_not_json_is_refused_clearly(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text("{rules: [")
    with pytest.raises(RulesError, match="not valid JSON"):
        load_rules(path)
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules(tmp_path / "missing.json")


# ---------------------------------------------------------------- tickets


def test_an_escalation_opens_one_well_formed_ticket():
    d = deps()
    result = escalate(d, escalation())
    assert result == {"result": "ticket_created", "ticket_id": 1}
    ticket = d.desk.tickets[1]["ticket"]
    assert ticket.priority == "normal"
    assert ticket.tags == ("community", "slack", "billing")
    assert ticket.requester.email == "ada@example.org" and ticket.requester.name == "Ada"
    assert ticket.external_id == external_id("slack:T1:C1:1700000000.000100")
    assert "I was charged twice" in ticket.description and "archives/C1" in ticket.description
    assert "Author: Ada" in ticket.description and "Channel: C1" in ticket.description
    assert d.links.get("slack:T1:C1:1700000000.000100").ticket_id == 1


def test_the_same_thread_again_adds_a_comment_not_a_second_ticket():
    d = deps()
    escalate(d, escalation("k1"))
    result = escalate(d, escalation("k2", text="still charged twice"))
    assert result == {"result": "commented", "ticket_id": 1}
    assert len(d.desk.tickets) == 1
    assert d.desk.comments[0][0] == 1 and "still charged twice" in d.desk.comments[0][1]
    escalate(d, escalation("k2", text="still charged twice"))  # a redelivery of the same escalation
    assert len(d.desk.comments) == 1


def test_a_retry_after_a_timeout_reuses_the_idempotency_key_and_opens_nothing_new():
    d = deps()
    d.desk.fail.append(Transient("read timeout"))  # Zendesk created nothing, or did: the key decides
    with pytest.raises(Transient):
        escalate(d, escalation())
    escalate(d, escalation())
    escalate(d, escalation())
    assert len(d.desk.tickets) == 1


def test_a_second_escalation_while_the_first_is_creating_waits_instead_of_opening_a_ticket():
    d = deps()
    d.desk.fail.append(Transient("503"))
    with pytest.raises(Transient):
        escalate(d, escalation("k1"))
    with pytest.raises(Transient, match="still being created"):
        escalate(d, escalation("k2"))
    escalate(d, escalation("k1"))
    escalate(d, escalation("k2"))
    assert len(d.desk.tickets) == 1 and len(d.desk.comments) == 1


def test_a_claim_older_than_zendesks_key_memory_finds_its_ticket_by_external_id():
    d = deps()
    d.desk.fail.append(Transient("timeout"))
    with pytest.raises(Transient):
        escalate(d, escalation())
    # Zendesk did create it, then forgot the key (two hours later).
    d.desk.create(escalation_ticket(), "other-key")
    late = EscalationDeps(**{**d.__dict__, "clock": lambda: NOW + timedelta(hours=3)})
    escalate(late, escalation())
    assert len(d.desk.tickets) == 1


def escalation_ticket():
    from memberflow.escalation.service import new_ticket

    return new_ticket(escalation().event, RULES.named("billing"))


def test_a_solved_ticket_gets_a_follow_up_ticket():
    d = deps()
    escalate(d, escalation("k1"))
    status_changed(d, status(1, "solved"))
    result = escalate(d, escalation("k2", text="charged twice again"))
    assert result["result"] == "ticket_created" and result["ticket_id"] == 2
    assert d.desk.tickets[2]["ticket"].followup_of == 1
    escalate(d, escalation("k3", text="and again"))
    assert d.desk.comments[-1][0] == 2


def test_a_safety_report_alerts_the_moderators_before_any_ticket_work():
    d = deps()
    d.desk.fail.append(Transient("Zendesk is down"))
    with pytest.raises(Transient):
        escalate(d, escalation(rule="safety", text="I am being threatened"))
    assert d.messenger.moderators and "safety" in d.messenger.moderators[0]
    assert d.desk.calls == ["create"]  # the notice went out although the ticket did not
    escalate(d, escalation(rule="safety", text="I am being threatened"))
    assert len(d.messenger.moderators) == 1
    assert d.desk.tickets[1]["ticket"].priority == "urgent"


def test_moderators_failing_to_hear_stops_the_ticket_work_until_they_do():
    d = deps()
    d.messenger.fail.append(Transient("slack ratelimited", retry_after=3))
    with pytest.raises(Transient):
        escalate(d, escalation(rule="safety", text="threatened"))
    assert d.desk.calls == []


def test_an_escalation_naming_a_rule_that_no_longer_exists_is_refused_for_good():
    with pytest.raises(PermanentRefusal):
        escalate(deps(), escalation(rule="retired"))


def test_a_burst_is_created_with_the_bulk_api_and_the_links_completed_from_the_job():
    d = deps()
    batch = [escalation(f"k{i}", thread=f"slack:T1:C1:{i}") for i in range(250)]
    batch.append(escalation("dup", thread="slack:T1:C1:3"))
    assert escalate_in_bulk(d, batch) == 250
    assert d.desk.calls.count("create_many") == 3 and d.desk.calls.count("job") == 3
    for queued in batch:
        escalate(d, queued)
    assert len(d.desk.tickets) == 250 and len(d.desk.comments) == 1
    assert d.desk.calls.count("create") == 0


def test_a_burst_that_fails_is_left_to_single_creates_which_find_the_job():
    d = deps()
    d.desk.fail.extend([None, Transient("429", retry_after=30)])  # create_many works, the job poll is refused
    batch = [escalation(f"k{i}", thread=f"slack:T1:C1:{i}") for i in range(3)]
    assert escalate_in_bulk(d, batch) == 0
    for queued in batch:
        escalate(d, queued)
    assert len(d.desk.tickets) == 3 and d.desk.calls.count("create") == 0


# ---------------------------------------------------------------- closing the loop


def test_a_solved_ticket_tells_the_member_once_where_they_asked_and_records_the_times():
    d = deps()
    escalate(d, escalation())
    assert status_changed(d, status(1, "open", "s0", public_reply=True, at=NOW + timedelta(minutes=20)))["result"] == (
        "recorded"
    )
    told = status_changed(d, status(1, "solved", "s1"))
    again = status_changed(d, status(1, "solved", "s2"))  # Zendesk may invoke a webhook twice
    assert told == {"result": "told", "channel": "slack"} and again == {"result": "already_told"}
    assert len(d.messenger.members) == 1
    platform, reply_to, email, text = d.messenger.members[0]
    assert reply_to == {"channel": "C1", "thread_ts": "1700000000.000100"} and "#1" in text and "Ada" in text
    link = d.links.for_ticket(1)
    assert link.first_response_seconds == 20 * 60 and link.resolution_seconds == 3600


def test_a_failed_message_to_the_member_is_tried_again_on_the_next_delivery():
    d = deps()
    escalate(d, escalation())
    d.messenger.fail.append(Transient("slack 500"))
    with pytest.raises(Transient):
        status_changed(d, status(1, "solved"))
    assert status_changed(d, status(1, "solved"))["result"] == "told"


def test_a_status_change_of_a_ticket_we_did_not_open_is_ignored():
    assert status_changed(deps(), status(99, "solved"))["result"] == "not_ours"


def test_a_bulk_job_whose_answer_was_lost_is_found_by_external_id_not_created_again():
    d = deps()
    batch = [escalation(f"k{i}", thread=f"slack:T1:C1:{i}") for i in range(3)]
    real_create_many = d.desk.create_many

    def created_but_lost(tickets):
        real_create_many(tickets)
        raise Transient("read timeout")

    d.desk.create_many = created_but_lost
    assert escalate_in_bulk(d, batch) == 0
    for queued in batch:
        escalate(d, queued)
    assert len(d.desk.tickets) == 3 and d.desk.calls.count("create") == 0


def test_a_ticket_closed_without_us_hearing_of_it_gets_a_follow_up_instead_of_a_comment():
    d = deps()
    escalate(d, escalation("k1"))
    d.desk.tickets[1]["status"] = "closed"  # closed in Zendesk; its webhook has not arrived
    result = escalate(d, escalation("k2", text="charged twice again"))
    assert result == {"result": "ticket_created", "ticket_id": 2}
    assert d.desk.tickets[2]["ticket"].followup_of == 1 and d.desk.comments == []


def test_a_retry_in_another_container_does_not_alert_the_moderators_twice():
    d = deps()
    d.desk.fail.append(Transient("Zendesk is down"))
    with pytest.raises(Transient):
        escalate(d, escalation(rule="safety", text="I am being threatened"))
    other_container = EscalationDeps(**{**d.__dict__, "moderator_notices": set()})
    escalate(other_container, escalation(rule="safety", text="I am being threatened"))
    assert len(d.messenger.moderators) == 1 and len(d.desk.tickets) == 1


def test_a_member_who_cannot_be_reached_is_recorded_not_retried():
    d = deps()
    escalate(d, escalation())
    d.messenger.fail.append(PermanentRefusal("unreachable", "nowhere to say it"))
    assert status_changed(d, status(1, "solved"))["result"] == "not_told"
    assert status_changed(d, status(1, "solved", "s2"))["result"] == "already_told"
