"""Each signature scheme accepts what its sender signs and nothing else: tampering, a wrong secret, a missing
header or an old timestamp must all fail."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from memberflow import signatures
from memberflow.signatures import SignatureError

NOW = 1_700_000_000
BODY = b'{"type":"event_callback","event_id":"Ev1"}'
SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"  # RFC 8032 test vector 1
OTHER_SEED = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


# ---------------------------------------------------------------- Slack


def test_slack_signature_is_hmac_of_version_timestamp_and_body() -> None:
    expected = hmac.new(b"slack-secret", f"v0:{NOW}:".encode() + BODY, hashlib.sha256).hexdigest()

    headers = signatures.sign_slack("slack-secret", BODY, NOW)

    assert headers == {"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": f"v0={expected}"}


def test_slack_valid_signature_passes() -> None:
    signatures.verify_slack("slack-secret", BODY, lower(signatures.sign_slack("slack-secret", BODY, NOW)), now=NOW)


def test_slack_tampered_body_fails() -> None:
    headers = lower(signatures.sign_slack("slack-secret", BODY, NOW))
    with pytest.raises(SignatureError) as error:
        signatures.verify_slack("slack-secret", BODY.replace(b"Ev1", b"Ev2"), headers, now=NOW)
    assert error.value.code == "invalid_signature"


def test_slack_wrong_secret_fails() -> None:
    headers = lower(signatures.sign_slack("someone-else", BODY, NOW))
    with pytest.raises(SignatureError, match="X-Slack-Signature"):
        signatures.verify_slack("slack-secret", BODY, headers, now=NOW)


def test_slack_signature_of_another_timestamp_fails() -> None:
    headers = lower(signatures.sign_slack("slack-secret", BODY, NOW))
    headers["x-slack-request-timestamp"] = str(NOW + 1)
    with pytest.raises(SignatureError) as error:
        signatures.verify_slack("slack-secret", BODY, headers, now=NOW)
    assert error.value.code == "invalid_signature"


@pytest.mark.parametrize("missing", ["x-slack-signature", "x-slack-request-timestamp"])
def test_slack_missing_header_fails(missing: str) -> None:
    headers = lower(signatures.sign_slack("slack-secret", BODY, NOW))
    del headers[missing]
    with pytest.raises(SignatureError) as error:
        signatures.verify_slack("slack-secret", BODY, headers, now=NOW)
    assert error.value.code == "missing_signature"


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_slack_timestamp_more_than_five_minutes_away_fails(age: int) -> None:
    headers = lower(signatures.sign_slack("slack-secret", BODY, NOW - age))
    with pytest.raises(SignatureError) as error:
        signatures.verify_slack("slack-secret", BODY, headers, now=NOW)
    assert error.value.code == "stale_timestamp"


def test_slack_timestamp_within_five_minutes_passes() -> None:
    headers = lower(signatures.sign_slack("slack-secret", BODY, NOW - 299))
    signatures.verify_slack("slack-secret", BODY, headers, now=NOW)


def test_header_names_are_matched_in_any_case() -> None:
    signatures.verify_slack("slack-secret", BODY, signatures.sign_slack("slack-secret", BODY, NOW), now=NOW)


# ---------------------------------------------------------------- Discourse


def test_discourse_signature_is_hmac_of_body() -> None:
    expected = hmac.new(b"discourse-secret", BODY, hashlib.sha256).hexdigest()
    assert signatures.sign_discourse("discourse-secret", BODY) == {"X-Discourse-Event-Signature": f"sha256={expected}"}


def test_discourse_valid_signature_passes() -> None:
    signatures.verify_discourse("discourse-secret", BODY, lower(signatures.sign_discourse("discourse-secret", BODY)))


def test_discourse_tampered_body_fails() -> None:
    headers = lower(signatures.sign_discourse("discourse-secret", BODY))
    with pytest.raises(SignatureError) as error:
        signatures.verify_discourse("discourse-secret", BODY + b" ", headers)
    assert error.value.code == "invalid_signature"


def test_discourse_wrong_secret_fails() -> None:
    headers = lower(signatures.sign_discourse("other-secret", BODY))
    with pytest.raises(SignatureError):
        signatures.verify_discourse("discourse-secret", BODY, headers)


def test_discourse_missing_signature_fails() -> None:
    with pytest.raises(SignatureError) as error:
        signatures.verify_discourse("discourse-secret", BODY, {"x-discourse-event": "user_created"})
    assert error.value.code == "missing_signature"


# ---------------------------------------------------------------- Discord relay (Ed25519)


def test_discord_public_key_matches_rfc_8032_vector() -> None:
    assert signatures.discord_public_key(SEED) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def test_discord_relay_signature_is_ed25519_of_timestamp_and_body() -> None:
    from nacl.signing import VerifyKey

    headers = signatures.sign_discord_relay(SEED, BODY, NOW)

    assert headers["X-Signature-Timestamp"] == str(NOW)
    VerifyKey(bytes.fromhex(signatures.discord_public_key(SEED))).verify(
        str(NOW).encode() + BODY, bytes.fromhex(headers["X-Signature-Ed25519"])
    )


def test_discord_relay_valid_signature_passes() -> None:
    headers = lower(signatures.sign_discord_relay(SEED, BODY, NOW))
    signatures.verify_discord_relay(signatures.discord_public_key(SEED), BODY, headers, now=NOW)


def test_discord_relay_tampered_body_fails() -> None:
    headers = lower(signatures.sign_discord_relay(SEED, BODY, NOW))
    with pytest.raises(SignatureError) as error:
        signatures.verify_discord_relay(signatures.discord_public_key(SEED), BODY + b"x", headers, now=NOW)
    assert error.value.code == "invalid_signature"


def test_discord_relay_signed_with_another_key_fails() -> None:
    headers = lower(signatures.sign_discord_relay(OTHER_SEED, BODY, NOW))
    with pytest.raises(SignatureError):
        signatures.verify_discord_relay(signatures.discord_public_key(SEED), BODY, headers, now=NOW)


@pytest.mark.parametrize("signature", ["not-hex", "00" * 64, "ab"])
def test_discord_relay_malformed_signature_fails(signature: str) -> None:
    headers = {"x-signature-ed25519": signature, "x-signature-timestamp": str(NOW)}
    with pytest.raises(SignatureError) as error:
        signatures.verify_discord_relay(signatures.discord_public_key(SEED), BODY, headers, now=NOW)
    assert error.value.code == "invalid_signature"


@pytest.mark.parametrize("missing", ["x-signature-ed25519", "x-signature-timestamp"])
def test_discord_relay_missing_header_fails(missing: str) -> None:
    headers = lower(signatures.sign_discord_relay(SEED, BODY, NOW))
    del headers[missing]
    with pytest.raises(SignatureError) as error:
        signatures.verify_discord_relay(signatures.discord_public_key(SEED), BODY, headers, now=NOW)
    assert error.value.code == "missing_signature"


def test_discord_relay_stale_timestamp_fails() -> None:
    headers = lower(signatures.sign_discord_relay(SEED, BODY, NOW - 301))
    with pytest.raises(SignatureError) as error:
        signatures.verify_discord_relay(signatures.discord_public_key(SEED), BODY, headers, now=NOW)
    assert error.value.code == "stale_timestamp"


# ---------------------------------------------------------------- generic


def test_generic_signature_is_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"generic-secret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()

    headers = signatures.sign_generic("generic-secret", BODY, NOW)

    assert headers == {"X-Memberflow-Timestamp": str(NOW), "X-Memberflow-Signature": f"sha256={expected}"}


def test_generic_valid_signature_passes() -> None:
    headers = lower(signatures.sign_generic("generic-secret", BODY, NOW))
    signatures.verify_generic("generic-secret", BODY, headers, now=NOW)


def test_generic_tampered_body_fails() -> None:
    headers = lower(signatures.sign_generic("generic-secret", BODY, NOW))
    with pytest.raises(SignatureError) as error:
        signatures.verify_generic("generic-secret", BODY[:-1], headers, now=NOW)
    assert error.value.code == "invalid_signature"


def test_generic_wrong_secret_fails() -> None:
    headers = lower(signatures.sign_generic("other-secret", BODY, NOW))
    with pytest.raises(SignatureError):
        signatures.verify_generic("generic-secret", BODY, headers, now=NOW)


def test_generic_missing_signature_fails() -> None:
    with pytest.raises(SignatureError) as error:
        signatures.verify_generic("generic-secret", BODY, {"x-memberflow-timestamp": str(NOW)}, now=NOW)
    assert error.value.code == "missing_signature"


def test_generic_stale_timestamp_fails() -> None:
    headers = lower(signatures.sign_generic("generic-secret", BODY, NOW + 301))
    with pytest.raises(SignatureError) as error:
        signatures.verify_generic("generic-secret", BODY, headers, now=NOW)
    assert error.value.code == "stale_timestamp"


def test_generic_non_numeric_timestamp_fails() -> None:
    headers = lower(signatures.sign_generic("generic-secret", BODY, "yesterday"))
    with pytest.raises(SignatureError) as error:
        signatures.verify_generic("generic-secret", BODY, headers, now=NOW)
    assert error.value.code == "invalid_signature"


# ---------------------------------------------------------------- shared rules


def test_an_empty_secret_never_verifies() -> None:
    headers = lower(signatures.sign_generic("x", BODY, NOW))
    with pytest.raises(ValueError, match="empty"):
        signatures.verify_generic("", BODY, headers, now=NOW)


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signatures.hmac, "compare_digest", spy)
    signatures.verify_discourse("s", BODY, lower(signatures.sign_discourse("s", BODY)))
    assert len(calls) == 1
