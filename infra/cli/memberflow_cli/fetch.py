"""Saving what `memberflow import` reads, from the platforms' APIs, as a file (so the import itself, its checkpoint
and its re-runs work on a fixed list):

- Slack `users.list`: cursor pagination (`response_metadata.next_cursor`) with `limit=200` (Slack's advice; omitting
  it fails on large workspaces), a bot token with `users:read` and `users:read.email`; rate tier 2 (about 20 calls a
  minute), so pages are paced and a 429 waits its Retry-After. One answer per line.
- Discourse `GET /admin/users/list/active.json?show_emails=true`: 100 users a page, no total (a short page is the
  last); `Api-Key` and `Api-Username`; admin calls share a budget of 60 a minute, so pages are paced at one a second
  and a 429 waits its Retry-After. One page per line. It carries no user fields: consent comes from the user export.

Tokens come from the environment, never from the command line (it ends up in shell history and process lists).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SLACK_API = "https://slack.com/api"
SLACK_PAGE = 200
SLACK_PACE_SECONDS = 3.0
"""Tier 2: about 20 calls a minute per method and workspace."""
DISCOURSE_PAGE = 100
DISCOURSE_PACE_SECONDS = 1.0
"""60 admin API calls a minute for the whole site."""
DEFAULT_RETRY_AFTER = 30.0


class FetchError(RuntimeError):
    pass


def fetch_slack_users(
    token: str,
    out: Path,
    *,
    base_url: str = SLACK_API,
    session: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Every page of `users.list` into `out`; how many pages."""
    import requests

    session = session or requests.Session()
    cursor, pages = "", 0
    with out.open("w", encoding="utf-8") as lines:
        while True:
            params: dict[str, Any] = {"limit": SLACK_PAGE}
            if cursor:
                params["cursor"] = cursor
            answer = session.get(
                f"{base_url}/users.list", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            if answer.status_code == 429:
                sleep(_retry_after(answer))
                continue
            answer.raise_for_status()
            page = answer.json()
            if not page.get("ok"):
                raise FetchError(
                    f"Slack users.list answered {page.get('error')!r} (the token needs users:read and users:read.email)"
                )
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
    session: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Every page of the active users (with emails) into `out`; how many users."""
    import requests

    session = session or requests.Session()
    headers = {"Api-Key": api_key, "Api-Username": api_username}
    page, users = 1, 0
    with out.open("w", encoding="utf-8") as lines:
        while True:
            answer = session.get(
                f"{instance.rstrip('/')}/admin/users/list/active.json",
                params={"page": page, "show_emails": "true", "order": "created", "asc": "true"},
                headers=headers,
                timeout=30,
            )
            if answer.status_code == 429:
                sleep(_retry_after(answer))
                continue
            answer.raise_for_status()
            batch = answer.json()
            if not isinstance(batch, list):
                raise FetchError("Discourse did not answer a list of users (is the key an admin's?)")
            lines.write(json.dumps(batch) + "\n")
            users += len(batch)
            if len(batch) < DISCOURSE_PAGE:
                return users
            page += 1
            sleep(DISCOURSE_PACE_SECONDS)


def _retry_after(answer: Any) -> float:
    try:
        return max(0.0, float(answer.headers.get("Retry-After", DEFAULT_RETRY_AFTER)))
    except ValueError:
        return DEFAULT_RETRY_AFTER
