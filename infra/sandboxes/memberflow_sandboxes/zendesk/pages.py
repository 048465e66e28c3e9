"""Zendesk's two pagination styles, and the search query language as far as the sandbox understands it.

- Cursor pagination (what zenpy asks for on list endpoints: it adds `page[size]=100`, `zenpy/lib/endpoint.py`; and
  follows `links.next` while `meta.has_more`, `zenpy/lib/generator.py` `CursorResultsGenerator`): pages of
  `page[size]` (at most 100), `page[after]` / `page[before]` cursors, answered with
  `{"<items>": [...], "meta": {"has_more", "after_cursor", "before_cursor"}, "links": {"next", "prev"}}` and no count
  (Zendesk's "Pagination" guide).
- Offset pagination (any list asked without `page[...]`, and search, which has no cursors): `page` (from 1) and
  `per_page` (at most 100), answered with `next_page` / `previous_page` URLs and `count`; zenpy follows `next_page` as
  given (`BaseResultGenerator.get_next_page`), so every URL is absolute and points back at the host the request was
  sent to (the sandbox), as Zendesk's point at `https://{subdomain}.zendesk.com`.
- A `page` that is not a whole number (or a cursor the sandbox never gave) is a 400 `{"error": {"title": "Invalid
  attribute", "message": "You passed an invalid value for the page attribute. ..."}}`, as captured in Zendesk's
  community ("Cannot use Search API with cursor-based Pagination", "Can Limit the search of tickets").
- Search answers up to 1,000 results, 100 a page at most: a page past that (page 11 at 100 a page) is a 422
  (developer.zendesk.com "Search": "Results limit"); zenpy recognises it as `{"error": "invalid"}` with 422
  (`zenpy/lib/api.py` `_check_response` -> `SearchResponseLimitExceeded`, which its search generator takes as the end),
  the description as users quote it ("Invalid search: Requested response size was greater than Search Response
  Limits").

Not from a capture: a `page[size]` or `per_page` over 100 is taken as 100.
"""

from __future__ import annotations

import base64
import binascii
import shlex
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request

from memberflow_sandboxes.zendesk.errors import ZendeskError

PAGE_SIZE_MAX = 100
SEARCH_RESULTS_MAX = 1000


def invalid_page(detail: str) -> ZendeskError:
    return ZendeskError(
        400,
        {
            "title": "Invalid attribute",
            "message": f"You passed an invalid value for the page attribute. Invalid parameter: {detail}",
        },
    )


def search_limit() -> ZendeskError:
    return ZendeskError(
        422, "invalid", "Invalid search: Requested response size was greater than Search Response Limits"
    )


def wants_cursor(request: Request) -> bool:
    return any(name.startswith("page[") for name in request.args)


def page(request: Request, key: str, items: Sequence[dict[str, Any]], *, cursor: bool = True) -> dict[str, Any]:
    """One page of `items` (each with an `id`) in whichever style the request asked for."""
    if cursor and wants_cursor(request):
        return cursor_page(request, key, items)
    return offset_page(request, key, items)


def _size(raw: str | None, name: str) -> int:
    if raw in (None, ""):
        return PAGE_SIZE_MAX
    try:
        size = int(raw)
    except ValueError:
        raise invalid_page(f"{name} must be an integer") from None
    if size < 1:
        raise invalid_page(f"{name} must be a positive integer")
    return min(size, PAGE_SIZE_MAX)


def _url(request: Request, params: dict[str, Any]) -> str:
    """An absolute URL to the same endpoint on the host the request reached, with `params` as its query."""
    return f"{request.base_url}?{urlencode(params, safe='[]:')}"


