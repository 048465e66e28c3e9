"""Saving what `memberflow import` reads, from the platforms' APIs, as a file (so the import itself, its checkpoint
and its re-runs work on a fixed list):

- Slack `users.list`: cursor pagination (`response_metadata.next_cursor`) with `limit=200` (Slack's advice; omitting
  it fails on large workspaces), a bot token with `users:read` and `users:read.email`; rate tier 2 (about 20 calls a
  minute), so pages are paced and a 429 waits its Retry-After. One answer per line. The first answer's
  `X-OAuth-Scopes` header says which scopes the token has: without `users:read.email` Slack still answers `ok` but
  leaves every address out, so the fetch stops there and names the scope (members without an address never reach
  Mailchimp, and importing them now would make a second member of each when they are imported again with it).
- Discourse `GET /admin/users/list/active.json?show_emails=true`: 100 users a page, no total (a short page is the
  last); `Api-Key` and `Api-Username`. Every admin call on the site (member replies, other admin tools) takes from
  one bucket of 60 a minute, so the fetch uses at most `DISCOURSE_CALLS_PER_MINUTE` (half of it unless told
  otherwise) and a 429 waits its Retry-After (or its `extras.wait_seconds`). One page per line. It carries no user
  fields: consent comes from the user export.

Either way the pages go to a temporary file next to the output, renamed over it only once the last page is in: a
fetch that stops (a 5xx that outlasts `SERVER_ERROR_WAITS`, a refusal, Ctrl-C) leaves the output as it was, never a
partial list that reads like a whole one. Tokens come from the environment, never from the command line (it ends up
in shell history and process lists).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

SLACK_API = "https://slack.com/api"
SLACK_PAGE = 200
SLACK_PACE_SECONDS = 3.0
"""Tier 2: about 20 calls a minute per method and workspace."""
SLACK_SCOPES = ("users:read", "users:read.email")
"""What users.list needs: `users:read` for the list, `users:read.email` for `profile.email`."""
DISCOURSE_PAGE = 100
DISCOURSE_SITE_LIMIT = 60
"""Admin API calls a minute for the whole site, every admin key and member reply together."""
DISCOURSE_CALLS_PER_MINUTE = 30
"""The fetch's share of that bucket unless told otherwise: half, so member replies and the forum's other admin tools
keep the rest (a page every 2 s: about 20 s per 1,000 users)."""
DISCOURSE_PACE_SECONDS = 60.0 / DISCOURSE_CALLS_PER_MINUTE
DEFAULT_RETRY_AFTER = 30.0
"""A 429 that says nothing about how long to wait."""
THROTTLED_WAITS = 10
"""429s in a row waited out before the fetch gives up (the platform stays busy: run it again later)."""
SERVER_ERROR_WAITS = (2.0, 5.0, 10.0)
"""Waits before trying a page again after a 5xx, a timeout or a dropped connection; then the fetch stops."""
TIMEOUT_SECONDS = 30


class FetchError(RuntimeError):
    pass


def discourse_pace(calls_per_minute: float) -> float:
    """Seconds between Discourse pages for `calls_per_minute`, which must leave the site's bucket whole or less."""
    if not 0 < calls_per_minute <= DISCOURSE_SITE_LIMIT:
        raise ValueError(
            f"Discourse admin calls a minute must be more than 0 and at most {DISCOURSE_SITE_LIMIT} (the whole "
            f"site's bucket); {DISCOURSE_CALLS_PER_MINUTE} leaves half for member replies and other admin tools"
        )
    return 60.0 / calls_per_minute


def fetch_slack_users(
    token: str,
    out: Path,
    *,
    base_url: str = SLACK_API,
    session: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] | None = None,
) -> int:
    """Every page of `users.list` into `out` (only once all are in); how many pages."""
    import requests

    session = session or requests.Session()
    cursor, pages = "", 0
    with _replacing(out) as lines:
        while True:
            params: dict[str, Any] = {"limit": SLACK_PAGE}
            if cursor:
                params["cursor"] = cursor
            answer = _get(
                session,
                f"{base_url}/users.list",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                sleep=sleep,
                say=say,
                service="Slack users.list",
                wait_of=_retry_after,
            )
            if answer.status_code != 200:
                raise FetchError(f"Slack users.list answered HTTP {answer.status_code}")
            page = _json(answer, "Slack users.list")
            if not isinstance(page, dict) or not page.get("ok"):
                raise FetchError(_slack_refusal(page if isinstance(page, dict) else {}))
            if pages == 0:
                _check_slack_scopes(answer.headers.get("X-OAuth-Scopes"))
            lines.write(json.dumps(page) + "\n")
            pages += 1
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return pages
            sleep(SLACK_PACE_SECONDS)


def fetch_discourse_users(
    instance: str,
    api_key: str,
    api_username: str,
    out: Path,
    *,
    calls_per_minute: float = DISCOURSE_CALLS_PER_MINUTE,
    session: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] | None = None,
) -> int:
    """Every page of the active users (with emails) into `out` (only once all are in), at most `calls_per_minute`
    pages a minute; how many users."""
    import requests

    pace = discourse_pace(calls_per_minute)
    session = session or requests.Session()
    headers = {"Api-Key": api_key, "Api-Username": api_username}
    page, users = 1, 0
    with _replacing(out) as lines:
        while True:
            answer = _get(
                session,
                f"{instance.rstrip('/')}/admin/users/list/active.json",
                params={"page": page, "show_emails": "true", "order": "created", "asc": "true"},
                headers=headers,
                sleep=sleep,
                say=say,
                service="Discourse",
                wait_of=_discourse_wait,
            )
            if answer.status_code != 200:
                raise FetchError(_discourse_refusal(answer))
            batch = _json(answer, "Discourse")
            if not isinstance(batch, list):
                raise FetchError("Discourse did not answer a list of users (is the key an admin's?)")
            lines.write(json.dumps(batch) + "\n")
            users += len(batch)
            if len(batch) < DISCOURSE_PAGE:
                return users
            page += 1
            sleep(pace)


