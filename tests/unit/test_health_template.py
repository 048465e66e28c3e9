"""What template.yaml says about the activity log and the health report agrees with the code: the Glue table's
columns are the record schema's, partitions are projected from the S3 layout the adapter writes, the functions that
append may only add objects under activity/, and the report function reads no more than it needs."""

from __future__ import annotations

from pathlib import Path

from memberflow.activity import COLUMNS
from memberflow.adapters.activity_log import PREFIX, object_key
from memberflow_local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = load_yaml(ROOT / "template.yaml")["Resources"]


def statements(logical_id: str) -> dict[str, dict]:
    policies = RESOURCES[logical_id]["Properties"]["Policies"]
    return {statement["Sid"]: statement for policy in policies for statement in policy["Statement"]}


def test_the_glue_table_has_the_record_schemas_columns_and_projects_the_adapters_partitions():
    table = RESOURCES["ActivityTable"]["Properties"]["TableInput"]
    columns = {column["Name"]: column["Type"] for column in table["StorageDescriptor"]["Columns"]}
    assert columns == COLUMNS
    assert [key["Name"] for key in table["PartitionKeys"]] == ["dt"]
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true" and parameters["projection.dt.type"] == "date"
    assert parameters["projection.dt.format"] == "yyyy-MM-dd"
    template = parameters["storage.location.template"]["Fn::Sub"]
    assert template == "s3://${ActivityBucket}/" + PREFIX + "/dt=${!dt}/"
    from datetime import UTC, datetime

    assert object_key("2026-11-16", datetime(2026, 11, 16, tzinfo=UTC)).startswith(f"{PREFIX}/dt=2026-11-16/")
    serde = table["StorageDescriptor"]["SerdeInfo"]
    assert serde["SerializationLibrary"] == "org.apache.hive.hcatalog.data.JsonSerDe"
    assert serde["Parameters"]["timestamp.formats"] == "yyyy-MM-dd HH:mm:ss"


def test_the_log_expires_and_writers_may_only_add_to_it():
    rules = {rule["Id"]: rule for rule in RESOURCES["ActivityBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireActivity"]["Prefix"] == f"{PREFIX}/"
    assert rules["ExpireActivity"]["ExpirationInDays"] == {"Ref": "ActivityRetentionDays"}
    for function in ("OnboardingFunction", "OnboardingDripFunction", "MemberImportFunction"):
        append = statements(function)["AppendActivity"]
        assert append["Action"] == "s3:PutObject"
        assert append["Resource"] == {"Fn::Sub": "${ActivityBucket.Arn}/activity/*"}
        environment = RESOURCES[function]["Properties"]["Environment"]["Variables"]
        assert environment["ACTIVITY_BUCKET_NAME"] == {"Ref": "ActivityBucket"}


def test_the_report_function_reads_the_log_and_writes_only_reports_and_query_results():
    granted = statements("HealthReportFunction")
    writes = [
        s
        for s in granted.values()
        if "s3:PutObject" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    written = [r["Fn::Sub"] for s in writes for r in s["Resource"]]
    assert sorted(written) == ["${ActivityBucket.Arn}/athena-results/*", "${ActivityBucket.Arn}/reports/*"]
    schedule = RESOURCES["HealthReportFunction"]["Properties"]["Events"]["HealthReportSchedule"]["Properties"]
    assert schedule["ScheduleExpression"] == {"Ref": "HealthReportSchedule"}
    workgroup = RESOURCES["HealthWorkgroup"]["Properties"]["WorkGroupConfiguration"]
    assert workgroup["EnforceWorkGroupConfiguration"] is True and workgroup["BytesScannedCutoffPerQuery"] > 0