def _encode(item_id: Any) -> str:
    return base64.urlsafe_b64encode(f"id:{item_id}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        if kind != "id":
            raise ValueError(cursor)
        return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_page("page[after] and page[before] must be cursors from an earlier page") from None


def cursor_page(request: Request, key: str, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`page[size]`, then `page[after]` (or `page[before]`) from `meta`: records in id order, as Zendesk lists them."""
    args = request.args
    size = _size(args.get("page[size]"), "page[size]")
    ordered = sorted(items, key=lambda item: int(item["id"]))
    after, before = args.get("page[after]"), args.get("page[before]")
    if before:
        limit = _decode(before)
        earlier = [item for item in ordered if int(item["id"]) < limit]
        chunk = earlier[-size:]
        has_more = len(earlier) > size
        later_exists = any(int(item["id"]) >= limit for item in ordered)
    else:
        start = _decode(after) if after else None
        following = [item for item in ordered if start is None or int(item["id"]) > start]
        chunk = following[:size]
        has_more = len(following) > size
        later_exists = has_more
    after_cursor = _encode(chunk[-1]["id"]) if chunk else None
    before_cursor = _encode(chunk[0]["id"]) if chunk else None
    kept = {name: value for name, value in args.items() if name not in ("page[after]", "page[before]")}
    kept["page[size]"] = size
    return {
        key: list(chunk),
        "meta": {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": before_cursor},
        "links": {
            "next": _url(request, {**kept, "page[after]": after_cursor}) if chunk and later_exists else None,
            "prev": _url(request, {**kept, "page[before]": before_cursor}) if chunk else None,
        },
    }


def _offset(request: Request) -> tuple[int, int]:
    raw = request.args.get("page") or "1"
    try:
        number = int(raw)
    except ValueError:
        raise invalid_page(f"page must be an integer from {request.path.lstrip('/').removesuffix('.json')}") from None
    return max(1, number), _size(request.args.get("per_page"), "per_page")


def offset_page(
    request: Request, key: str, items: Sequence[dict[str, Any]], *, cap: int | None = None
) -> dict[str, Any]:
    """`page` and `per_page`: `next_page` / `previous_page` as absolute URLs, `count` of everything."""
    number, per_page = _offset(request)
    start = (number - 1) * per_page
    if cap is not None and start >= cap:
        raise search_limit()
    chunk = list(items[start : start + per_page])
    params = dict(request.args.items())
    params["per_page"] = per_page
    more = start + per_page < len(items)
    return {
        key: chunk,
        "next_page": _url(request, {**params, "page": number + 1}) if more else None,
        "previous_page": _url(request, {**params, "page": number - 1}) if number > 1 else None,
        "count": len(items),
    }


# ---------------------------------------------------------------- search queries


def parse_query(query: str) -> tuple[list[tuple[str, str]], list[str]]:
    """`type:ticket status:open "charged twice" external_id:x` -> ([("type", "ticket"), ...], ["charged twice"]).
    Only `name:value` terms (zenpy's `search(type=..., field=value)` builds them); other operators are kept as text."""
    try:
        tokens = shlex.split(query)
    except ValueError:
        tokens = query.split()
    terms: list[tuple[str, str]] = []
    words: list[str] = []
    for token in tokens:
        name, colon, value = token.partition(":")
        if colon and name and name.replace("_", "").isalnum():
            terms.append((name.lower(), value.strip('"')))
        else:
            words.append(token)
    return terms, words


def matches(
    record: dict[str, Any],
    terms: list[tuple[str, str]],
    words: list[str],
    text_fields: Sequence[str],
    special: dict[str, Callable[[dict[str, Any], str], bool]],
    *,
    substring: bool = False,
) -> bool:
    """Every term matches its field (case-insensitive; `special` fields by their own test) and every word is found in
    one of `text_fields` (as a whole word; with `substring`, anywhere: `users/search` takes part of a name or address).
    A term naming a field the record does not have matches nothing."""
    for name, value in terms:
        if name == "type":
            continue
        if name in special:
            if not special[name](record, value):
                return False
            continue
        if name not in record:
            return False
        field = record[name]
        values = field if isinstance(field, list) else [field]
        if not any(str(v).lower() == value.lower() for v in values if v is not None):
            return False
    text = " ".join(str(record.get(name) or "") for name in text_fields).lower()
    if substring:
        return all(word.strip('"').lower() in text for word in words)
    tokens = text.split()
    return all(_word_found(word.strip('"').lower(), text, tokens) for word in words)


def _word_found(word: str, text: str, tokens: list[str]) -> bool:
    """Search matches whole words (`word*` a prefix; a quoted phrase as it stands), not parts of words."""
    if " " in word:
        return word in text
    if word.endswith("*"):
        return any(token.startswith(word[:-1]) for token in tokens)
    return word in tokens
