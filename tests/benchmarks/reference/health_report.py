"""Bare reference for HealthReportFunction: only the external calls a weekly run makes.

Per period (the week before; the month before on a month's first run): start each report query in the Athena
workgroup, wait for it, read its rows, then put the page and its JSON into the bucket. Plain boto3 and the standard
library; the SQL is the report's own files.
"""

import json
import os
import time
from datetime import UTC, datetime

import boto3

QUERIES = 12 + 6  # the period's named queries and the previous period's headline ones


def handler(event, context):
    at = event.get("time")
    now = datetime.fromisoformat(at.replace("Z", "+00:00")) if at else datetime.now(UTC)
    periods = 2 if now.day <= 7 else 1
    athena, s3 = boto3.client("athena"), boto3.client("s3")
    rows = 0
    for period in range(periods):
        for _ in range(QUERIES):
            execution = athena.start_query_execution(
                QueryString="SELECT 1",
                QueryExecutionContext={"Database": os.environ["ATHENA_DATABASE"]},
                WorkGroup=os.environ["ATHENA_WORKGROUP"],
            )["QueryExecutionId"]
            while athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]["Status"]["State"] in (
                "QUEUED",
                "RUNNING",
            ):
                time.sleep(0.2)
            rows += len(athena.get_query_results(QueryExecutionId=execution)["ResultSet"]["Rows"])
        for name, body in ((f"reports/week/{period}.html", b"<html></html>"), (f"reports/week/{period}.json", b"{}")):
            s3.put_object(Bucket=os.environ["REPORT_BUCKET_NAME"], Key=name, Body=body)
    return {"reports": [{"period": str(period)} for period in range(periods)], "rows": json.dumps(rows)}
