"""The SAM template's promises: least privilege, one role per function, a safe SQS wiring, the runtime."""

from pathlib import Path

import pytest

from memberflow_local.template import load_yaml

TEMPLATE = load_yaml(Path(__file__).resolve().parents[2] / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}


def statements(function: dict) -> list[dict]:
    found = []
    for policy in function["Properties"].get("Policies", []):
        # SAM policy templates expand to wildcard actions (SQSSendMessagePolicy grants sqs:SendMessage*).
        assert isinstance(policy, dict) and set(policy) == {"Statement"}, f"use explicit statements, not {policy}"
        found += policy["Statement"]
    return found


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_policies_name_every_action(name):
    for statement in statements(FUNCTIONS[name]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), (name, actions)
        assert statement["Resource"] != "*", (name, statement)
    assert "Role" not in FUNCTIONS[name]["Properties"], "each function gets its own generated role"


def test_runtime_is_python_312_or_newer_on_arm64():
    globals_ = TEMPLATE["Globals"]["Function"]
    assert globals_["Runtime"] in {"python3.12", "python3.13"}
    assert globals_["Architectures"] == ["arm64"]


def test_onboarding_queue_wiring_follows_lambda_guidance():
    queue = RESOURCES["MemberEventsQueue"]["Properties"]
    function = FUNCTIONS["OnboardingFunction"]["Properties"]
    [source] = [resolve_defaults(e["Properties"]) for e in function["Events"].values() if e["Type"] == "SQS"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert "maxReceiveCount" in queue["RedrivePolicy"]
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 2 <= source["ScalingConfig"]["MaximumConcurrency"] < 10  # Mailchimp allows 10 connections


def test_secrets_live_in_secrets_manager_not_in_function_environment():
    for function in FUNCTIONS.values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert not any("KEY" in name and "ARN" not in name for name in variables), variables


def test_operations_dashboard_body_is_valid_json_once_substituted():
    import json
    import re

    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "placeholder", body))["widgets"]
    assert {"Member events queue and dead-letter queue"} <= {w["properties"]["title"] for w in widgets}


