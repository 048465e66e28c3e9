"""The template's side of erasing registrations: the member index keyed as the code queries it, keys only; the
onboarding function only hands the erasure on (sqs:SendMessage on the registrations queue, nothing on the table);
the event sync function queries the index and deletes, and no other function may delete a registration."""

from test_template import FUNCTIONS, RESOURCES, statements

from memberflow.adapters.registrations import MEMBER_INDEX
from memberflow.runtime.event_sync import ERASURE_QUEUE_VARIABLE

TABLE_ARN = {"Fn::GetAtt": ["RegistrationsTable", "Arn"]}
INDEX_ARN = {"Fn::Sub": f"${{RegistrationsTable.Arn}}/index/{MEMBER_INDEX}"}


def actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def resources(statement: dict) -> list:
    return statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]


def granted(function: str, resource: object) -> set[str]:
    """The actions a function's role allows on exactly this resource."""
    return {a for s in statements(FUNCTIONS[function]) if resource in resources(s) for a in actions(s)}


def mentions(value: object, name: str) -> bool:
    return name in repr(value)


def test_registrations_have_a_keys_only_index_by_member_id():
    table = RESOURCES["RegistrationsTable"]["Properties"]
    [index] = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == MEMBER_INDEX]
    assert index["KeySchema"] == [{"AttributeName": "member_id", "KeyType": "HASH"}]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert {"AttributeName": "member_id", "AttributeType": "S"} in table["AttributeDefinitions"]


def test_the_onboarding_function_hands_erasures_on_to_the_registrations_queue_and_never_touches_the_table():
    onboarding = FUNCTIONS["OnboardingFunction"]
    variables = onboarding["Properties"]["Environment"]["Variables"]
    assert variables[ERASURE_QUEUE_VARIABLE] == {"Ref": "RegistrationsQueue"}
    assert granted("OnboardingFunction", {"Fn::GetAtt": ["RegistrationsQueue", "Arn"]}) == {"sqs:SendMessage"}
    assert not [s for s in statements(onboarding) if mentions(s["Resource"], "RegistrationsTable")]


def test_the_event_sync_function_finds_a_members_registrations_by_the_index_and_deletes_them():
    assert granted("EventSyncFunction", INDEX_ARN) == {"dynamodb:Query"}
    assert "dynamodb:DeleteItem" in granted("EventSyncFunction", TABLE_ARN)
    assert "dynamodb:Scan" not in granted("EventSyncFunction", TABLE_ARN)


def test_no_other_function_may_delete_a_registration_or_read_the_member_index():
    for name in sorted(set(FUNCTIONS) - {"EventSyncFunction"}):
        assert "dynamodb:DeleteItem" not in granted(name, TABLE_ARN), name
        assert not granted(name, INDEX_ARN), name


def test_the_escalation_function_reads_the_suppression_list_and_nothing_else_of_the_members_table():
    variables = FUNCTIONS["EscalationFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["MEMBERS_TABLE_NAME"] == {"Ref": "MembersTable"}
    assert variables["SUPPRESSION_KEY_SECRET_ARN"] == {"Ref": "SuppressionKeySecret"}
    members = {"Fn::GetAtt": ["MembersTable", "Arn"]}
    assert granted("EscalationFunction", members) == {"dynamodb:GetItem"}
    [statement] = [s for s in statements(FUNCTIONS["EscalationFunction"]) if members in resources(s)]
    assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SUPPRESSED#*"]}}
    assert "secretsmanager:GetSecretValue" in granted("EscalationFunction", {"Ref": "SuppressionKeySecret"})
