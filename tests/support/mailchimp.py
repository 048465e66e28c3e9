"""The official mailchimp-marketing client pointed at a sandbox: what a marketer's tools see."""

from __future__ import annotations

import mailchimp_marketing


def official_client(url: str, api_key: str) -> mailchimp_marketing.Client:
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": api_key})
    client.api_client.host = url  # the client rewrites every "server" in the URL: the sandbox's has none
    return client