@contextmanager
def _replacing(out: Path) -> Iterator[TextIO]:
    """A file written next to `out` and renamed over it when the block ends normally; removed otherwise."""
    partial = out.with_name(f".{out.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as lines:
            yield lines
            lines.flush()
            os.fsync(lines.fileno())
        partial.replace(out)  # atomic: `out` is the old file or the whole new one, never part of it
    finally:
        partial.unlink(missing_ok=True)


def _get(
    session: Any,
    url: str,
    *,
    params: dict[str, Any],
    headers: dict[str, str],
    sleep: Callable[[float], None],
    say: Callable[[str], None] | None,
    service: str,
    wait_of: Callable[[Any], float],
) -> Any:
    """The answer to a GET (any status but 429 and 5xx): a 429 waits as long as the platform asks, a 5xx, a timeout
    or a dropped connection is tried again after each of `SERVER_ERROR_WAITS`; then FetchError."""
    import requests

    say = say or (lambda _: None)
    throttled = failed = 0
    while True:
        try:
            answer = session.get(url, params=params, headers=headers, timeout=TIMEOUT_SECONDS)
        except (requests.ConnectionError, requests.Timeout) as error:
            problem = type(error).__name__
        else:
            if answer.status_code == 429:
                throttled += 1
                if throttled > THROTTLED_WAITS:
                    raise FetchError(f"{service} kept answering 429 (too many requests) after {THROTTLED_WAITS} waits")
                wait = wait_of(answer)
                say(f"{service} asks to slow down (429): waiting {wait:.0f} s")
                sleep(wait)
                continue
            if answer.status_code < 500:
                return answer
            problem = f"HTTP {answer.status_code}"
        if failed == len(SERVER_ERROR_WAITS):
            raise FetchError(f"{service} kept failing ({problem}) after {failed + 1} tries")
        wait = SERVER_ERROR_WAITS[failed]
        failed += 1
        say(f"{service} failed ({problem}): trying again in {wait:.0f} s")
        sleep(wait)


def _json(answer: Any, service: str) -> Any:
    try:
        return answer.json()
    except ValueError:
        raise FetchError(f"{service} did not answer JSON (HTTP {answer.status_code})") from None


def _check_slack_scopes(header: str | None) -> None:
    """Stop at the first page when the token's scopes (Slack's `X-OAuth-Scopes`) lack one users.list needs. Without
    the header nothing is known here: the import itself refuses a list in which nobody has an address."""
    if header is None:
        return
    scopes = {scope.strip() for scope in header.split(",") if scope.strip()}
    missing = [scope for scope in SLACK_SCOPES if scope not in scopes]
    if missing:
        raise FetchError(
            f"the Slack token lacks the {' and '.join(missing)} scope (it has: {', '.join(sorted(scopes)) or 'none'}). "
            "Without users:read.email Slack answers users.list with every member's address left out: nobody "
            "would reach Mailchimp, and importing them now would make a second member of each person once they "
            "are imported again with the scope. Add it under OAuth & Permissions -> Bot Token Scopes, reinstall "
            "the app to the workspace, and run the same command again"
        )


def _slack_refusal(page: dict[str, Any]) -> str:
    error = page.get("error")
    message = f"Slack users.list answered {error!r}"
    if error == "missing_scope":
        return (
            f"{message} (needed: {page.get('needed') or 'users:read'}; the token has: {page.get('provided') or 'none'})"
        )
    return f"{message} (the token needs users:read and users:read.email)"


def _discourse_refusal(answer: Any) -> str:
    try:
        errors = "; ".join(str(e) for e in answer.json().get("errors", []))
    except (ValueError, AttributeError):
        errors = ""
    why = f": {errors}" if errors else ""
    if answer.status_code == 403:
        return (
            f"Discourse refused the key (403{why}): DISCOURSE_API_KEY must be an admin key and "
            "DISCOURSE_API_USERNAME an admin (default system)"
        )
    if answer.status_code == 404:
        # Discourse's admin routes are staff-only: a non-staff user's key gets the same "not found" as a wrong URL.
        return (
            f"Discourse has no admin users list here (404{why}): is --instance the forum's URL, and is "
            "DISCOURSE_API_USERNAME an admin (default system)?"
        )
    return f"Discourse answered HTTP {answer.status_code}{why}"


def _retry_after(answer: Any) -> float:
    try:
        return max(0.0, float(answer.headers.get("Retry-After", DEFAULT_RETRY_AFTER)))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _discourse_wait(answer: Any) -> float:
    """Discourse says how long in `Retry-After` and in the body's `extras.wait_seconds`: the longer of the two."""
    waits = []
    if answer.headers.get("Retry-After") is not None:
        waits.append(_retry_after(answer))
    try:
        body = answer.json()
        waits.append(max(0.0, float(body["extras"]["wait_seconds"])))
    except (ValueError, KeyError, TypeError):
        pass
    return max(waits) if waits else DEFAULT_RETRY_AFTER
