"""Everything memberflow holds about a person, as one JSON document (GDPR Art. 15): `memberflow export EMAIL`.

One exporter per table or store that holds member data. An automation that adds a table adds its exporter to
`EXPORTERS` (naming the template's logical ids it covers), or, when the table holds no member data, a line in
`NO_MEMBER_DATA` with the reason; a test reads every table and bucket of template.yaml and fails on one that is in
neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from memberflow.members import MemberRecord
from memberflow.ports import Suppression, SuppressionList
from memberflow.privacy import email_key, email_suppression_name


@dataclass
class ExportContext:
    email: str
    physical: Callable[[str], str]
    """A template logical id -> the stack's physical name (table name, bucket name)."""
    suppressions: SuppressionList | None = None
    """None when the suppression key cannot be read (the export then says erasures were not checked)."""
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def member(self) -> MemberRecord | None:
        if "member" not in self.cache:
            from memberflow.adapters.member_profiles import DynamoMemberRepository

            self.cache["member"] = DynamoMemberRepository(self.physical("MembersTable")).get(email_key(self.email))
        return self.cache["member"]

    @property
    def erasure(self) -> Suppression | None:
        if "erasure" not in self.cache:
            found = self.suppressions.find(email_suppression_name(self.email)) if self.suppressions else None
            self.cache["erasure"] = found
        return self.cache["erasure"]


@dataclass(frozen=True)
class Exporter:
    name: str
    """The key of its part in the document."""
    covers: tuple[str, ...]
    """The logical ids (template.yaml) of the tables or buckets whose member data it exports."""
    export: Callable[[ExportContext], Any]


WINBACK_PREFIX = "WINBACK#"
"""Sort keys of a member's win-back records (memberflow.adapters.winback_store.record_sk)."""


def _record(context: ExportContext) -> Any:
    """The member record and every other item stored under the member: due work (the drip, an opt-in wait) and
    win-back contacts and holdouts (campaign, tier, variant, day, outcome)."""
    from memberflow.adapters.consent_ledger import SORT_PREFIX
    from memberflow.adapters.due_work import member_pk
    from memberflow.adapters.dynamo import query_all, table

    items = query_all(
        table(context.physical("MembersTable")),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": member_pk(email_key(context.email))},
        ConsistentRead=True,
    )
    stored = {item["sk"]: plain(item) for item in items if not str(item["sk"]).startswith(SORT_PREFIX)}
    if not stored and not context.member:
        return None
    winback = {sk: item for sk, item in stored.items() if str(sk).startswith(WINBACK_PREFIX)}
    return {
        "profile": stored.pop("PROFILE", None),
        "due_work": {sk: item for sk, item in stored.items() if sk not in winback},
        "winback": list(winback.values()),
    }


def _identities(context: ExportContext) -> Any:
    from memberflow.adapters.dynamo import table
    from memberflow.adapters.member_profiles import LINK, identity_pk

    links = []
    for identity in context.member.identities if context.member else []:
        item = table(context.physical("MembersTable")).get_item(
            Key={"pk": identity_pk(identity), "sk": LINK}, ConsistentRead=True
        )
        links.append({"identity": identity, "link": plain(item.get("Item"))})
    return links


def _ledger(context: ExportContext) -> Any:
    from memberflow.adapters.consent_ledger import DynamoConsentLedger

    entries = [
        entry.as_json()
        for entry in DynamoConsentLedger(context.physical("MembersTable")).entries(email_key(context.email))
    ]
    if context.erasure is not None:
        entries.append(
            {
                "at": context.erasure.erased_at.isoformat(),
                "change": "erased",
                "platform": context.erasure.requested_by,
                "detail": "erased at the person's request: only a keyed hash of the address is kept",
            }
        )
    return entries


def _trace(context: ExportContext) -> Any:
    from memberflow.adapters.member_profiles import DynamoMemberRepository
    from memberflow.adapters.trace_store import DynamoTraceStore
    from memberflow.trace_report import collect

    report = collect(
        context.email,
        DynamoTraceStore(context.physical("TraceTable")),
        DynamoMemberRepository(context.physical("MembersTable")),
        context.suppressions,
    )
    return [record.as_json() for record in report.records]


