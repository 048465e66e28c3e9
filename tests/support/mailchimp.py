"""The official mailchimp-marketing client pointed at a sandbox: what a marketer's tools see."""

from __future__ import annotations

from collections.abc import Iterator

import mailchimp_marketing
import pytest

from memberflow.adapters.mailchimp import MailchimpList
from memberflow_sandboxes.mailchimp import MailchimpSandbox


def official_client(url: str, api_key: str) -> mailchimp_marketing.Client:
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": api_key})
    client.api_client.host = url  # the client rewrites every "server" in the URL: the sandbox's has none
    return client


# Fixtures for a test module driving one Mailchimp sandbox (import them into the module): one server per module,
# reset before each test.
SANDBOX_API_KEY = "sandbox-key-us1"


@pytest.fixture(scope="module")
def running_sandbox() -> Iterator[MailchimpSandbox]:
    with MailchimpSandbox(api_key=SANDBOX_API_KEY) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running_sandbox: MailchimpSandbox) -> MailchimpSandbox:
    running_sandbox.reset()
    return running_sandbox


@pytest.fixture
def client(sandbox: MailchimpSandbox) -> mailchimp_marketing.Client:
    return official_client(sandbox.url, SANDBOX_API_KEY)


@pytest.fixture
def adapter(sandbox: MailchimpSandbox) -> MailchimpList:
    """memberflow's own Mailchimp adapter, on the same sandbox."""
    return MailchimpList(lambda fresh: SANDBOX_API_KEY, sandbox.url)
