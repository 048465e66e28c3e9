"""The activity log in S3: gzip-compressed JSON lines, one object per day partition and flush, under
`activity/dt=YYYY-MM-DD/<time>-<random>.jsonl.gz` (Athena bills the compressed bytes it reads), which Athena (the
Glue table with partition projection on `dt`, template.yaml) and DuckDB (`read_json(..., hive_partitioning=true)`)
both read.

Records are buffered in the container and written by `flush()` (the SQS consumer flushes after each batch, the drip
after each run): a batch of ten events is one or two PUTs, not ten. Records a failed flush could not write stay in
the buffer and go with the next flush of the container."""

from __future__ import annotations

import gzip
import json
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from memberflow.activity import ActivityRecord, member_hash
from memberflow.adapters.aws import aws_failure, client

PREFIX = "activity"
EXTENSION = ".jsonl.gz"
"""Both engines read the compression from the extension."""
MAX_BUFFERED = 5000
"""A container that cannot write keeps at most this many records (the oldest go first, logged by the caller)."""


def object_key(day: str, now: datetime) -> str:
    return f"{PREFIX}/dt={day}/{now:%Y%m%dT%H%M%S}-{secrets.token_hex(6)}{EXTENSION}"


def encode_lines(records: list[ActivityRecord], hash_key: bytes) -> bytes:
    """JSON lines with the member id replaced by its keyed hash."""
    lines = []
    for record in records:
        fields = record.to_json()
        fields["member"] = member_hash(hash_key, record.member)
        lines.append(json.dumps(fields, separators=(",", ":"), sort_keys=False))
    return ("\n".join(lines) + "\n").encode()


def encode_object(records: list[ActivityRecord], hash_key: bytes) -> bytes:
    """One object of the log: the JSON lines, gzip-compressed."""
    return gzip.compress(encode_lines(records, hash_key), mtime=0)


class S3ActivityLog:
    def __init__(self, bucket: str, hash_key: Callable[[], bytes], *, s3: Any = None) -> None:
        self._bucket = bucket
        self._hash_key = hash_key
        """Read on first flush (Secrets Manager)."""
        self._s3 = s3
        self._buffer: list[ActivityRecord] = []
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def append(self, record: ActivityRecord) -> None:
        with self._lock:
            self._buffer.append(record)
            if len(self._buffer) > MAX_BUFFERED:
                del self._buffer[: len(self._buffer) - MAX_BUFFERED]

    def flush(self) -> int:
        with self._lock:
            records, self._buffer = self._buffer, []
        if not records:
            return 0
        by_day: dict[str, list[ActivityRecord]] = defaultdict(list)
        for record in records:
            by_day[record.day].append(record)
        written = 0
        s3 = self._s3 or client("s3")
        now = datetime.now(UTC)
        try:
            key = self._hash_key()
            for day, day_records in sorted(by_day.items()):
                s3.put_object(
                    Bucket=self._bucket,
                    Key=object_key(day, now),
                    Body=encode_object(day_records, key),
                    ContentType="application/gzip",
                )
                written += len(day_records)
                del by_day[day]
        except Exception as error:
            unwritten = [record for day_records in by_day.values() for record in day_records]
            with self._lock:
                self._buffer[:0] = unwritten
            raise aws_failure(error, "s3") from error
        return written