def test_intake_reads_and_writes_only_its_own_delivery_records_in_the_idempotency_table():
    from memberflow.adapters.delivery_log import ID_PREFIX

    intake = FUNCTIONS["WebhookIntakeFunction"]["Properties"]
    on_table = [
        s
        for s in statements(FUNCTIONS["WebhookIntakeFunction"])
        if s["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    ]
    assert [sorted(s["Action"]) for s in on_table] == [["dynamodb:GetItem", "dynamodb:PutItem"]]
    assert on_table[0]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [ID_PREFIX + "*"]}}
    assert intake["Environment"]["Variables"]["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "IdempotencyTable"}


# ------------------------------------------------------------------------------ two stacks in one account
# Resource types whose name is unique in an account and region, and the property that names them. Every type the
# deployed template contains is either here or in UNNAMED, so a new type needs a decision.
NAME_PROPERTY = {
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::Events::Rule": "Name",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Athena::WorkGroup": "Name",
    "AWS::Glue::Database": "DatabaseInput",  # its Name
}
UNNAMED = {
    # No account-wide name: identified by generated ids, or by names only unique inside their parent.
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
    "AWS::SNS::Subscription",
    "AWS::S3::BucketPolicy",
    "AWS::Glue::Table",  # named inside its database
}


def deployed_resources(template: dict | None = None) -> dict:
    """The template as CloudFormation receives it: after the SAM transform, which fills in names of its own."""
    import copy

    from cfnlint.template.transforms._sam import Transform

    transform = Transform("template.yaml", copy.deepcopy(template or TEMPLATE), "us-east-1")
    assert transform.transform_template() == []
    return transform.template()["Resources"]


def physical_names(resources: dict, stack_name: str) -> dict[str, str]:
    """Logical id -> the name CloudFormation creates the resource with in a stack called `stack_name` (resources
    without an explicit name get one CloudFormation generates from the stack name: unique, so left out)."""
    from memberflow_local.template import Resolver

    resolver = Resolver(TEMPLATE, {}, stack_name=stack_name)
    names = {}
    for logical_id, resource in resources.items():
        assert resource["Type"] in NAME_PROPERTY or resource["Type"] in UNNAMED, resource["Type"]
        name = resource.get("Properties", {}).get(NAME_PROPERTY.get(resource["Type"], ""))
        if name is not None:
            names[logical_id] = resolver.resolve(name)
    return names


def colliding_names(template: dict | None = None) -> dict[str, str]:
    resources = deployed_resources(template)
    first, second = physical_names(resources, "memberflow"), physical_names(resources, "memberflow-staging")
    return {logical_id: name for logical_id, name in first.items() if second[logical_id] == name}


def test_two_stacks_in_one_account_name_no_resource_alike():
    resources = deployed_resources()
    named = physical_names(resources, "memberflow")
    # What is named explicitly: the log groups, the dashboard and the layer. The schedules' names are generated.
    assert {"WebhookIntakeLogGroup", "WebhookApiAccessLogGroup", "OperationsDashboard"} <= set(named)
    assert any(resources[r]["Type"] == "AWS::Lambda::LayerVersion" for r in named)
    assert colliding_names() == {}


def test_the_name_check_catches_a_schedule_or_layer_named_alike_in_every_stack():
    import copy

    template = copy.deepcopy(TEMPLATE)
    schedule = template["Resources"]["OnboardingDripFunction"]["Properties"]["Events"]["DripSchedule"]
    del schedule["Properties"]["OmitName"]  # SAM then names it <Function><Event> in every stack
    del template["Resources"]["SharedLayer"]["Properties"]["LayerName"]  # SAM then names it SharedLayer
    assert set(colliding_names(template).values()) == {"OnboardingDripFunctionDripSchedule", "SharedLayer"}


# ------------------------------------------------------------------------------ the layer and the runtime
ROOT = Path(__file__).resolve().parents[2]


def layer_build_mismatches(template: dict, layer_makefile: str, makefile: str) -> list[str]:
    """Where the layer's build (shared/Makefile: the interpreter, the wheels' version and platform; the lock in the
    Makefile; CompatibleRuntimes and architectures) differs from what the functions run on."""
    import re

    globals_ = template["Globals"]["Function"]
    functions = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    layer = template["Resources"]["SharedLayer"]
    problems = []
    runtimes = {f.get("Runtime", globals_["Runtime"]) for f in functions}
    architectures = {tuple(f.get("Architectures", globals_["Architectures"])) for f in functions}
    if len(runtimes) != 1 or len(architectures) != 1:
        return [f"the functions disagree: {runtimes} {architectures}"]
    [runtime], [(architecture,)] = runtimes, architectures
    version = runtime.removeprefix("python")
    platform = {"arm64": "aarch64", "x86_64": "x86_64"}[architecture]
    if layer["Properties"]["CompatibleRuntimes"] != [runtime]:
        problems.append(f"CompatibleRuntimes {layer['Properties']['CompatibleRuntimes']} != [{runtime}]")
    if layer["Properties"]["CompatibleArchitectures"] != [architecture]:
        problems.append(f"CompatibleArchitectures {layer['Properties']['CompatibleArchitectures']} != [{architecture}]")
    if layer["Metadata"] != {"BuildMethod": "makefile", "BuildArchitecture": architecture}:
        problems.append(f"layer Metadata {layer['Metadata']}")
    if not re.search(rf"^PYTHON \?= python{re.escape(version)}$", layer_makefile, re.M):
        problems.append(f"shared/Makefile does not compile with python{version}")
    if f"--python-version {version} " not in layer_makefile or f"manylinux2014_{platform} " not in layer_makefile:
        problems.append(f"shared/Makefile does not install wheels for {version} on {platform}")
    if f"--python-version {version} --python-platform {platform}-manylinux2014" not in makefile:
        problems.append(f"the lock (make lock) is not resolved for {version} on {platform}")
    return problems


def test_the_layer_is_built_for_exactly_the_functions_runtime_and_architecture():
    layer_makefile = (ROOT / "shared" / "Makefile").read_text()
    assert layer_build_mismatches(TEMPLATE, layer_makefile, (ROOT / "Makefile").read_text()) == []


@pytest.mark.parametrize("runtime", ["python3.13", "python3.11"])
def test_the_layer_check_fails_when_the_functions_move_to_another_python(runtime):
    import copy

    template = copy.deepcopy(TEMPLATE)
    template["Globals"]["Function"]["Runtime"] = runtime
    layer_makefile = (ROOT / "shared" / "Makefile").read_text()
    assert layer_build_mismatches(template, layer_makefile, (ROOT / "Makefile").read_text()) != []


# ------------------------------------------------------------------------------ onboarding's time budget
def onboarding_worst_case_ms(environment: dict) -> int:
    from memberflow.adapters.aws import WORST_CASE_CALL_SECONDS
    from memberflow.adapters.mailchimp import MailchimpList
    from memberflow.config import MailchimpSettings
    from memberflow.onboarding.consumer import worst_case_ms_per_event

    timeout = MailchimpSettings.model_fields["mailchimp_timeout_seconds"].default
    timeout = float(environment.get("MAILCHIMP_TIMEOUT_SECONDS", timeout))
    return worst_case_ms_per_event(
        MailchimpList(lambda fresh: "key-us1", timeout=timeout).worst_case_call_seconds, WORST_CASE_CALL_SECONDS
    )


def test_onboarding_timeout_fits_two_worst_case_events_derived_from_the_client_timeouts():
    function = FUNCTIONS["OnboardingFunction"]["Properties"]
    environment = {
        **TEMPLATE["Globals"]["Function"]["Environment"]["Variables"],
        **function["Environment"]["Variables"],
    }
    worst_case = onboarding_worst_case_ms(environment)
    # Six Mailchimp calls of two 5 s attempts with a 2 s pause, and one slow AWS call of two 4 s attempts.
    assert worst_case == 6 * (2 * 5 + 2) * 1000 + (2 * 4 + 2) * 1000
    # The first message of every batch always fits, and so does a second one however slow Mailchimp is.
    assert function["Timeout"] * 1000 >= 2 * worst_case
    assert onboarding_worst_case_ms({**environment, "MAILCHIMP_TIMEOUT_SECONDS": "10"}) > worst_case


def test_the_deployed_onboarding_function_uses_the_derived_budget(monkeypatch):
    from memberflow.runtime.container import container, reset

    monkeypatch.setenv("MAILCHIMP_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:mailchimp")
    monkeypatch.setenv("MAILCHIMP_LIST_ID", "list123")
    monkeypatch.setenv("MAILCHIMP_TIMEOUT_SECONDS", "7")
    reset()
    try:
        assert container().onboarding_worst_case_ms == onboarding_worst_case_ms({"MAILCHIMP_TIMEOUT_SECONDS": "7"})
    finally:
        reset()


# ------------------------------------------------------------------------------ alarms
ALARMS = {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def alarm_metrics(alarm: dict) -> list[tuple[str, str, str]]:
    """(namespace, metric, dimension value as written) of every metric an alarm watches."""
    metrics = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
    if "MetricName" in alarm:
        metrics.append(alarm)
    return [(m["Namespace"], m["MetricName"], str(m["Dimensions"][0]["Value"])) for m in metrics]


def watched(namespace: str, metric: str) -> set[str]:
    return {
        value
        for alarm in ALARMS.values()
        for ns, name, value in alarm_metrics(alarm)
        if (ns, name) == (namespace, metric)
    }


def test_every_alarm_notifies_the_alarm_topic():
    assert RESOURCES["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    for name, alarm in ALARMS.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm.get("OKActions", [{"Ref": "AlarmTopic"}]) == [{"Ref": "AlarmTopic"}], name


def test_alarms_watch_both_dead_letter_queues_errors_throttles_and_the_age_of_waiting_events():
    def queue(logical_id):
        return str({"Fn::GetAtt": [logical_id, "QueueName"]})

    dead_letter_queues = {
        "MemberEventsDeadLetterQueue",
        "MemberImportDeadLetterQueue",
        "DripScheduleDeadLetterQueue",
        "RedriveScheduleDeadLetterQueue",
        "HealthReportScheduleDeadLetterQueue",
    }
    assert {queue(q) for q in dead_letter_queues} <= watched("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert queue("MemberEventsQueue") in watched("AWS/SQS", "ApproximateAgeOfOldestMessage")
    every_function = {str({"Ref": name}) for name in FUNCTIONS}
    assert watched("AWS/Lambda", "Errors") == every_function
    assert watched("AWS/Lambda", "Throttles") == every_function
    for alarm in ALARMS.values():  # math alarms add up every function they watch
        if "Metrics" in alarm:
            [shown] = [m for m in alarm["Metrics"] if m.get("ReturnData", True)]
            assert all(f"FILL({m['Id']}, 0)" in shown["Expression"] for m in alarm["Metrics"] if "MetricStat" in m)


@pytest.mark.parametrize(("email", "subscribed"), [("", False), ("oncall@example.org", True)])
def test_alarm_email_is_subscribed_only_when_given(email, subscribed):
    from memberflow_local.template import Resolver

    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    resolver = Resolver(TEMPLATE, {"AlarmEmail": email})
    assert resolver.condition(subscription["Condition"]) is subscribed
    import re

    assert re.fullmatch(TEMPLATE["Parameters"]["AlarmEmail"]["AllowedPattern"], email)


# ------------------------------------------------------------------------------ scheduled runs
@pytest.mark.parametrize(
    ("function", "failures"),
    [
        ("OnboardingDripFunction", "DripScheduleDeadLetterQueue"),
        ("DeadLetterRedriveFunction", "RedriveScheduleDeadLetterQueue"),
    ],
)
def test_scheduled_runs_never_overlap_and_keep_their_failures(function, failures):
    properties = FUNCTIONS[function]["Properties"]
    assert properties["ReservedConcurrentExecutions"] == 1
    on_failure = properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": [failures, "Arn"]}}
    [schedule] = [e["Properties"] for e in properties["Events"].values() if e["Type"] == "ScheduleV2"]
    assert schedule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [failures, "Arn"]}}
    # SAM grants the function sqs:SendMessage on exactly that queue, nothing wider.
    role = deployed_resources()[f"{function}Role"]["Properties"]
    granted = [
        s
        for p in role["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if s["Resource"] == {"Fn::GetAtt": [failures, "Arn"]}
    ]
    assert [s["Action"] for s in granted] == ["sqs:SendMessage"]


# ------------------------------------------------------------------------------ access logs
def test_the_http_api_writes_json_access_logs_without_bodies_to_a_group_that_expires():
    import json
    import re

    settings = RESOURCES["WebhookApi"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["WebhookApiAccessLogGroup", "Arn"]}
    assert RESOURCES["WebhookApiAccessLogGroup"]["Properties"]["RetentionInDays"] > 0
    entry = json.loads(re.sub(r"\$context\.[A-Za-z.]+", "x", settings["Format"]))
    assert {"requestId", "status", "routeKey", "integrationError", "integrationStatus"} <= set(entry)
    variables = set(re.findall(r"\$context\.[A-Za-z.]+", settings["Format"]))
    assert not {v for v in variables if re.search(r"body|identity|sourceIp|userAgent|authorizer", v, re.I)}


# ------------------------------------------------------------------------------ secrets and tables
def test_no_deploy_can_overwrite_a_live_secret():
    # CloudFormation writes a secret's value only from these properties: a template without them creates the
    # secrets empty, and no later change to the template can put a value over the one an operator stored.
    secrets = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::SecretsManager::Secret"}
    # The suppression key is memberflow's own: generated once at creation, never set by an operator, and kept.
    # So is the activity log's hashing key.
    for key in ("SuppressionKeySecret", "ActivityKeySecret"):
        generated = secrets.pop(key)
        assert not {"SecretString", "SecretBinary"} & set(generated["Properties"])
        assert generated["DeletionPolicy"] == generated["UpdateReplacePolicy"] == "Retain"
    assert set(secrets) == {
        "MailchimpApiSecret",
        "WebhookSigningSecrets",
        "ZendeskApiSecret",
        "SlackBotSecret",
        "DiscourseApiSecret",
        "EventbriteApiSecret",
    }
    for name, secret in secrets.items():
        assert not {"SecretString", "GenerateSecretString", "SecretBinary"} & set(secret["Properties"]), name
    for resource in deployed_resources().values():  # nor anything else that could write one
        assert resource["Type"] not in {
            "AWS::SecretsManager::RotationSchedule",
            "AWS::SecretsManager::SecretTargetAttachment",
        }


def test_the_audit_trail_survives_the_stack_and_the_members_table_refuses_deletion():
    trace = RESOURCES["TraceTable"]
    assert trace["DeletionPolicy"] == trace["UpdateReplacePolicy"] == "Retain"
    assert trace["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    members = RESOURCES["MembersTable"]
    assert members["Properties"]["DeletionProtectionEnabled"] is True
    assert members["DeletionPolicy"] == members["UpdateReplacePolicy"] == "Retain"


# ------------------------------------------------------------------------------ tracing
def test_tracing_is_either_off_or_used_by_every_handler():
    root = Path(__file__).resolve().parents[2]
    handlers = {path.parent.name: path.read_text() for path in (root / "functions").glob("*/app.py")}
    tracing = {
        name: f["Properties"].get("Tracing", TEMPLATE["Globals"]["Function"].get("Tracing", "PassThrough"))
        for name, f in FUNCTIONS.items()
    }
    if set(tracing.values()) == {"PassThrough"}:
        # Off (the Tracer's cold start is too dear, see Globals): no handler pays for a Tracer that sends nothing.
        assert not [name for name, code in handlers.items() if "Tracer" in code]
    else:
        assert set(tracing.values()) == {"Active"}
        assert all("@tracer.capture_lambda_handler" in code for code in handlers.values())


def test_every_parameter_is_used_by_the_template():
    import json
    import re

    # A parameter nothing references would be a setting that sets nothing.
    rest = json.dumps({section: body for section, body in TEMPLATE.items() if section != "Parameters"})
    used = set(re.findall(r'"Ref": "(\w+)"', rest)) | set(re.findall(r"\$\{(\w+)[}.]", rest))
    assert set(TEMPLATE["Parameters"]) - used == set()


def test_the_readme_lists_every_parameter_of_the_deploy():
    import re

    readme = (ROOT / "README.md").read_text()
    deploy = readme[readme.index("## Deploying to AWS") : readme.index("### Pointing the platforms at it")]
    table = [line for line in deploy.splitlines() if line.startswith("| `")]
    listed = {name for line in table for name in re.findall(r"`(\w+)`", line.split("|")[1])}
    assert listed == set(TEMPLATE["Parameters"])
    assert "has no authentication. Is this okay?" in deploy and "answer **y**" in deploy


def resolve_defaults(value, parameters: dict | None = None):
    """A template value with every `!Ref Parameter` replaced by the parameter's default."""
    parameters = TEMPLATE["Parameters"] if parameters is None else parameters
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]].get("Default")
        return {key: resolve_defaults(item, parameters) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_defaults(item, parameters) for item in value]
    return value


MAILCHIMP_CONNECTIONS_PER_ACCOUNT = 10
"""Mailchimp's limit of simultaneous connections per account, shared by every key and integration: the budget the
functions that call Mailchimp share (a fact about Mailchimp, so no deploy parameter: nothing could read one)."""


def mailchimp_connections(template: dict) -> dict[str, int]:
    """Simultaneous Mailchimp connections each function that calls Mailchimp may hold (one per concurrent
    invocation: calls are sequential): the lower of its SQS sources' MaximumConcurrency and its reserved concurrency."""
    connections = {}
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        if "MAILCHIMP_SECRET_ARN" not in properties.get("Environment", {}).get("Variables", {}):
            continue
        sources = [e["Properties"] for e in properties.get("Events", {}).values() if e["Type"] == "SQS"]
        reserved = properties.get("ReservedConcurrentExecutions")
        limits = [int(resolve_defaults(reserved, template["Parameters"]))] if reserved is not None else []
        if sources:
            # The pollers' MaximumConcurrency, unless the function's reserved concurrency holds it lower.
            limits.append(
                sum(
                    int(resolve_defaults(s, template["Parameters"])["ScalingConfig"]["MaximumConcurrency"])
                    for s in sources
                )
            )
        assert limits, f"{name} calls Mailchimp without a concurrency limit"
        connections[name] = min(limits)
    return connections


def test_functions_calling_mailchimp_stay_within_the_connection_budget():
    budget = MAILCHIMP_CONNECTIONS_PER_ACCOUNT
    connections = mailchimp_connections(TEMPLATE)
    assert {"OnboardingFunction", "OnboardingDripFunction", "DeadLetterRedriveFunction", "MemberImportFunction"} <= set(
        connections
    )
    assert sum(connections.values()) <= budget == 10


def test_the_budget_check_fails_when_a_function_takes_more_than_its_share():
    import copy

    greedy = copy.deepcopy(TEMPLATE)
    greedy["Parameters"]["OnboardingMaxConcurrency"]["Default"] = 5
    budget = MAILCHIMP_CONNECTIONS_PER_ACCOUNT
    assert sum(mailchimp_connections(greedy).values()) > budget
    unbounded = copy.deepcopy(TEMPLATE)
    del unbounded["Resources"]["OnboardingDripFunction"]["Properties"]["ReservedConcurrentExecutions"]
    with pytest.raises(AssertionError, match="without a concurrency limit"):
        mailchimp_connections(unbounded)


# ------------------------------------------------------------------------------ parameters at their bounds
def resolve_bound(value, bound: str, parameters: dict | None = None):
    """A template value with every `!Ref Parameter` replaced by the parameter's `bound` ("Default", "MinValue" or
    "MaxValue"); a parameter without that bound is unbounded there (-inf or inf)."""
    import math

    parameters = TEMPLATE["Parameters"] if parameters is None else parameters
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            unbounded = {"MinValue": -math.inf, "MaxValue": math.inf}.get(bound)
            return parameters[value["Ref"]].get(bound, unbounded)
        return {key: resolve_bound(item, bound, parameters) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_bound(item, bound, parameters) for item in value]
    return value


def sqs_sources(function: dict) -> dict[str, dict]:
    return {name: e["Properties"] for name, e in function["Properties"].get("Events", {}).items() if e["Type"] == "SQS"}


# ------------------------------------------------------------------------------ escalation's time budget
ESCALATION_MARGIN_SECONDS = 20
"""Time a fresh invocation may spend before its first escalation's check (the first one of a container builds the
worker: settings, rules, the idempotency layer), on top of the worst case the check asks for."""


def escalation_worst_case_ms(monkeypatch, budget_seconds) -> int:
    """runtime.escalation.worst_case_ms_per_message() in EscalationFunction's environment (the template's defaults)
    with ZendeskRateLimitBudgetSeconds = `budget_seconds`."""
    from memberflow.runtime import escalation
    from memberflow.runtime.container import reset

    function = FUNCTIONS["EscalationFunction"]["Properties"]
    environment = {
        **TEMPLATE["Globals"]["Function"]["Environment"]["Variables"],
        **function["Environment"]["Variables"],
    }
    for name, value in resolve_defaults(environment).items():
        monkeypatch.setenv(name, str(value) if isinstance(value, str | int | float) else f"local-{name.lower()}")
    assert environment["ZENDESK_RATELIMIT_BUDGET_SECONDS"] == {"Ref": "ZendeskRateLimitBudgetSeconds"}
    monkeypatch.setenv("ZENDESK_RATELIMIT_BUDGET_SECONDS", str(budget_seconds))
    reset()  # a new container: settings and the Zendesk desk built from this environment
    try:
        return escalation.worst_case_ms_per_message()
    finally:
        reset()


def test_an_escalation_starts_even_at_the_largest_rate_limit_budget_the_template_allows(monkeypatch):
    # An escalation is only started with its worst case left (sqs_consumer: remaining time > worst case). A worst
    # case beyond the function's timeout would hand every escalation back untried until it is parked.
    from memberflow.config import EscalationSettings

    parameter = TEMPLATE["Parameters"]["ZendeskRateLimitBudgetSeconds"]
    largest = int(parameter["MaxValue"])
    field = EscalationSettings.model_fields["zendesk_ratelimit_budget_seconds"]
    assert [m.le for m in field.metadata if getattr(m, "le", None) is not None] == [largest]  # the same bound

    timeout_ms = FUNCTIONS["EscalationFunction"]["Properties"]["Timeout"] * 1000
    worst_case = escalation_worst_case_ms(monkeypatch, largest)
    assert worst_case + ESCALATION_MARGIN_SECONDS * 1000 <= timeout_ms, (largest, worst_case, timeout_ms)
    # The budget is the one the function's desk uses: the default gives the 178 s the template's comment names.
    assert escalation_worst_case_ms(monkeypatch, parameter["Default"]) == 178_000 < worst_case


# ------------------------------------------------------------------------------ concurrency of SQS consumers
def reserved_below_maximum_concurrency(template: dict) -> list[str]:
    """Functions whose reserved concurrency is below what their SQS event sources may run at once. An event source
    mapping does not heed reserved concurrency: the batches it takes beyond it are throttled and come back only after
    the visibility timeout, each receive counted. Checked with every parameter at its default and at its maximum."""
    problems = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        reserved = resource["Properties"].get("ReservedConcurrentExecutions")
        limits = [
            s["ScalingConfig"]["MaximumConcurrency"] for s in sqs_sources(resource).values() if "ScalingConfig" in s
        ]
        if reserved is None or not limits:
            continue
        for bound in ("Default", "MaxValue"):
            held = float(resolve_bound(reserved, bound, template["Parameters"]))
            taken = sum(float(resolve_bound(limit, bound, template["Parameters"])) for limit in limits)
            if held < taken:
                problems.append(f"{name}: reserved concurrency {held:g} < MaximumConcurrency {taken:g} ({bound})")
    return problems


def test_no_sqs_consumer_reserves_less_concurrency_than_its_pollers_take():
    consumers = {name for name, f in FUNCTIONS.items() if sqs_sources(f)}
    assert {"EventSyncFunction", "MemberImportFunction"} <= consumers
    assert reserved_below_maximum_concurrency(TEMPLATE) == []


def test_the_concurrency_check_fails_on_a_reservation_below_the_maximum_or_below_the_parameters_largest_value():
    import copy

    template = copy.deepcopy(TEMPLATE)
    template["Resources"]["EventSyncFunction"]["Properties"]["ReservedConcurrentExecutions"] = 1
    assert reserved_below_maximum_concurrency(template) == [
        "EventSyncFunction: reserved concurrency 1 < MaximumConcurrency 2 (Default)",
        "EventSyncFunction: reserved concurrency 1 < MaximumConcurrency 2 (MaxValue)",
    ]
    template = copy.deepcopy(TEMPLATE)
    template["Resources"]["MemberImportFunction"]["Properties"]["ReservedConcurrentExecutions"] = 2
    largest = TEMPLATE["Parameters"]["ImportMaxConcurrency"]["MaxValue"]
    assert reserved_below_maximum_concurrency(template) == [
        f"MemberImportFunction: reserved concurrency 2 < MaximumConcurrency {largest} (MaxValue)"
    ]


# ------------------------------------------------------------------------------ batches above ten
def batches_without_a_window(template: dict) -> list[str]:
    """SQS event sources that may take more than 10 messages a batch (BatchSize, or its parameter's MaxValue) while
    their batching window may be 0: Lambda refuses a BatchSize above 10 without MaximumBatchingWindowInSeconds >= 1."""
    problems = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event, source in sqs_sources(resource).items():
            largest = float(resolve_bound(source.get("BatchSize", 10), "MaxValue", template["Parameters"]))
            window = source.get("MaximumBatchingWindowInSeconds", 0)
            smallest = float(resolve_bound(window, "MinValue", template["Parameters"]))
            if largest > 10 and smallest < 1:
                problems.append(f"{name}.{event}: batches of up to {largest:g} with a window of {smallest:g} s")
    return problems


def test_every_source_taking_more_than_ten_messages_a_batch_has_a_batching_window_of_a_second_at_least():
    assert batches_without_a_window(TEMPLATE) == []
    import copy

    template = copy.deepcopy(TEMPLATE)
    template["Parameters"]["OnboardingBatchingWindowSeconds"]["MinValue"] = 0
    del template["Resources"]["EscalationFunction"]["Properties"]["Events"]["Escalations"]["Properties"][
        "MaximumBatchingWindowInSeconds"
    ]
    assert batches_without_a_window(template) == [
        "OnboardingFunction.MemberEvents: batches of up to 1000 with a window of 0 s",
        "EscalationFunction.Escalations: batches of up to 100 with a window of 0 s",
    ]


# ------------------------------------------------------------------------------ the idempotency table, per consumer
def consumer_names() -> dict[str, str]:
    """SQS consumer function -> the consumer name its handler gives SqsConsumer (`CONSUMER`, read from the module
    functions/<CodeUri>/app.py imports it from)."""
    import ast
    import importlib

    names = {}
    for name, function in FUNCTIONS.items():
        if not sqs_sources(function):
            continue
        tree = ast.parse((ROOT / function["Properties"]["CodeUri"] / "app.py").read_text())
        [module] = [
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and any(alias.name == "CONSUMER" for alias in node.names)
        ]
        names[name] = importlib.import_module(module).CONSUMER
    return names


def idempotency_table_keys(monkeypatch, consumer: str) -> list[str]:
    """The partition keys a consumer writes in the idempotency table: Powertools' record of an event (the key prefix
    SqsConsumer gives idempotent_function, hashed by Powertools itself) and the worker's deferral ledger entry."""
    from types import SimpleNamespace

    from aws_lambda_powertools import Logger, Metrics

    from memberflow.adapters.sqs import SqsWorkQueue
    from memberflow.pipeline.worker import QueuedMessage
    from memberflow.runtime import sqs_consumer

    used = {}

    def idempotent_function(**options):
        used.update(options)
        return lambda handle: handle

    monkeypatch.setattr(sqs_consumer, "idempotent_function", idempotent_function)
    monkeypatch.setattr(sqs_consumer, "client", lambda service: object())
    monkeypatch.setattr(sqs_consumer, "container", lambda: SimpleNamespace(worker=lambda *arguments: None))
    sqs_consumer.SqsConsumer(
        consumer,
        dict,
        worst_case_ms_per_message=lambda: 0,
        metric_prefix="Test",
        logger=Logger(),
        metrics=Metrics(),
        settings=lambda: SimpleNamespace(idempotency_table_name="IdempotencyTable"),
    )._build()
    store = used["persistence_store"]
    store.configure(used["config"], key_prefix=used["key_prefix"])
    record = store._get_hashed_idempotency_key({"idempotency_key": "slack:T1:Ev1"})
    ledger = SqsWorkQueue("queue", "dead-letters", "IdempotencyTable", consumer)._ledger_id(
        QueuedMessage(message_id="m-1", receipt_handle="r", body="{}", receive_count=2)
    )
    return [record, ledger]


def test_each_consumer_reads_and_writes_only_its_own_records_in_the_idempotency_table(monkeypatch):
    import fnmatch

    consumers = consumer_names()
    assert set(consumers) == {"OnboardingFunction", "EscalationFunction", "MemberImportFunction", "EventSyncFunction"}
    keys = {name: idempotency_table_keys(monkeypatch, consumer) for name, consumer in consumers.items()}
    for name in consumers:
        on_table = [
            s for s in statements(FUNCTIONS[name]) if s["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
        ]
        assert len(on_table) == 1, name
        patterns = on_table[0].get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        assert patterns, f"{name} may touch every record of the idempotency table"
        for owner, owned in keys.items():
            for key in owned:  # IAM's StringLike: * is any run of characters
                assert any(fnmatch.fnmatchcase(key, p) for p in patterns) == (owner == name), (name, key, patterns)


def test_the_escalation_emails_members_only_from_the_configured_senders_identity():
    from memberflow_local.template import Resolver

    [statement] = [s for s in statements(FUNCTIONS["EscalationFunction"]) if s["Action"] == "ses:SendEmail"]
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "EscalationEmailFrom"}}}
    identities = "arn:aws:ses:us-east-1:123456789012:identity/"
    for sender, allowed in [
        ("help@example.org", [identities + "help@example.org", identities + "example.org"]),
        ("", identities + "not-configured.invalid"),  # no sender: an identity that cannot exist
    ]:
        resolver = Resolver(TEMPLATE, {"EscalationEmailFrom": sender}, region="us-east-1", account_id="123456789012")
        assert resolver.resolve(statement["Resource"]) == allowed, sender


