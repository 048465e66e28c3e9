"""`python -m memberflow_discord_relay [run | ping | keygen]`

- run (default): connect to Discord and relay, configured by environment variables (see config.py);
- ping: send a signed PING to memberflow and say whether URL, key and clock are right;
- keygen: print a new key pair (the private key for RELAY_PRIVATE_KEY, the public key for memberflow's
  `discord_relay_public_key` secret).
"""

from __future__ import annotations

import sys

from memberflow_discord_relay import logs, signing
from memberflow_discord_relay.config import ConfigError, RelayConfig


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "run"
    if command == "keygen":
        private, public = signing.generate()
        print(f"RELAY_PRIVATE_KEY={private}")
        print(f"discord_relay_public_key={public}")
        return 0
    if command not in ("run", "ping"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        config = RelayConfig.from_env()
    except ConfigError as error:
        print(f"configuration: {error}", file=sys.stderr)
        return 2
    logs.configure(config.log_level)
    from memberflow_discord_relay.bot import RelayBot, ping

    if command == "ping":
        ok, said = ping(config)
        print(said)
        return 0 if ok else 1
    RelayBot(config).run(config.bot_token, log_handler=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
