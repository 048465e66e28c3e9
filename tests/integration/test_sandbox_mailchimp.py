"""The Mailchimp sandbox, exercised through the official mailchimp-marketing client."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid

import mailchimp_marketing
import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from memberflow_sandboxes.mailchimp import MailchimpSandbox

LIST_ID = "list123"
API_KEY = "sandbox-key-us1"


def md5(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


def make_client(url: str, api_key: str = API_KEY) -> mailchimp_marketing.Client:
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": api_key})
    client.api_client.host = url
    return client


def upsert(client: mailchimp_marketing.Client, email: str, **fields: object) -> dict:
    return client.lists.set_list_member(LIST_ID, md5(email), {"email_address": email, **fields})


def problem(error: ApiClientError) -> dict:
    return json.loads(error.text)


@pytest.fixture(scope="module")
def running_sandbox():
    with MailchimpSandbox(api_key=API_KEY) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running_sandbox):
    running_sandbox.reset()
    return running_sandbox


@pytest.fixture
def client(sandbox):
    return make_client(sandbox.url)


def test_url_never_contains_the_word_the_client_rewrites(sandbox):
    assert "server" not in sandbox.url
    assert sandbox.url.endswith("/3.0")


def test_ping(client):
    assert client.ping.get() == {"health_status": "Everything's Chimpy!"}


def test_upsert_creates_member(client, sandbox):
    email = "Ada@Example.com"
    member = upsert(client, email, status_if_new="subscribed", merge_fields={"FNAME": "Ada", "LNAME": "L"})
    assert member["id"] == md5(email)
    assert member["status"] == "subscribed"
    assert member["merge_fields"] == {"FNAME": "Ada", "LNAME": "L"}
    assert member["full_name"] == "Ada L"
    assert member["list_id"] == LIST_ID
    assert client.lists.get_list_member(LIST_ID, email)["email_address"] == email


def test_upsert_ignores_status_if_new_for_existing_member(client, sandbox):
    sandbox.seed_member(LIST_ID, "gone@example.com", "unsubscribed")
    member = client.lists.set_list_member(
        LIST_ID,
        md5("gone@example.com"),
        {"email_address": "gone@example.com", "status_if_new": "subscribed", "merge_fields": {"FNAME": "G"}},
    )
    assert member["status"] == "unsubscribed"
    assert member["merge_fields"]["FNAME"] == "G"


def test_upsert_of_new_member_requires_status_if_new(client):
    with pytest.raises(ApiClientError) as caught:
        client.lists.set_list_member(LIST_ID, md5("new@example.com"), {"email_address": "new@example.com"})
    body = problem(caught.value)
    assert caught.value.status_code == 400
    assert body["title"] == "Invalid Resource"
    assert body["errors"][0]["field"] == "status_if_new"


def test_tags_answer_204_with_empty_body(client, sandbox):
    sandbox.seed_member(LIST_ID, "t@example.com", "subscribed")
    response = client.lists.update_list_member_tags(
        LIST_ID, md5("t@example.com"), {"tags": [{"name": "onboarded", "status": "active"}]}
    )
    assert isinstance(response, requests.Response)
    assert response.status_code == 204
    assert response.content == b""
    tags = client.lists.get_list_member_tags(LIST_ID, md5("t@example.com"))
    assert [tag["name"] for tag in tags["tags"]] == ["onboarded"]
    assert tags["total_items"] == 1

    client.lists.update_list_member_tags(
        LIST_ID, md5("t@example.com"), {"tags": [{"name": "onboarded", "status": "inactive"}]}
    )
    assert client.lists.get_list_member_tags(LIST_ID, md5("t@example.com"))["total_items"] == 0


def test_tags_for_unknown_member_are_404(client):
    with pytest.raises(ApiClientError) as caught:
        client.lists.update_list_member_tags(
            LIST_ID, md5("nobody@example.com"), {"tags": [{"name": "x", "status": "active"}]}
        )
    assert caught.value.status_code == 404


@pytest.mark.parametrize("previous_status", ["unsubscribed", "cleaned"])
def test_subscribing_member_in_compliance_state_is_refused(client, sandbox, previous_status):
    email = f"{previous_status}@example.com"
    sandbox.seed_member(LIST_ID, email, previous_status)
    with pytest.raises(ApiClientError) as caught:
        upsert(client, email, status_if_new="subscribed", status="subscribed")
    body = problem(caught.value)
    assert caught.value.status_code == 400
    assert body["title"] == "Member In Compliance State"
    assert email in body["detail"]
    assert body["type"] == "https://mailchimp.com/developer/marketing/docs/errors/"
    assert body["status"] == 400
    uuid.UUID(body["instance"])


def test_compliance_review_blocks_subscribing(client, sandbox):
    sandbox.state.compliance_review.add("Review@example.com")
    with pytest.raises(ApiClientError) as caught:
        client.lists.add_list_member(LIST_ID, {"email_address": "review@example.com", "status": "subscribed"})
    assert problem(caught.value)["title"] == "Member In Compliance State"


def test_pending_reopt_in_of_unsubscribed_member_is_allowed(client, sandbox):
    sandbox.seed_member(LIST_ID, "back@example.com", "unsubscribed")
    member = client.lists.update_list_member(LIST_ID, md5("back@example.com"), {"status": "pending"})
    assert member["status"] == "pending"


def test_archived_unsubscribed_member_stays_in_compliance_state(client, sandbox):
    sandbox.seed_member(LIST_ID, "arch@example.com", "unsubscribed")
    response = client.lists.delete_list_member(LIST_ID, md5("arch@example.com"))
    assert response.status_code == 204
    assert client.lists.get_list_member(LIST_ID, md5("arch@example.com"))["status"] == "archived"
    with pytest.raises(ApiClientError) as caught:
        upsert(client, "arch@example.com", status_if_new="subscribed")
    assert problem(caught.value)["title"] == "Member In Compliance State"


def assert_compliance_state(call) -> None:
    with pytest.raises(ApiClientError) as caught:
        call()
    assert caught.value.status_code == 400
    assert problem(caught.value)["title"] == "Member In Compliance State"


def test_compliance_state_sticks_to_the_address_until_a_re_opt_in_is_confirmed(client, sandbox):
    email = "sticky@example.com"
    sandbox.seed_member(LIST_ID, email, "unsubscribed")
    assert client.lists.delete_list_member(LIST_ID, md5(email)).status_code == 204
    member = upsert(client, email, status_if_new="transactional")
    assert member["status"] == "transactional"

    assert_compliance_state(lambda: client.lists.update_list_member(LIST_ID, md5(email), {"status": "subscribed"}))
    assert client.lists.get_list_member(LIST_ID, md5(email))["status"] == "transactional"

    member = client.lists.update_list_member(LIST_ID, md5(email), {"status": "pending"})
    assert member["status"] == "pending"
    assert email in sandbox.state.snapshot()["lists"][LIST_ID]["compliance_state"]

    confirmed = requests.post(f"{sandbox.admin_url}/confirm", json={"list_id": LIST_ID, "email": email})
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "subscribed"
    assert client.lists.get_list_member(LIST_ID, md5(email))["status"] == "subscribed"
    state = requests.get(f"{sandbox.admin_url}/state").json()
    assert state["lists"][LIST_ID]["compliance_state"] == []


def test_compliance_state_blocks_every_way_back_to_subscribed(client, sandbox):
    email = "cleaned@example.com"
    sandbox.seed_member(LIST_ID, email, "cleaned")
    client.lists.delete_list_member(LIST_ID, md5(email))
    # re-creation after archive, through status_if_new and through status
    assert_compliance_state(lambda: upsert(client, email, status_if_new="subscribed"))
    assert_compliance_state(lambda: upsert(client, email, status_if_new="transactional", status="subscribed"))
    assert_compliance_state(
        lambda: client.lists.add_list_member(LIST_ID, {"email_address": email, "status": "subscribed"})
    )
    upsert(client, email, status_if_new="transactional")
    # the re-added member is transactional now, yet still in compliance state
    assert_compliance_state(lambda: upsert(client, email, status="subscribed"))
    result = client.lists.batch_list_members(
        LIST_ID, {"members": [{"email_address": email, "status": "subscribed"}], "update_existing": True}
    )
    assert result["error_count"] == 1 and result["total_updated"] == 0
    assert "compliance state" in result["errors"][0]["error"]
    # batch re-creation after archive too
    client.lists.delete_list_member(LIST_ID, md5(email))
    result = client.lists.batch_list_members(
        LIST_ID, {"members": [{"email_address": email, "status_if_new": "subscribed"}], "update_existing": True}
    )
    assert result["error_count"] == 1 and result["total_created"] == 0
    assert client.lists.get_list_member(LIST_ID, md5(email))["status"] == "archived"


def test_unsubscribing_through_the_api_puts_the_address_in_compliance_state(client, sandbox):
    email = "leaver@example.com"
    upsert(client, email, status_if_new="subscribed")
    client.lists.update_list_member(LIST_ID, md5(email), {"status": "unsubscribed"})
    client.lists.update_list_member(LIST_ID, md5(email), {"status": "transactional"})
    assert_compliance_state(lambda: client.lists.update_list_member(LIST_ID, md5(email), {"status": "subscribed"}))
    assert sandbox.state.snapshot()["lists"][LIST_ID]["compliance_state"] == [email]

    client.lists.update_list_member(LIST_ID, md5(email), {"status": "pending"})
    assert sandbox.confirm_opt_in(LIST_ID, email)["status"] == "subscribed"
    # leaving again puts the address back in compliance state
    client.lists.update_list_member(LIST_ID, md5(email), {"status": "unsubscribed"})
    client.lists.update_list_member(LIST_ID, md5(email), {"status": "pending"})
    assert_compliance_state(lambda: client.lists.update_list_member(LIST_ID, md5(email), {"status": "subscribed"}))


def test_compliance_state_is_per_list(client, sandbox):
    sandbox.state.create_list("other", "Other")
    sandbox.seed_member("other", "twolists@example.com", "unsubscribed")
    assert upsert(client, "twolists@example.com", status_if_new="subscribed")["status"] == "subscribed"


def test_confirm_needs_a_pending_member(sandbox):
    sandbox.seed_member(LIST_ID, "sub@example.com", "subscribed")
    confirm = f"{sandbox.admin_url}/confirm"
    not_pending = requests.post(confirm, json={"list_id": LIST_ID, "email": "sub@example.com"})
    assert not_pending.status_code == 400
    assert "not pending" in not_pending.json()["detail"]
    unknown = requests.post(confirm, json={"list_id": LIST_ID, "email": "nobody@example.com"})
    assert unknown.status_code == 404
    assert unknown.json()["title"] == "Resource Not Found"
    missing = requests.post(confirm, json={"email": "sub@example.com"})
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "list_id"
    with pytest.raises(ValueError):
        sandbox.confirm_opt_in(LIST_ID, "sub@example.com")


def test_archived_subscribed_member_can_be_re_added(client, sandbox):
    sandbox.seed_member(LIST_ID, "again@example.com", "subscribed")
    client.lists.delete_list_member(LIST_ID, md5("again@example.com"))
    member = upsert(client, "again@example.com", status_if_new="subscribed")
    assert member["status"] == "subscribed"


def test_hash_mismatch_is_invalid_resource(client):
    with pytest.raises(ApiClientError) as caught:
        client.lists.set_list_member(
            LIST_ID,
            md5("one@example.com"),
            {"email_address": "two@example.com", "status_if_new": "subscribed"},
        )
    body = problem(caught.value)
    assert caught.value.status_code == 400
    assert body["title"] == "Invalid Resource"
    assert "hash" in body["detail"]


def test_post_of_existing_member_is_member_exists(client, sandbox):
    sandbox.seed_member(LIST_ID, "dup@example.com", "subscribed")
    with pytest.raises(ApiClientError) as caught:
        client.lists.add_list_member(LIST_ID, {"email_address": "dup@example.com", "status": "subscribed"})
    assert problem(caught.value)["title"] == "Member Exists"


@pytest.mark.parametrize(
    "email",
    [
        "no-at-sign",
        "someone@example.invalid",
        "fakeuser@example.com",
        "a@example.org\x00",
        "jane\u202e@example.org",
        "<script>@example.org",
        "a" * 300 + "@example.org",
        "a" * 65 + "@example.org",
        "jane@" + ".".join(["d" * 62] * 4) + ".org",
        "jane doe@example.org",
        "jane..doe@example.org",
        "jane@example",
        "jöhn@example.org",  # Mailchimp cannot process UTF-8 before the @
    ],
)
def test_fake_addresses_are_invalid_resource(client, email):
    with pytest.raises(ApiClientError) as caught:
        client.lists.add_list_member(LIST_ID, {"email_address": email, "status": "subscribed"})
    body = problem(caught.value)
    assert body["title"] == "Invalid Resource"
    assert "looks fake or invalid" in body["detail"]


@pytest.mark.parametrize("email", ["a@example.org\x00", "<script>@example.org", "a" * 300 + "@example.org"])
def test_an_upsert_of_an_address_mailchimp_refuses_is_invalid_resource_and_adds_nobody(client, email):
    with pytest.raises(ApiClientError) as caught:
        upsert(client, email, status_if_new="subscribed")

    assert caught.value.status_code == 400
    body = problem(caught.value)
    assert (body["title"], body["detail"]) == (
        "Invalid Resource",
        f"{email} looks fake or invalid, please enter a real email address.",
    )
    assert client.lists.get_list_members_info(LIST_ID)["total_items"] == 0


@pytest.mark.parametrize("email", ["a" * 64 + "@example.org", "john@bücher.example", "o'brien+news@mail.example.co.uk"])
def test_addresses_mailchimp_takes_are_added(client, email):
    assert upsert(client, email, status_if_new="subscribed")["status"] == "subscribed"


def test_a_lone_surrogate_in_the_body_is_a_json_parse_error_not_a_500(sandbox):
    answer = requests.post(
        f"{sandbox.url}/lists/{LIST_ID}/members",
        data=b'{"email_address": "jane\\udc00@example.org", "status": "subscribed"}',
        headers={"Content-Type": "application/json"},
        auth=("memberflow", API_KEY),
    )

    assert answer.status_code == 400
    assert answer.json()["detail"] == "We encountered an unspecified JSON parsing error."


def test_unwritable_status_is_rejected(client):
    with pytest.raises(ApiClientError) as caught:
        client.lists.add_list_member(LIST_ID, {"email_address": "x@example.com", "status": "archived"})
    body = problem(caught.value)
    assert body["title"] == "Invalid Resource"
    assert body["errors"][0]["field"] == "status"


def test_unknown_list_is_404(client):
    with pytest.raises(ApiClientError) as caught:
        client.lists.get_list("no-such-list")
    assert caught.value.status_code == 404
    assert problem(caught.value)["title"] == "Resource Not Found"


def test_bad_api_key_is_401(sandbox):
    with pytest.raises(ApiClientError) as caught:
        make_client(sandbox.url, api_key="wrong-us1").ping.get()
    assert caught.value.status_code == 401
    assert problem(caught.value)["title"] == "API Key Invalid"


def test_journey_trigger_is_recorded(client, sandbox):
    sandbox.seed_member(LIST_ID, "j@example.com", "subscribed")
    response = client.customerJourneys.trigger(7, 11, {"email_address": "j@example.com"})
    assert isinstance(response, requests.Response)
    assert response.status_code == 204
    [trigger] = sandbox.state.journey_triggers
    assert trigger["journey_id"] == "7" and trigger["step_id"] == "11"
    assert trigger["email_address"] == "j@example.com"


def test_journey_trigger_needs_a_subscribed_member(client, sandbox):
    sandbox.seed_member(LIST_ID, "p@example.com", "pending")
    with pytest.raises(ApiClientError) as caught:
        client.customerJourneys.trigger(7, 11, {"email_address": "p@example.com"})
    assert caught.value.status_code == 400
    assert "subscribed" in problem(caught.value)["detail"]
    with pytest.raises(ApiClientError) as caught:
        client.customerJourneys.trigger(7, 11, {"email_address": "stranger@example.com"})
    assert caught.value.status_code == 404
    assert sandbox.state.journey_triggers == []


def test_member_pagination(client, sandbox):
    for n in range(25):
        sandbox.seed_member(LIST_ID, f"m{n:02d}@example.com", "subscribed" if n % 5 else "unsubscribed")
    first = client.lists.get_list_members_info(LIST_ID)
    assert len(first["members"]) == 10
    assert first["total_items"] == 25
    last = client.lists.get_list_members_info(LIST_ID, count=10, offset=20)
    assert [m["email_address"] for m in last["members"]] == [f"m{n}@example.com" for n in range(20, 25)]
    unsubscribed = client.lists.get_list_members_info(LIST_ID, status="unsubscribed", count=2)
    assert unsubscribed["total_items"] == 5
    assert len(unsubscribed["members"]) == 2


def test_lists_are_listed(client, sandbox):
    sandbox.state.create_list("other", "Other")
    lists = client.lists.get_all_lists()
    assert lists["total_items"] == 2
    assert {item["id"] for item in lists["lists"]} == {LIST_ID, "other"}


def test_permanently_deleted_email_cannot_be_re_added(client, sandbox):
    sandbox.seed_member(LIST_ID, "gdpr@example.com", "subscribed")
    response = client.lists.delete_list_member_permanent(LIST_ID, md5("gdpr@example.com"))
    assert response.status_code == 204
    for status in ("subscribed", "pending"):
        with pytest.raises(ApiClientError) as caught:
            upsert(client, "gdpr@example.com", status_if_new=status)
        assert caught.value.status_code == 400
        assert problem(caught.value)["title"] == "Forgotten Email Not Subscribed"


def test_batch_subscribe_reports_errors_per_member(client, sandbox):
    sandbox.seed_member(LIST_ID, "old@example.com", "unsubscribed")
    result = client.lists.batch_list_members(
        LIST_ID,
        {
            "members": [
                {"email_address": "fresh@example.com", "status": "subscribed"},
                {"email_address": "old@example.com", "status": "subscribed"},
            ],
            "update_existing": True,
        },
    )
    assert result["total_created"] == 1
    assert result["error_count"] == 1
    assert result["errors"][0]["email_address"] == "old@example.com"


def concurrent_pings(sandbox: MailchimpSandbox, calls: int) -> list[object]:
    """`calls` simultaneous pings through the official client: each result, or the error it raised."""
    start = threading.Barrier(calls)
    results: list[object] = [None] * calls

    def call(slot: int) -> None:
        client = make_client(sandbox.url)
        start.wait()
        try:
            results[slot] = client.ping.get()
        except ApiClientError as error:
            results[slot] = error

    threads = [threading.Thread(target=call, args=(n,)) for n in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return results


@pytest.fixture
def saturated(sandbox):
    """All 10 connection slots taken, so the next request is over the limit."""
    for _ in range(10):
        assert sandbox.app.gate.try_enter()
    yield sandbox
    for _ in range(10):
        sandbox.app.gate.leave()


def test_connections_beyond_the_limit_raise_a_429_problem(sandbox):
    sandbox.set_faults(latency_ms=500)
    results = concurrent_pings(sandbox, 11)

    throttled = [r for r in results if isinstance(r, ApiClientError)]
    assert throttled, results
    assert not any(isinstance(r, requests.Response) for r in results)
    for error in throttled:
        assert error.status_code == 429
        body = problem(error)
        assert body["title"] == "Too Many Requests"
        assert body["status"] == 429
    assert sum(r == {"health_status": "Everything's Chimpy!"} for r in results) == 11 - len(throttled)
    assert sandbox.state.request_counts[429] == len(throttled)
    assert sandbox.app.gate.in_flight == 0


def test_over_limit_problem_document_and_headers(saturated):
    with pytest.raises(ApiClientError) as caught:
        make_client(saturated.url).ping.get()
    assert caught.value.status_code == 429
    assert isinstance(caught.value.text, str)  # problem+json is not parsed by the client
    body = problem(caught.value)
    assert body["type"] == "https://mailchimp.com/developer/marketing/docs/errors/"
    assert body["title"] == "Too Many Requests"
    assert body["status"] == 429
    assert "too many simultaneous connections" in body["detail"]
    uuid.UUID(body["instance"])

    response = requests.get(f"{saturated.url}/ping", auth=("u", API_KEY))
    assert response.status_code == 429
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.content
    assert "Retry-After" not in response.headers


def test_bare_throttle_fault_answers_an_empty_429_the_client_returns(saturated):
    saturated.set_faults(bare_throttle=True)
    response = make_client(saturated.url).ping.get()
    assert isinstance(response, requests.Response)  # no exception: callers must check the status
    assert response.status_code == 429
    assert response.content == b""
    assert "Retry-After" not in response.headers
    assert saturated.state.request_counts[429] == 1


def test_bare_throttle_is_off_by_default_and_set_through_admin(sandbox):
    admin = sandbox.admin_url
    assert requests.get(f"{admin}/state").json()["faults"]["bare_throttle"] is False
    assert requests.post(f"{admin}/faults", json={"bare_throttle": True}).json()["bare_throttle"] is True
    assert sandbox.app.faults.settings.bare_throttle is True
    refused = requests.post(f"{admin}/faults", json={"bare_throttle": "yes"})
    assert refused.status_code == 400
    assert "bare_throttle" in refused.json()["detail"]
    sandbox.reset()
    assert sandbox.app.faults.settings.bare_throttle is False


def test_injected_500(client, sandbox):
    sandbox.set_faults(rate_500=1.0)
    with pytest.raises(ApiClientError) as caught:
        client.ping.get()
    assert caught.value.status_code == 500
    assert problem(caught.value)["title"] == "Internal Server Error"


def test_injected_429_has_a_problem_body(client, sandbox):
    sandbox.set_faults(rate_429=1.0)
    with pytest.raises(ApiClientError) as caught:
        client.ping.get()
    assert caught.value.status_code == 429
    assert problem(caught.value)["title"] == "Too Many Requests"


def test_fail_emails_targets_one_address(client, sandbox):
    sandbox.seed_member(LIST_ID, "ok@example.com", "subscribed")
    sandbox.seed_member(LIST_ID, "Doomed@example.com", "subscribed")
    sandbox.set_faults(fail_emails={"doomed@example.com": 500})
    for call in (
        lambda: upsert(client, "doomed@example.com", status_if_new="pending"),
        lambda: client.lists.update_list_member_tags(
            LIST_ID, "doomed@example.com", {"tags": [{"name": "x", "status": "active"}]}
        ),
        lambda: client.customerJourneys.trigger(1, 2, {"email_address": "doomed@example.com"}),
    ):
        with pytest.raises(ApiClientError) as caught:
            call()
        assert caught.value.status_code == 500
    assert client.lists.get_list_member(LIST_ID, md5("ok@example.com"))["status"] == "subscribed"


def test_errors_are_problem_json(sandbox):
    response = requests.get(f"{sandbox.url}/nowhere", auth=("user", API_KEY))
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
    response = requests.delete(f"{sandbox.url}/ping", auth=("user", API_KEY))
    assert response.status_code == 405
    assert response.json()["title"] == "Method Not Allowed"
    response = requests.post(f"{sandbox.url}/lists/{LIST_ID}/members", data="{oops", auth=("user", API_KEY))
    assert response.status_code == 400
    assert response.json()["title"] == "Bad Request"


def test_admin_endpoints(sandbox):
    admin = sandbox.admin_url
    seeded = requests.post(
        f"{admin}/seed",
        json={"list_id": LIST_ID, "email": "s@example.com", "status": "subscribed", "tags": ["vip"]},
    )
    assert seeded.status_code == 201
    assert requests.post(f"{admin}/faults", json={"rate_500": 1.0}).status_code == 200
    assert requests.get(f"{sandbox.url}/ping", auth=("u", API_KEY)).status_code == 500

    state = requests.get(f"{admin}/state").json()
    [member] = state["lists"][LIST_ID]["members"]
    assert member["email_address"] == "s@example.com"
    assert state["lists"][LIST_ID]["tags"] == ["vip"]
    assert state["request_counts"] == {"500": 1}
    assert state["faults"]["rate_500"] == 1.0

    assert requests.post(f"{admin}/reset").status_code == 200
    state = requests.get(f"{admin}/state").json()
    assert state["lists"][LIST_ID]["members"] == []
    assert state["faults"]["rate_500"] == 0.0


def test_seed_without_an_email_is_a_json_400(sandbox):
    response = requests.post(f"{sandbox.admin_url}/seed", json={"list_id": LIST_ID, "status": "subscribed"})
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["errors"][0]["field"] == "email"
    assert "email" in body["errors"][0]["message"]
    bad_tags = requests.post(f"{sandbox.admin_url}/seed", json={"email": "t@example.com", "tags": "vip"})
    assert bad_tags.status_code == 400
    assert bad_tags.json()["errors"][0]["field"] == "tags"
    assert requests.get(f"{sandbox.admin_url}/state").json()["lists"][LIST_ID]["members"] == []


def test_admin_endpoint_crash_is_a_json_500(sandbox, monkeypatch):
    def broken(body):
        raise KeyError("oops")

    monkeypatch.setattr(sandbox.app, "seed", broken)
    response = requests.post(f"{sandbox.admin_url}/seed", json={"email": "x@example.com"})
    assert response.status_code == 500
    assert response.json()["status"] == 500
    assert "KeyError" in response.json()["detail"]


def test_fields_keeps_only_the_listed_member_fields(client, sandbox):
    sandbox.seed_member(LIST_ID, "proj@example.com", "subscribed", {"FNAME": "P"})
    assert client.lists.get_list_member(LIST_ID, md5("proj@example.com"), fields=["status"]) == {"status": "subscribed"}
    nested = client.lists.get_list_member(LIST_ID, "proj@example.com", fields=["merge_fields.FNAME", "nope", "id.x"])
    assert nested == {"merge_fields": {"FNAME": "P"}}


def test_fields_through_a_list_apply_to_each_member(client, sandbox):
    for email in ("a@example.com", "b@example.com"):
        sandbox.seed_member(LIST_ID, email, "subscribed")
    page = client.lists.get_list_members_info(LIST_ID, fields=["members.email_address", "total_items"])
    assert page == {
        "members": [{"email_address": "a@example.com"}, {"email_address": "b@example.com"}],
        "total_items": 2,
    }
    empty = client.lists.get_list_members_info(LIST_ID, status="cleaned", fields=["members.email_address"])
    assert empty == {"members": []}


def test_exclude_fields_removes_links(client, sandbox):
    sandbox.seed_member(LIST_ID, "links@example.com", "subscribed")
    member = client.lists.get_list_member(LIST_ID, md5("links@example.com"))
    assert member["_links"][0]["rel"] == "self"
    trimmed = client.lists.get_list_member(LIST_ID, md5("links@example.com"), exclude_fields=["_links", "tags"])
    assert "_links" not in trimmed and "tags" not in trimmed
    assert trimmed["email_address"] == "links@example.com"
    page = client.lists.get_list_members_info(LIST_ID, exclude_fields=["_links", "members._links"])
    assert "_links" not in page and "_links" not in page["members"][0]
    assert page["members"][0]["status"] == "subscribed" and page["total_items"] == 1


def test_fields_and_exclude_fields_combine(client, sandbox):
    sandbox.seed_member(LIST_ID, "both@example.com", "subscribed")
    page = client.lists.get_list_members_info(
        LIST_ID, fields=["members", "total_items"], exclude_fields=["members._links", "members.tags"]
    )
    assert set(page) == {"members", "total_items"}
    assert "_links" not in page["members"][0] and "tags" not in page["members"][0]
    assert page["members"][0]["email_address"] == "both@example.com"


def test_write_responses_are_projected_but_errors_never(sandbox):
    auth = ("anystring", API_KEY)
    url = f"{sandbox.url}/lists/{LIST_ID}/members/{md5('w@example.com')}"
    put = requests.put(
        url,
        params={"fields": "status,email_address"},
        json={"email_address": "w@example.com", "status_if_new": "subscribed"},
        auth=auth,
    )
    assert put.status_code == 200
    assert put.json() == {"status": "subscribed", "email_address": "w@example.com"}
    patch = requests.patch(url, params={"exclude_fields": "_links"}, json={"merge_fields": {"FNAME": "W"}}, auth=auth)
    assert patch.status_code == 200
    assert "_links" not in patch.json() and patch.json()["merge_fields"] == {"FNAME": "W"}
    missing = requests.get(f"{url}0", params={"fields": "status"}, auth=auth)
    assert missing.status_code == 404
    assert missing.json()["title"] == "Resource Not Found" and "detail" in missing.json()
    bad = requests.patch(url, params={"fields": "status"}, json={"status": "bogus"}, auth=auth)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "status"
