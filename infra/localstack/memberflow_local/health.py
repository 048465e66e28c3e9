"""The health report's SQL on DuckDB, over activity-log files on disk (JSON lines under `activity/dt=YYYY-MM-DD/`,
as the S3 adapter writes them): what runs locally, in tests and in the benchmark. Deployed, Athena runs the same
files (`memberflow.adapters.athena`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from memberflow.activity import COLUMNS
from memberflow.adapters.activity_log import PREFIX

# The Glue table's types (template.yaml) as DuckDB names them.
_DUCKDB_TYPES = {"int": "INTEGER", "string": "VARCHAR", "timestamp": "TIMESTAMP", "boolean": "BOOLEAN"}


class DuckDBEngine:
    """`run(name, sql)` over the files under `root` (the bucket's layout). Partition pruning on `dt` is DuckDB's
    own (hive partitioning), as Athena's is partition projection. With `days` (first, last), those days are loaded
    once into a table: what a report does, whose queries all read within them."""

    def __init__(self, root: Path | str, *, threads: int | None = None, days: tuple[date, date] | None = None) -> None:
        import duckdb

        self.root = Path(root)
        self._db = duckdb.connect()
        if threads:
            self._db.execute(f"SET threads = {int(threads)}")
        # Trino's approximate percentile, exact here (the same value Athena gives on small sets).
        self._db.execute("CREATE MACRO approx_percentile(x, p) AS quantile_disc(x, p)")
        columns = ", ".join(f"'{name}': '{_DUCKDB_TYPES[kind]}'" for name, kind in COLUMNS.items())
        pattern = str(self.root / PREFIX / "dt=*" / "*.jsonl*")  # .jsonl.gz as written; plain .jsonl read too
        files = list((self.root / PREFIX).glob("dt=*/*.jsonl*"))
        if files:
            source = (
                f"read_json('{pattern}', format = 'newline_delimited', hive_partitioning = true, "
                f"hive_types = {{'dt': 'VARCHAR'}}, columns = {{{columns}}}, timestampformat = '%Y-%m-%d %H:%M:%S')"
            )
        else:  # an empty log: the same columns, no rows
            names = ", ".join(f"CAST(NULL AS {_DUCKDB_TYPES[kind]}) AS {name}" for name, kind in COLUMNS.items())
            source = f"(SELECT {names}, CAST(NULL AS VARCHAR) AS dt WHERE false)"
        if days is None:
            self._db.execute(f"CREATE VIEW activity AS SELECT * FROM {source}")
        else:
            # The days a report reads, parsed once into DuckDB's own columns: its eighteen queries then scan memory,
            # not the compressed JSON again (Athena reads the files per query; what it scans is counted apart).
            first, last = (f"{day:%Y-%m-%d}" for day in days)
            self._db.execute(f"CREATE TABLE activity AS SELECT * FROM {source} WHERE dt BETWEEN '{first}' AND '{last}'")

    def run(self, name: str, sql: str) -> list[dict[str, Any]]:
        cursor = self._db.execute(sql)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self._db.close()