# ------------------------------------------------------------------------------ the redrive waits on the right services
def probe_settings() -> dict[str, type]:
    """Each service the redrive can wait on -> the settings class its availability probe loads (runtime/container.py
    `_availability_probe`)."""
    from memberflow.config import EventbriteClientSettings, MailchimpSettings, ZendeskApiSettings

    return {"mailchimp": MailchimpSettings, "zendesk": ZendeskApiSettings, "eventbrite": EventbriteClientSettings}


def secret_variable(settings: type) -> str:
    [name] = [f.alias for name, f in settings.model_fields.items() if name.endswith("_secret_arn")]
    return name


def placeholder_environment(function: dict) -> dict[str, str]:
    """The function's variables with every `Ref`/`${...}` replaced by `<logical id>`, as its code would read them."""
    import re

    environment = {}
    for name, value in (function["Properties"].get("Environment") or {}).get("Variables", {}).items():
        if isinstance(value, dict) and "Ref" in value:
            value = f"<{value['Ref']}>"
        elif isinstance(value, dict) and "Fn::Sub" in value:
            value = re.sub(r"\$\{([^}.]+)\}", r"<\1>", value["Fn::Sub"])
        environment[name] = str(value)
    return environment


def services_called(function: dict) -> set[str]:
    """The services a function calls: those whose credentials it is given."""
    variables = (function["Properties"].get("Environment") or {}).get("Variables", {})
    return {service for service, settings in probe_settings().items() if secret_variable(settings) in variables}


