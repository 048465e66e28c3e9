"""The members a community already has, read from what its platforms export: Slack's `users.list` pages,
Discourse's user export CSV (Admin -> Users -> Export, the only bulk source that carries user fields, hence
consent) with its admin users list for what that adds cheaply, or memberflow's own CSV format.

Pure: each reader takes text or parsed JSON and yields `ImportedMember`s, or a `RowRefusal` naming the row, the
field and what is wrong with it. Nothing here calls a platform or a store.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from memberflow.events.imports import ImportedMember
from memberflow.models import Platform

CSV_COLUMNS = ("email", "name", "platform", "user_id", "joined", "last_active", "consent")
"""memberflow's import CSV: these columns, in any order, with a header row. Optional: `workspace` (the Slack team,
Discord guild or Discourse URL; default: the command's --workspace) and `email_verified` (default true: the
address comes from the platform's member list)."""
OPTIONAL_CSV_COLUMNS = ("workspace", "email_verified")

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "t", "x", "on"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "f", "", "off"})


@dataclass(frozen=True)
class RowRefusal:
    """A row the import cannot take, and why (no personal data: the row number and the field)."""

    row: int
    field: str
    reason: str


Read = ImportedMember | RowRefusal


def parse_flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ValueError("must be true or false (yes/no, 1/0)")


def parse_moment(value: str | float | int | None) -> datetime | None:
    """An ISO 8601 date or time (naive means UTC), or Unix seconds; empty means unknown."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    text = value.strip().replace(" UTC", "").replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise ValueError("must be an ISO 8601 date or time, e.g. 2024-05-01 or 2024-05-01T09:30:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _member(row: int, values: Mapping[str, Any], fields: Mapping[str, str]) -> Read:
    """Validate one member; a refusal names the source's own field (`fields`: our name -> theirs)."""
    try:
        return ImportedMember.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        ours = str(first["loc"][0]) if first["loc"] else ""
        theirs = fields.get(ours, ours)
        message = str(first["msg"]).removeprefix("Value error, ")
        return RowRefusal(row, theirs, message)


# ---------------------------------------------------------------- memberflow's CSV


def read_csv(lines: Iterable[str], *, workspace: str = "import") -> Iterator[Read]:
    """memberflow's import format (`CSV_COLUMNS`, a header row). Row numbers count the header as row 1."""
    reader = csv.DictReader(lines)
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in CSV_COLUMNS if name not in header]
    if missing:
        yield RowRefusal(1, ",".join(missing), "missing from the header: " + ",".join(CSV_COLUMNS) + " are needed")
        return
    reader.fieldnames = header
    fields = {
        "identity": "platform",
        "joined_at": "joined",
        "last_active_at": "last_active",
        "marketing_consent": "consent",
    }
    for number, raw in enumerate(reader, start=2):
        row = {key: (value or "").strip() for key, value in raw.items() if key}
        try:
            parsed: dict[str, Any] = {}
            for ours, theirs, parse in (
                ("joined_at", "joined", parse_moment),
                ("last_active_at", "last_active", parse_moment),
                ("marketing_consent", "consent", parse_flag),
                ("email_verified", "email_verified", parse_flag),
            ):
                if theirs == "email_verified" and not row.get(theirs):
                    continue
                try:
                    parsed[ours] = parse(row.get(theirs, ""))
                except ValueError as error:
                    raise _FieldError(theirs, str(error)) from None
        except _FieldError as error:
            yield RowRefusal(number, error.field, error.reason)
            continue
        if not row.get("platform") or not row.get("user_id"):
            yield RowRefusal(number, "platform" if not row.get("platform") else "user_id", "must not be empty")
            continue
        identity = {"platform": row["platform"].lower(), "workspace": row.get("workspace") or workspace}
        identity["user_id"] = row["user_id"]
        values = {"identity": identity, "email": row["email"] or None, "name": row["name"] or None, **parsed}
        yield _member(number, values, fields)


class _FieldError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


# ---------------------------------------------------------------- Slack users.list

SLACK_EMAIL_SCOPE = "users:read.email"
"""The scope without which users.list leaves out `profile.email` (and still answers `ok: true`)."""


def _not_a_person(user: Mapping[str, Any]) -> bool:
    return bool(user.get("is_bot") or user.get("is_app_user") or user.get("id") == "USLACKBOT")


def slack_pages_problem(pages: Sequence[Mapping[str, Any]]) -> str | None:
    """Why saved `users.list` pages must not be imported, or None:
    - the last page says more follow (`response_metadata.next_cursor`): the fetch that saved them stopped early, and
      everyone after that page would be left out without a word;
    - they list people but not one address: the token lacked `users:read.email`. Members stored without an address
      never reach Mailchimp, and the member store keys a member by their address when it has one, by their Slack
      identity otherwise: importing again with the scope would make a second member of every person (merging the
      two is not something an import can do safely, e.g. when the address already belongs to a member who joined
      elsewhere), so the list is refused rather than imported without addresses."""
    if not pages:
        return None
    if ((pages[-1].get("response_metadata") or {}).get("next_cursor") or "").strip():
        return (
            "its last users.list page says more follow (response_metadata.next_cursor): the fetch that saved it "
            "stopped early, and importing it would leave out everyone after that page. Fetch it again "
            "(SLACK_BOT_TOKEN=... memberflow import slack FILE --fetch)"
        )
    people = [
        user
        for page in pages
        for user in page.get("members", [])
        if isinstance(user, Mapping) and not _not_a_person(user) and not user.get("deleted")
    ]
    if people and not any((user.get("profile") or {}).get("email") for user in people):
        return (
            f"none of its {len(people)} people has an address (profile.email): the token that listed them lacks the "
            f"{SLACK_EMAIL_SCOPE} scope. Members without an address never reach Mailchimp, and importing them now "
            "would make a second member of each person once they are imported again with the scope. Add "
            f"{SLACK_EMAIL_SCOPE} to the app's Bot Token Scopes, reinstall it to the workspace, and fetch the list "
            "again (SLACK_BOT_TOKEN=... memberflow import slack FILE --fetch)"
        )
    return None


