"""The local stack runs every function in one process, with one environment: a variable two functions set to
different values would be one function's value in both (event sync once retried its messages on onboarding's queue,
refused for lack of permission, and its registrations then waited out the 12-minute visibility timeout). So no two
functions give one variable different values, and each queue consumer reads its own queue's variables."""

from test_template import FUNCTIONS, RESOURCES

from memberflow.config import (
    ConsumerSettings,
    EscalationSettings,
    ImportSettings,
    RegistrationsConsumerSettings,
)

CONSUMERS = {
    "OnboardingFunction": ConsumerSettings,
    "EscalationFunction": EscalationSettings,
    "MemberImportFunction": ImportSettings,
    "EventSyncFunction": RegistrationsConsumerSettings,
}


def variables(function: dict) -> dict:
    return ((function["Properties"].get("Environment") or {}).get("Variables")) or {}


def test_no_two_functions_give_one_environment_variable_different_values():
    seen: dict[str, tuple[str, object]] = {}
    disagreements = []
    for name, function in FUNCTIONS.items():
        for variable, value in variables(function).items():
            first = seen.setdefault(variable, (name, value))
            if first[1] != value:
                disagreements.append(f"{variable}: {first[0]} {first[1]!r}, {name} {value!r}")
    assert disagreements == []


def test_each_consumer_reads_the_queue_its_event_source_polls():
    for name, settings in CONSUMERS.items():
        env = variables(FUNCTIONS[name])
        [source] = [e for e in FUNCTIONS[name]["Properties"]["Events"].values() if e["Type"] == "SQS"]
        polled = source["Properties"]["Queue"]["Fn::GetAtt"][0]
        redrive = RESOURCES[polled]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"]
        queue_variable = settings.model_fields["queue_url"].alias
        dead_letter_variable = settings.model_fields["dead_letter_queue_url"].alias
        assert env[queue_variable] == {"Ref": polled}, name
        assert env[dead_letter_variable] == {"Ref": redrive[0]}, name  # where SQS itself would move its messages