def redrive_wait_mismatches(template: dict) -> list[str]:
    """Each dead-letter queue in the redrive's REDRIVES whose REDRIVE_WAITS_ON entry (read as the function reads it)
    differs from the services the consumer of its source queue calls."""
    from memberflow.config import RedriveSettings

    resources = template["Resources"]
    functions = {n: r for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    settings = RedriveSettings.model_validate(placeholder_environment(functions["DeadLetterRedriveFunction"]))
    consumers = {
        source["Queue"]["Fn::GetAtt"][0]: name for name, f in functions.items() for source in sqs_sources(f).values()
    }
    mismatches = []
    for dead_letters, queue in settings.redrives.items():
        dead_letters_id, queue_id = dead_letters.strip("<>"), queue.strip("<>")
        policy = resources[queue_id]["Properties"]["RedrivePolicy"]
        assert policy["deadLetterTargetArn"] == {"Fn::GetAtt": [dead_letters_id, "Arn"]}, (dead_letters_id, queue_id)
        consumer = consumers[queue_id]
        listed = settings.waits_on.get(dead_letters)
        if listed is None:
            mismatches.append(f"{dead_letters_id}: not in REDRIVE_WAITS_ON")
        elif set(listed) != services_called(functions[consumer]):
            mismatches.append(
                f"{dead_letters_id}: waits on {sorted(listed)}, {consumer} calls "
                f"{sorted(services_called(functions[consumer]))}"
            )
    return mismatches


def test_every_redriven_dead_letter_queue_waits_on_the_services_its_consumer_calls():
    from typing import get_args

    from memberflow.config import RedriveService, RedriveSettings

    assert set(get_args(RedriveService)) == set(probe_settings())
    assert redrive_wait_mismatches(TEMPLATE) == []
    settings = RedriveSettings.model_validate(placeholder_environment(FUNCTIONS["DeadLetterRedriveFunction"]))
    assert {queue.strip("<>"): set(services) for queue, services in settings.waits_on.items()} == {
        "MemberEventsDeadLetterQueue": {"mailchimp"},
        "EscalationsDeadLetterQueue": {"zendesk"},
        "MemberImportDeadLetterQueue": {"mailchimp"},
        "RegistrationsDeadLetterQueue": {"eventbrite", "mailchimp"},
    }


def test_the_wait_check_fails_on_a_queue_missing_from_redrive_waits_on_or_waiting_on_too_little():
    import copy
    import json

    template = copy.deepcopy(TEMPLATE)
    variables = template["Resources"]["DeadLetterRedriveFunction"]["Properties"]["Environment"]["Variables"]
    waits_on = json.loads(variables["REDRIVE_WAITS_ON"]["Fn::Sub"])
    del waits_on["${EscalationsDeadLetterQueue}"]
    waits_on["${RegistrationsDeadLetterQueue}"] = ["mailchimp"]
    variables["REDRIVE_WAITS_ON"] = {"Fn::Sub": json.dumps(waits_on)}

    assert redrive_wait_mismatches(template) == [
        "EscalationsDeadLetterQueue: not in REDRIVE_WAITS_ON",
        "RegistrationsDeadLetterQueue: waits on ['mailchimp'], EventSyncFunction calls ['eventbrite', 'mailchimp']",
    ]


def redrive_probe_gaps(template: dict) -> list[str]:
    """What the redrive's probes would miss: a variable their settings classes require, or one another function gives
    a value the redrive does not (the probe would ask another host than the consumer calls); and a secret it may read
    beyond (or short of) the probes' own."""
    from memberflow.config import RedriveSettings

    functions = {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    redrive = functions["DeadLetterRedriveFunction"]
    variables = redrive["Properties"]["Environment"]["Variables"]
    services = RedriveSettings.model_validate(placeholder_environment(redrive)).services
    gaps = []
    for settings in [RedriveSettings, *(probe_settings()[s] for s in services)]:
        for field in settings.model_fields.values():
            given = {n: f["Properties"]["Environment"]["Variables"].get(field.alias) for n, f in functions.items()}
            given = {n: value for n, value in given.items() if value is not None and n != "DeadLetterRedriveFunction"}
            if field.alias not in variables:
                if field.is_required() or given:
                    gaps.append(f"{settings.__name__}: {field.alias} missing")
            elif any(value != variables[field.alias] for value in given.values()):
                gaps.append(f"{settings.__name__}: {field.alias} differs from {sorted(given)}")
    readable = [
        resource
        for statement in statements(redrive)
        if "secretsmanager:GetSecretValue"
        in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        for resource in (statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]])
    ]
    needed = [variables.get(secret_variable(probe_settings()[s])) for s in services]
    if None not in needed and sorted(map(str, readable)) != sorted(map(str, needed)):
        gaps.append(f"secrets readable: {readable}, the probes read: {needed}")
    return gaps