def read_slack_users(
    pages: Iterable[Mapping[str, Any]], *, include_guests: bool = False, include_deleted: bool = False
) -> Iterator[Read]:
    """Slack `users.list` answers (one per cursor page). Bots, app users and Slackbot are never members; deleted
    users and guests (single- and multi-channel) only when asked. Slack says nothing about consent (members are
    kept without marketing permission, as live Slack joins are) and has no join date: none is recorded. Row numbers
    count users across pages, from 1."""
    number = 0
    for page in pages:
        team = ""
        for user in page.get("members", []):
            number += 1
            if _not_a_person(user):
                continue
            if user.get("deleted") and not include_deleted:
                continue
            if (user.get("is_restricted") or user.get("is_ultra_restricted")) and not include_guests:
                continue
            team = str(user.get("team_id") or team)
            profile = user.get("profile") or {}
            name = profile.get("real_name") or user.get("real_name") or profile.get("display_name") or user.get("name")
            values = {
                "identity": {"platform": Platform.SLACK.value, "workspace": team, "user_id": user.get("id", "")},
                "email": profile.get("email") or None,
                "name": name or None,
                "joined_at": None,
                "marketing_consent": False,
                "email_verified": bool(user.get("is_email_confirmed", True)),
            }
            yield _member(number, values, {"identity": "id", "email": "profile.email", "name": "profile.real_name"})


# ---------------------------------------------------------------- Discourse

DISCOURSE_ADMIN_PAGE = 100
"""Users per page of `GET /admin/users/list/{flag}.json`: a page this full is never the last one."""


def discourse_admin_pages_problem(pages: Sequence[Sequence[Any]]) -> str | None:
    """Why saved admin users list pages must not be used, or None: the last page is a full one, so Discourse had
    more to give and the fetch that saved them stopped early (a complete fetch ends with a shorter page, empty when
    the forum's users fill whole pages)."""
    if pages and len(pages[-1]) == DISCOURSE_ADMIN_PAGE:
        return (
            f"its last admin users list page holds a full {DISCOURSE_ADMIN_PAGE} users: Discourse had more, so the "
            "fetch that saved it stopped early. Fetch it again (memberflow import discourse ... --fetch), or leave "
            "out --admin-users"
        )
    return None


def read_discourse_export(
    lines: Iterable[str],
    *,
    instance: str,
    consent_field: str = "",
    admin_users: Iterable[Mapping[str, Any]] = (),
) -> Iterator[Read]:
    """Discourse's user export CSV (Admin -> Users -> Export: `id,name,username,email,title,created_at,
    last_seen_at,last_posted_at,...` then one column per user field, headed by the field's name). `consent_field`
    names that column (or is empty: nobody consented, as for live joins without a configured field). Staged users
    (created by incoming email, never signed up) are skipped. `admin_users` (GET /admin/users/list/active.json
    pages, 100 a page) adds what an older export may lack: whether the address is confirmed (`active`) and the
    latest `last_seen_at`. Row numbers count the header as row 1."""
    known = {int(user["id"]): user for user in admin_users if isinstance(user.get("id"), int)}
    reader = csv.DictReader(lines)
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    for needed in ("id", "email", "created_at"):
        if needed not in header:
            yield RowRefusal(1, needed, "missing from the header: not a Discourse user export")
            return
    if consent_field and consent_field not in header:
        yield RowRefusal(1, consent_field, "the consent field is not a column of the export")
        return
    fields = {"identity": "id", "joined_at": "created_at", "last_active_at": "last_seen_at"}
    for number, row in enumerate(reader, start=2):
        if (row.get("staged") or "").strip().lower() == "true":
            continue
        try:
            user_id = int((row.get("id") or "").strip())
        except ValueError:
            yield RowRefusal(number, "id", "must be the Discourse user id (a number)")
            continue
        if user_id <= 0:
            continue  # system and bot users (-1, -2, ...)
        admin = known.get(user_id, {})
        try:
            joined = parse_moment(row.get("created_at"))
            seen = [parse_moment(row.get(column)) for column in ("last_seen_at", "last_posted_at")]
            seen.append(parse_moment(admin.get("last_seen_at")))
            consent = parse_flag(row.get(consent_field) or "") if consent_field else False
        except ValueError as error:
            yield RowRefusal(number, "created_at/last_seen_at/" + (consent_field or "consent"), str(error))
            continue
        last_active = max((moment for moment in seen if moment), default=None)
        exported_active = (row.get("active") or "").strip().lower()
        active = exported_active == "true" if exported_active else admin.get("active")
        values = {
            "identity": {"platform": Platform.DISCOURSE.value, "workspace": instance, "user_id": str(user_id)},
            "email": (row.get("email") or "").strip() or None,
            "name": (row.get("name") or row.get("username") or "").strip() or None,
            "joined_at": joined,
            "last_active_at": last_active,
            "marketing_consent": consent,
            "email_verified": bool(active) if active is not None else True,
        }
        yield _member(number, values, fields)
