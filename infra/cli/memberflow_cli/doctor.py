"""`memberflow doctor`: what an operator gets wrong, checked against the local stack or a deployed one, each problem
with how to fix it. The exit code is 1 when a problem was found.

Checks: webhook secrets still placeholders; the Mailchimp key accepted and the audience there; the merge fields
memberflow fills (PLATFORM, JOINED); the welcome journey ids (as far as Mailchimp's API allows: it has no read
endpoint for Customer Journeys); the Discourse consent field; messages parked in the dead-letter queues.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

from memberflow.adapters.aws import client
from memberflow.adapters.mailchimp import MailchimpList, api_url_for_key
from memberflow.errors import AccountProblem, CredentialsRejected, MemberflowError, NotFound
from memberflow.intake.registry import build_registry
from memberflow_cli.target import Target, secret

PLACEHOLDER = "replace-me"
"""What the template's secrets hold until an operator puts the real values in."""

MERGE_FIELDS = {"PLATFORM": "text", "JOINED": "date"}
"""The merge fields memberflow fills besides FNAME and LNAME, and the type the README asks for."""

WHERE_TO_FIND = {
    "slack_signing_secret": "your Slack app, Basic Information, Signing Secret",
    "discourse_secret": "the secret you typed into the Discourse webhook (Admin, API, Webhooks)",
    "discord_relay_public_key": "the hex Ed25519 public key of your Discord relay",
    "generic_hmac_secret": "the shared secret your generic sources sign with",
    "zendesk_webhook_secret": "the signing secret of your Zendesk webhook (Admin Center, Webhooks, the webhook)",
    "escalations_api_key": "a key of your choosing that internal tools send to POST /escalations as X-Api-Key",
    "mailchimp_webhook_secret": "a long random string you choose: the last part of the Mailchimp webhook URL",
}
FIELD_TYPE_NAMES = {"text": "Text", "date": "Date"}


@dataclass(frozen=True)
class Finding:
    level: str
    """ok, PROBLEM or note (something that cannot be checked, or is worth knowing)."""
    what: str
    fix: str = ""


def ok(what: str) -> Finding:
    return Finding("ok", what)


def problem(what: str, fix: str) -> Finding:
    return Finding("PROBLEM", what, fix)


def note(what: str, fix: str = "") -> Finding:
    return Finding("note", what, fix)


