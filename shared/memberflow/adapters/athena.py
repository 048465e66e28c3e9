"""Athena runs the health report's SQL (memberflow/health/sql) over the activity log's Glue table, in the stack's
workgroup (its result location and scan limit are enforced there)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from memberflow.adapters.aws import aws_failure, client
from memberflow.errors import AccountProblem, Transient

POLL_SECONDS = (0.2, 0.5, 1.0, 2.0)
"""Waits between status checks (the last one repeats)."""
DONE = {"SUCCEEDED", "FAILED", "CANCELLED"}


class AthenaEngine:
    def __init__(
        self,
        workgroup: str,
        database: str,
        *,
        athena: Any = None,
        timeout_seconds: float = 240.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._workgroup = workgroup
        self._database = database
        self._athena = athena
        self._timeout = timeout_seconds
        self._sleep = sleep
        self.scanned_bytes = 0
        """What the queries run so far scanned (Athena's own count, what it bills)."""

    @property
    def athena(self) -> Any:
        if self._athena is None:
            self._athena = client("athena")
        return self._athena

    def run(self, name: str, sql: str) -> list[dict[str, Any]]:
        try:
            execution_id = self.athena.start_query_execution(
                QueryString=sql,
                QueryExecutionContext={"Database": self._database},
                WorkGroup=self._workgroup,
            )["QueryExecutionId"]
            state = self._wait(name, execution_id)
            if state["State"] != "SUCCEEDED":
                reason = state.get("StateChangeReason", state["State"])
                raise AccountProblem(f"Athena query {name} {state['State'].lower()}: {reason}", 400)
            return self._rows(execution_id)
        except (AccountProblem, Transient):
            raise
        except Exception as error:
            raise aws_failure(error, "athena") from error

    def _wait(self, name: str, execution_id: str) -> dict[str, Any]:
        waited, attempt = 0.0, 0
        while True:
            execution = self.athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
            state = execution["Status"]
            if state["State"] in DONE:
                self.scanned_bytes += int(execution.get("Statistics", {}).get("DataScannedInBytes", 0))
                return dict(state)
            if waited >= self._timeout:
                raise Transient(f"Athena query {name} still running after {waited:.0f} s")
            pause = POLL_SECONDS[min(attempt, len(POLL_SECONDS) - 1)]
            self._sleep(pause)
            waited += pause
            attempt += 1

    def _rows(self, execution_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        columns: list[tuple[str, str]] = []
        token: str | None = None
        first_page = True
        while True:
            request: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": 1000}
            if token:
                request["NextToken"] = token
            page = self.athena.get_query_results(**request)
            result = page["ResultSet"]
            if not columns:
                columns = [(c["Name"], c["Type"]) for c in result["ResultSetMetadata"]["ColumnInfo"]]
            data = result.get("Rows", [])
            if first_page and data:
                data = data[1:]  # the header row
            first_page = False
            for row in data:
                values = [cell.get("VarCharValue") for cell in row["Data"]]
                rows.append({name: convert(kind, value) for (name, kind), value in zip(columns, values, strict=True)})
            token = page.get("NextToken")
            if not token:
                return rows


def convert(kind: str, value: str | None) -> Any:
    """Athena returns every value as text: back to the type its column says."""
    if value is None:
        return None
    kind = kind.lower()
    if kind in ("tinyint", "smallint", "integer", "int", "bigint"):
        return int(value)
    if kind in ("double", "float", "real") or kind.startswith("decimal"):
        return float(value)
    if kind == "boolean":
        return value.lower() == "true"
    if kind == "date":
        return date.fromisoformat(value)
    if kind.startswith("timestamp"):
        return datetime.fromisoformat(value.replace(" UTC", "")[:26])
    return value
