"""What `memberflow export` covers: every table and bucket of template.yaml is either exported (an exporter names
it) or declared as holding no member data, with the reason; and retention is stated for each of them."""

from __future__ import annotations

import copy
import re
from pathlib import Path

from memberflow.runtime.personal_data import EXPORTERS, NO_MEMBER_DATA, plain
from memberflow_local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_yaml(ROOT / "template.yaml")
STORES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable", "AWS::Serverless::SimpleTable", "AWS::S3::Bucket")


def stores(template: dict) -> set[str]:
    return {name for name, resource in template["Resources"].items() if resource["Type"] in STORES}


def uncovered(template: dict) -> set[str]:
    covered = {logical_id for exporter in EXPORTERS for logical_id in exporter.covers}
    return stores(template) - covered - set(NO_MEMBER_DATA)


def test_every_table_and_bucket_is_exported_or_declared_without_member_data():
    assert stores(TEMPLATE), "the template has tables"
    assert uncovered(TEMPLATE) == set()


def test_a_new_table_nobody_exports_fails_the_coverage_check():
    template = copy.deepcopy(TEMPLATE)
    template["Resources"]["SurveyAnswersTable"] = {"Type": "AWS::DynamoDB::Table", "Properties": {}}
    template["Resources"]["AttachmentsBucket"] = {"Type": "AWS::S3::Bucket", "Properties": {}}
    assert uncovered(template) == {"SurveyAnswersTable", "AttachmentsBucket"}


def test_declarations_name_real_resources_and_give_reasons():
    names = {exporter.name for exporter in EXPORTERS}
    assert {"record", "identities", "ledger", "trace"} <= names and len(names) == len(EXPORTERS)
    for logical_id, reason in NO_MEMBER_DATA.items():
        assert logical_id in stores(TEMPLATE) and len(reason) > 40
    for exporter in EXPORTERS:
        assert set(exporter.covers) <= stores(TEMPLATE), exporter.name


def test_the_readme_states_each_stores_retention_and_the_template_enforces_expiry_where_it_says_so():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Retention") :]
    section = section[: section.index("\n## ")]
    rows = {re.findall(r"`(\w+)`", line)[0]: line for line in section.splitlines() if line.startswith("| `")}
    assert set(rows) >= stores(TEMPLATE)
    for logical_id in stores(TEMPLATE):
        properties = TEMPLATE["Resources"][logical_id]["Properties"]
        if "TTL" in rows[logical_id]:
            ttl = properties.get("TimeToLiveSpecification") or {}
            assert ttl.get("Enabled") is True and ttl.get("AttributeName") in rows[logical_id], logical_id


def test_dynamodb_values_become_plain_json():
    from decimal import Decimal

    assert plain({"n": Decimal("3"), "f": Decimal("1.5"), "s": {"b", "a"}}) == {"n": 3, "f": 1.5, "s": ["a", "b"]}