def doctor(target: Target, sources: Iterable[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    registry = build_registry()
    used = list(sources) if sources is not None else registry.names()
    unknown = sorted(set(used) - set(registry.names()))
    if unknown:
        print(f"unknown source(s): {', '.join(unknown)}; known: {', '.join(registry.names())}", file=sys.stderr)
        return 2
    print(f"memberflow doctor: {target.label}", file=out)
    checks: list[Callable[[], Iterator[Finding]]] = [
        lambda: webhook_secrets(target, [registry.get(name).secret_key for name in used]),
        lambda: mailchimp(target),
        lambda: welcome_journey(target.parameters),
        lambda: discourse_consent(target.parameters) if "discourse" in used else iter(()),
        lambda: dead_letter_queues(target),
    ]
    problems = 0
    for check in checks:
        for finding in check():
            problems += finding.level == "PROBLEM"
            print(f"  {finding.level:<8} {finding.what}", file=out)
            if finding.fix:
                label = "fix: " if finding.level == "PROBLEM" else ""
                print(f"           {label}{finding.fix}", file=out)
    print(f"{problems} problem(s) found" if problems else "no problems found", file=out)
    return 1 if problems else 0


# ---------------------------------------------------------------------------------------------------- secrets


def webhook_secrets(target: Target, keys: list[str]) -> Iterator[Finding]:
    secret_id = target.physical("WebhookSigningSecrets")
    try:
        values = secret(target, "WebhookSigningSecrets")
    except Exception as error:  # noqa: BLE001 - any failure to read it is the finding
        if _has_no_value(error):
            yield problem(
                "the webhook secrets are not set up yet (the stack creates the secret without a value): every "
                "delivery is answered 503 until they are",
                f"aws secretsmanager put-secret-value --secret-id {secret_id} --secret-string '<the JSON of every "
                "source's secret, as the README shows>'",
            )
            return
        yield problem(
            f"the webhook secrets cannot be read: {type(error).__name__}: {error}",
            f"check that secret {secret_id} exists and holds a JSON object, and that you may read it",
        )
        return
    for key in keys:
        value = values.get(key)
        fix = (
            f"aws secretsmanager put-secret-value --secret-id {secret_id} --secret-string '<the whole JSON, with "
            f'"{key}": {WHERE_TO_FIND.get(key, "the real value")}>\' (put-secret-value replaces every key: keep '
            "the others)"
        )
        if not isinstance(value, str) or not value.strip():
            yield problem(f"webhook secret {key} is missing: deliveries from its source are refused", fix)
        elif PLACEHOLDER in value:
            yield problem(f'webhook secret {key} is still the placeholder "{PLACEHOLDER}"', fix)
        elif key == "discord_relay_public_key" and not _is_hex_key(value):
            yield problem(f"webhook secret {key} is not a hex Ed25519 public key (64 hex digits)", fix)
        else:
            yield ok(f"webhook secret {key} is set")


def _has_no_value(error: Exception) -> bool:
    """Secrets Manager's answer for a secret created without a value (as the stack creates it)."""
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code") == "ResourceNotFoundException"


def _is_hex_key(value: str) -> bool:
    try:
        return len(bytes.fromhex(value)) == 32
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------------- Mailchimp


def mailchimp(target: Target) -> Iterator[Finding]:
    secret_id = target.physical("MailchimpApiSecret")
    put_key = (
        f"aws secretsmanager put-secret-value --secret-id {secret_id} "
        """--secret-string '{"api_key": "<key>-<dc>"}' (a key from Mailchimp: Profile, Extras, API keys)"""
    )
    try:
        key = str(secret(target, "MailchimpApiSecret").get("api_key") or "")
    except Exception as error:  # noqa: BLE001
        if _has_no_value(error):
            yield problem("the Mailchimp API key is not set up yet: onboarding waits until it is", put_key)
            return
        yield problem(f"the Mailchimp key cannot be read: {type(error).__name__}: {error}", put_key)
        return
    if not key or PLACEHOLDER in key:
        yield problem("the Mailchimp API key is still the placeholder: onboarding waits until it is set", put_key)
        return
    if not target.mailchimp_url:
        try:
            api_url_for_key(key)
        except ValueError:
            yield problem("the Mailchimp API key does not end in its data centre (e.g. -us21)", put_key)
            return
    api = MailchimpList(lambda fresh: key, target.mailchimp_url, timeout=10)
    try:
        api.ping()
    except CredentialsRejected:
        yield problem("Mailchimp refuses the API key (401 API Key Invalid)", put_key)
        return
    except MemberflowError as error:
        yield problem(f"Mailchimp does not answer: {error}", "retry later; https://status.mailchimp.com")
        return
    yield ok("Mailchimp accepts the API key (GET /ping)")

    list_id = target.parameters.get("MailchimpListId", "")
    set_list = (
        "set the MailchimpListId parameter to the audience id (Mailchimp: Audience, Settings, Audience name and "
        "defaults, Audience ID) and deploy again"
    )
    try:
        name = api.audience_name(list_id)
        fields = api.merge_fields(list_id)
    except NotFound:
        yield problem(f"the key's Mailchimp account has no audience {list_id!r}", set_list)
        return
    except (AccountProblem, MemberflowError) as error:
        yield problem(f"audience {list_id!r} cannot be read: {error}", set_list)
        return
    yield ok(f"audience {list_id} ({name}) is reachable")
    yield from merge_fields(list_id, fields)


def merge_fields(list_id: str, fields: dict[str, str]) -> Iterator[Finding]:
    for tag, wanted in MERGE_FIELDS.items():
        kind = FIELD_TYPE_NAMES[wanted]
        add = (
            f"in Mailchimp: Audience, Settings, Audience fields and *|MERGE|* tags, Add a field: {kind}, tag {tag} "
            f"(or POST /lists/{list_id}/merge-fields "
            f'{{"name": "{tag.capitalize()}", "type": "{wanted}", "tag": "{tag}"}})'
        )
        if tag not in fields:
            yield problem(f"merge field {tag} is missing from audience {list_id}: what memberflow sends is lost", add)
        elif fields[tag] != wanted:
            yield note(f"merge field {tag} is a {fields[tag]} field; memberflow fills it as {wanted}", add)
        else:
            yield ok(f"merge field {tag} ({wanted}) is in the audience")


def welcome_journey(parameters: dict[str, str]) -> Iterator[Finding]:
    journey = parameters.get("MailchimpWelcomeJourneyId", "")
    step = parameters.get("MailchimpWelcomeJourneyStepId", "")
    if not (journey.isdigit() and step.isdigit()):
        yield problem(
            f"welcome journey id {journey!r} / step id {step!r}: Mailchimp's journey and step ids are numbers",
            "copy both from the URL Mailchimp shows for the journey's API-trigger starting point, and set the "
            "MailchimpWelcomeJourneyId and MailchimpWelcomeJourneyStepId parameters",
        )
        return
    yield note(
        f"welcome journey {journey}, step {step}: the ids are well formed; whether they exist cannot be checked",
        "Mailchimp's API has no read endpoint for Customer Journeys (only the trigger, which would enrol a "
        "contact). The first welcomed member tells: `memberflow trace EMAIL` shows 'welcome journey ... started', "
        "or the dead-letter queue holds a 404 from the trigger",
    )


def discourse_consent(parameters: dict[str, str]) -> Iterator[Finding]:
    field = parameters.get("DiscourseConsentUserField", "")
    if not field:
        yield note(
            "no Discourse consent field is configured: Discourse members are stored without marketing permission",
            "if your forum asks for consent in a user field, set the DiscourseConsentUserField parameter to its id",
        )
        return
    yield note(
        f"Discourse consent field {field}: not seen in recent deliveries / cannot tell (nothing records which "
        "user fields Discourse deliveries carry)",
        f"look at a recent delivery (Discourse: Admin, API, Webhooks, the webhook, Events): its user_fields should "
        f'have "{field.removeprefix("user_field_")}"; the field ids are in Admin, Customize, User fields',
    )


# ---------------------------------------------------------------------------------------------------- queues


def dead_letter_queues(target: Target) -> Iterator[Finding]:
    sqs = client("sqs")
    for logical_id in target.queues():
        if "DeadLetter" not in logical_id:
            continue
        url = target.physical(logical_id)
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        parked = int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )
        if parked == 0:
            yield ok(f"dead-letter queue {logical_id} is empty")
            continue
        yield problem(
            f"{parked} message(s) parked in {logical_id}",
            f"see why: aws sqs receive-message --queue-url {url} --message-attribute-names All "
            "--visibility-timeout 5 (failure_reason, failure_kind, retryable). Retryable member events go back "
            "by themselves once Mailchimp answers; replay the others after fixing their cause (SQS console, Start "
            "DLQ redrive to the queue they came from)",
        )
