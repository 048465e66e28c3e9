"""The relay's own Ed25519 key pair (not the Discord application's): it signs `timestamp + raw body`, the scheme
Discord uses for interactions; memberflow verifies with the public key stored as `discord_relay_public_key`."""

from __future__ import annotations

from nacl.signing import SigningKey


def signing_key(private_key_hex: str) -> SigningKey:
    """The key from its 32-byte seed in hex (64 characters), as `keygen` prints it."""
    seed = bytes.fromhex(private_key_hex.strip())
    if len(seed) != 32:
        raise ValueError("the relay's private key is 32 bytes, 64 hex characters")
    return SigningKey(seed)


def signature_headers(key: SigningKey, body: bytes, timestamp: int) -> dict[str, str]:
    stamp = str(timestamp)
    return {
        "X-Signature-Timestamp": stamp,
        "X-Signature-Ed25519": key.sign(stamp.encode() + body).signature.hex(),
    }


def generate() -> tuple[str, str]:
    """A new key pair: (private key hex for the relay, public key hex for memberflow's webhook secrets)."""
    key = SigningKey.generate()
    return key.encode().hex(), key.verify_key.encode().hex()


def public_key_hex(private_key_hex: str) -> str:
    return signing_key(private_key_hex).verify_key.encode().hex()