def test_the_redrive_has_what_its_probes_settings_require_and_reads_only_their_secrets():
    assert redrive_probe_gaps(TEMPLATE) == []


def without_zendesk_secret(properties: dict) -> None:
    del properties["Environment"]["Variables"]["ZENDESK_SECRET_ARN"]


def with_another_eventbrite_host(properties: dict) -> None:
    properties["Environment"]["Variables"]["EVENTBRITE_API_URL"] = "https://elsewhere.example/v3"


def reading_the_slack_secret_too(properties: dict) -> None:
    [reads] = [s for s in statements({"Properties": properties}) if s["Action"] == "secretsmanager:GetSecretValue"]
    reads["Resource"] = [*reads["Resource"], {"Ref": "SlackBotSecret"}]


def without_the_eventbrite_secret_permission(properties: dict) -> None:
    [reads] = [s for s in statements({"Properties": properties}) if s["Action"] == "secretsmanager:GetSecretValue"]
    reads["Resource"] = [r for r in reads["Resource"] if r != {"Ref": "EventbriteApiSecret"}]


@pytest.mark.parametrize(
    ("change", "gap"),
    [
        (without_zendesk_secret, "ZendeskApiSettings: ZENDESK_SECRET_ARN missing"),
        (
            with_another_eventbrite_host,
            "EventbriteClientSettings: EVENTBRITE_API_URL differs from "
            "['EventReconcileFunction', 'EventSyncFunction', 'WebhookIntakeFunction']",
        ),
        (reading_the_slack_secret_too, "secrets readable: "),
        (without_the_eventbrite_secret_permission, "secrets readable: "),
    ],
)
def test_the_probe_check_fails_on_a_missing_variable_another_host_or_other_secrets(change, gap):
    import copy

    template = copy.deepcopy(TEMPLATE)
    change(template["Resources"]["DeadLetterRedriveFunction"]["Properties"])

    [found] = redrive_probe_gaps(template)
    assert found.startswith(gap), found