def _tickets(context: ExportContext) -> Any:
    """The member's escalations: each thread's ticket link (ticket, status, times, what telling them needs)."""
    from dataclasses import asdict

    from memberflow.adapters.ticket_links import DynamoTicketLinks
    from memberflow.trace import email_subject, identity_subject

    links = DynamoTicketLinks(context.physical("TicketLinksTable"))
    identities = context.member.identities if context.member else []
    subjects = {email_subject(context.email)} | {identity_subject(identity) for identity in identities}
    found = {link.thread: link for subject in sorted(subjects) for link in links.requesters(subject)}
    return [plain(asdict(link)) | {"created_at": link.created_at.isoformat()} for link in found.values()]


def _activity(context: ExportContext) -> Any:
    """The member's records in the activity log (which names them only by a keyed hash of their member id and
    identities: the export computes those hashes and reads every day the log keeps)."""
    import gzip
    import json

    from memberflow.activity import member_hash
    from memberflow.adapters.activity_log import PREFIX
    from memberflow.adapters.aws import client
    from memberflow.adapters.secrets import get_json_secret

    member = context.member
    if member is None:
        return []
    key = str(get_json_secret(context.physical("ActivityKeySecret"))["activity_key"]).encode()
    hashes = {member_hash(key, subject) for subject in (member.member_id, *member.identities)}
    s3, bucket = client("s3"), context.physical("ActivityBucket")
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/"):
        for listed in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read()
            for line in gzip.decompress(body).decode().splitlines():
                record = json.loads(line) if line.strip() else {}
                if record.get("member") in hashes:
                    found.append(record)
    return sorted(found, key=lambda record: str(record.get("ts", "")))


def _registrations(context: ExportContext) -> Any:
    """The member's event registrations: their keys from the member index, under every member id an erasure would
    delete (`registrations.erasure.registrant_ids`) and the member record's, each item read in full."""
    from memberflow.adapters.dynamo import table
    from memberflow.adapters.registrations import DynamoRegistrationStore
    from memberflow.registrations.erasure import registrant_ids

    member = context.member
    emails = [context.email] + ([member.email] if member and member.email else [])
    member_ids = set(registrant_ids(emails, member.identities if member else []))
    member_ids |= {member.member_id} if member else set()
    name = context.physical("RegistrationsTable")
    store = DynamoRegistrationStore(name)
    keys = sorted({(key["pk"], key["sk"]) for member_id in sorted(member_ids) for key in store.item_keys(member_id)})
    found = [table(name).get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item") for pk, sk in keys]
    return [plain(item) for item in found if item]


def _suppression(context: ExportContext) -> Any:
    if context.suppressions is None:
        return {"checked": False, "reason": "the suppression key could not be read"}
    erasure = context.erasure
    if erasure is None:
        return None
    return {"keyed_hash": erasure.key, "erased_at": erasure.erased_at.isoformat(), "requested_by": erasure.requested_by}


EXPORTERS: list[Exporter] = [
    Exporter("record", ("MembersTable",), _record),
    Exporter("identities", ("MembersTable",), _identities),
    Exporter("ledger", ("MembersTable",), _ledger),
    Exporter("trace", ("TraceTable",), _trace),
    Exporter("suppression", ("MembersTable",), _suppression),
    Exporter("tickets", ("TicketLinksTable",), _tickets),
    Exporter("activity", ("ActivityBucket",), _activity),
    Exporter("registrations", ("RegistrationsTable",), _registrations),
]
"""One per kind of member data; an automation with a table of its own (tickets, registrations, win-back contacts)
adds its exporter here."""

NO_MEMBER_DATA: dict[str, str] = {
    "WinbackResultsBucket": (
        "each campaign's results: counts, rates and lift per tier and variant, never a member (the members' own "
        "win-back contacts and holdouts are items under the member in MembersTable, exported with the record)"
    ),
    "IdempotencyTable": (
        "Powertools idempotency records (a hash of the platform's event id and the handler's result, which never "
        "holds an address) and intake's recently queued deliveries (idempotency key and correlation id); both "
        "expire within a day"
    ),
}
"""Tables and buckets of template.yaml that hold no member data, each with the reason."""


def export_person(
    email: str, physical: Callable[[str], str], suppressions: SuppressionList | None, now: datetime | None = None
) -> dict[str, Any]:
    context = ExportContext(email, physical, suppressions)
    document: dict[str, Any] = {
        "email": email,
        "exported_at": (now or datetime.now(UTC)).isoformat(),
    }
    for exporter in EXPORTERS:
        document[exporter.name] = exporter.export(context)
    return document


def plain(value: Any) -> Any:
    """A DynamoDB item as JSON: numbers as int or float, sets as sorted lists."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(item) for item in value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
