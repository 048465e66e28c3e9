"""The rules the local stack's permission check applies to a call (memberflow_local/permissions.py), on statements
written here: the action and resource, and the conditions it evaluates."""

from __future__ import annotations

from memberflow_local.permissions import PermissionAudit, Statement, acting_as

IDENTITIES = "arn:aws:ses:us-east-1:123456789012:identity"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/idempotency"


def audit(*statements: Statement) -> PermissionAudit:
    return PermissionAudit(
        {"F": statements}, {"idempotency": TABLE}, {"idempotency": "id"}, "us-east-1", "123456789012"
    )


def email(checked: PermissionAudit, source: str) -> bool:
    with acting_as("F"):
        return checked.check("email", "SendEmail", {"Source": source, "Destination": {}, "Message": {}}) is None


def test_an_email_is_allowed_only_from_the_sender_the_condition_names():
    checked = audit(Statement(frozenset({"ses:SendEmail"}), (f"{IDENTITIES}/*",), from_addresses=("help@example.org",)))
    assert email(checked, "help@example.org")
    assert email(checked, "Support <help@example.org>")
    assert not email(checked, "other@example.org")
    assert [str(d) for d in checked.denied] == [f"F may not ses:SendEmail on {IDENTITIES}/other@example.org"]


def test_an_email_is_allowed_by_its_senders_domain_identity():
    checked = audit(Statement(frozenset({"ses:SendEmail"}), (f"{IDENTITIES}/example.org",)))
    assert email(checked, "reports@example.org")
    assert not email(checked, "reports@elsewhere.org")


def test_leading_keys_bind_every_partition_key_the_call_names():
    statement = Statement(frozenset({"dynamodb:PutItem"}), (TABLE,), leading_keys=("intake#*",))
    checked = audit(statement)
    with acting_as("F"):
        assert (
            checked.check("dynamodb", "PutItem", {"TableName": "idempotency", "Item": {"id": {"S": "intake#1"}}})
            is None
        )
        assert checked.check("dynamodb", "PutItem", {"TableName": "idempotency", "Item": {"id": {"S": "other#1"}}})
    # Outside a function's invocation nothing is checked.
    assert checked.check("dynamodb", "DeleteTable", {"TableName": "idempotency"}) is None
