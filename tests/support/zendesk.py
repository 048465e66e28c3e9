"""Fixtures for a test module driving one Zendesk sandbox (assign them in the module, as with
`support.mailchimp`): one server per module, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memberflow_sandboxes.zendesk import ZendeskSandbox


@pytest.fixture(scope="module")
def zendesk() -> Iterator[ZendeskSandbox]:
    with ZendeskSandbox() as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def fresh(zendesk: ZendeskSandbox) -> None:
    zendesk.reset()
