"""The relay's queue on disk (SQLite): every event is written here before anything is sent, and removed only once
memberflow answered 2xx (or refused it for good), so an API outage or a restart of the relay loses nothing.

Also remembers the members Discord holds in membership screening, so a pass that happened while the relay was down
is still relayed when it starts again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_at, seq);
CREATE TABLE IF NOT EXISTS screening (
    user_id TEXT PRIMARY KEY,
    joined_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Queued:
    seq: int
    event_id: str
    event_type: str
    body: bytes
    """The exact bytes to send (and sign) on every attempt."""
    attempts: int


class Outbox:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # One short connection per operation: the Gateway's event loop and the delivery thread share the file.
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("PRAGMA synchronous=FULL")
            with db:  # one transaction, committed on leaving
                yield db

    def add(self, delivery: dict[str, Any], *, now: float) -> bool:
        """Queue a delivery; False when an event with its id is already waiting (Discord dispatched it again)."""
        body = json.dumps(delivery, ensure_ascii=False, separators=(",", ":"))
        with self._db() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO outbox (event_id, event_type, body, next_attempt_at, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (delivery["id"], delivery["type"], body, now, now),
            )
            return cursor.rowcount == 1

    def next_due(self, now: float) -> Queued | None:
        """The oldest event whose next attempt is due."""
        with self._db() as db:
            row = db.execute(
                "SELECT seq, event_id, event_type, body, attempts FROM outbox WHERE next_attempt_at <= ? "
                "ORDER BY seq LIMIT 1",
                (now,),
            ).fetchone()
        return Queued(row[0], row[1], row[2], row[3].encode(), row[4]) if row else None

    def remove(self, seq: int) -> None:
        with self._db() as db:
            db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def retry_at(self, seq: int, when: float, attempts: int) -> None:
        with self._db() as db:
            db.execute("UPDATE outbox SET next_attempt_at = ?, attempts = ? WHERE seq = ?", (when, attempts, seq))

    def next_attempt_at(self) -> float | None:
        """When the next attempt is due; None when nothing is queued."""
        with self._db() as db:
            (when,) = db.execute("SELECT MIN(next_attempt_at) FROM outbox").fetchone()
        return when

    def __len__(self) -> int:
        with self._db() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(count)

    # -- membership screening ------------------------------------------------------------------------------------
    def hold(self, user_id: int, joined_at: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO screening (user_id, joined_at) VALUES (?, ?)", (str(user_id), joined_at))

    def release(self, user_id: int) -> bool:
        """Forget a held member; True when they were held."""
        with self._db() as db:
            return db.execute("DELETE FROM screening WHERE user_id = ?", (str(user_id),)).rowcount == 1

    def is_held(self, user_id: int) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM screening WHERE user_id = ?", (str(user_id),)).fetchone() is not None

    def held(self) -> dict[int, str]:
        """Members held in screening: user id -> the time of the join held."""
        with self._db() as db:
            return {int(user_id): joined_at for user_id, joined_at in db.execute("SELECT * FROM screening")}
