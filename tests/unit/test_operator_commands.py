"""The operator commands' parts that need no stack: doctor's checks of configuration values, and how a deployed
stack is read (CloudFormation parameters and resources, the intake function's environment)."""

from __future__ import annotations

from typing import Any

import pytest

from memberflow_cli import target as target_module
from memberflow_cli.doctor import discourse_consent, merge_fields, welcome_journey


def levels(findings) -> list[tuple[str, str]]:
    return [(finding.level, finding.what) for finding in findings]


@pytest.mark.parametrize(("journey", "step"), [("welcome", "201"), ("101", ""), ("101", "step-1")])
def test_journey_ids_that_are_not_numbers_are_a_problem(journey, step):
    [finding] = welcome_journey({"MailchimpWelcomeJourneyId": journey, "MailchimpWelcomeJourneyStepId": step})
    assert finding.level == "PROBLEM" and "API-trigger starting point" in finding.fix


def test_well_formed_journey_ids_are_only_a_note_since_mailchimp_cannot_be_asked():
    [finding] = welcome_journey({"MailchimpWelcomeJourneyId": "101", "MailchimpWelcomeJourneyStepId": "201"})
    assert finding.level == "note" and "no read endpoint for Customer Journeys" in finding.fix


def test_merge_fields_missing_or_of_another_type():
    findings = list(merge_fields("list1", {"FNAME": "text", "PLATFORM": "dropdown"}))

    assert levels(findings) == [
        ("note", "merge field PLATFORM is a dropdown field; memberflow fills it as text"),
        ("PROBLEM", "merge field JOINED is missing from audience list1: what memberflow sends is lost"),
    ]
    assert '"type": "date", "tag": "JOINED"' in findings[1].fix


@pytest.mark.parametrize(("value", "shown"), [("", "no Discourse consent field"), ("user_field_3", '"3"')])
def test_the_discourse_consent_field_is_reported_honestly(value, shown):
    [finding] = discourse_consent({"DiscourseConsentUserField": value})
    assert finding.level == "note" and shown in finding.what + finding.fix


class FakeAws:
    """CloudFormation and Lambda as a deployed stack answers them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def describe_stacks(self, **request: Any) -> dict:
        self.calls.append(("describe_stacks", request))
        return {"Stacks": [{"Parameters": [{"ParameterKey": "MailchimpListId", "ParameterValue": "abc"}]}]}

    def describe_stack_resource(self, **request: Any) -> dict:
        self.calls.append(("describe_stack_resource", request))
        return {"StackResourceDetail": {"PhysicalResourceId": f"physical-{request['LogicalResourceId']}"}}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_stack_resources"
        summaries = [
            {"LogicalResourceId": "MemberEventsQueue", "ResourceType": "AWS::SQS::Queue"},
            {"LogicalResourceId": "MemberEventsDeadLetterQueue", "ResourceType": "AWS::SQS::Queue"},
            {"LogicalResourceId": "MembersTable", "ResourceType": "AWS::DynamoDB::Table"},
        ]
        return type("Paginator", (), {"paginate": lambda self, **kw: [{"StackResourceSummaries": summaries}]})()

    def get_function_configuration(self, **request: Any) -> dict:
        self.calls.append(("get_function_configuration", request))
        return {"Environment": {"Variables": {"EVENT_DESTINATIONS": '{"member-events": "https://sqs/q"}'}}}


def test_a_deployed_stack_is_read_from_cloudformation_and_its_functions(monkeypatch):
    aws = FakeAws()
    monkeypatch.setattr(target_module, "client", lambda service: aws)

    stack = target_module.resolve("community")

    assert (stack.label, stack.parameters, stack.mailchimp_url) == ("stack community", {"MailchimpListId": "abc"}, "")
    assert stack.physical("TraceTable") == "physical-TraceTable"
    assert stack.physical("TraceTable") == "physical-TraceTable"  # looked up once
    assert [name for name, _ in aws.calls].count("describe_stack_resource") == 1
    assert stack.queues() == ["MemberEventsDeadLetterQueue", "MemberEventsQueue"]
    assert stack.function_environment("WebhookIntakeFunction")["EVENT_DESTINATIONS"].startswith('{"member-events"')
    assert ("get_function_configuration", {"FunctionName": "physical-WebhookIntakeFunction"}) in aws.calls
