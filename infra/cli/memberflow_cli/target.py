"""Which stack a command works against: the running local stack, or a deployed CloudFormation stack (read with the
caller's AWS credentials). Either way, commands see the same things: resources by their logical id in
template.yaml, the stack's parameters, and where its Mailchimp API is."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memberflow.adapters.aws import client


@dataclass
class Target:
    label: str
    """How output names it: "the local stack" or "stack <name>"."""
    parameters: dict[str, str]
    """The stack's parameters (template defaults included)."""
    mailchimp_url: str
    """Empty: the real API of the key's data centre."""
    stack_name: str | None = None
    local_template: Callable[[dict[str, Any]], Any] | None = None
    """The local stack's template, resolved with the given physical resources."""
    _physical: dict[str, str] = field(default_factory=dict)

    def queues(self) -> list[str]:
        """Logical ids of the stack's SQS queues."""
        if self.stack_name:
            pages = client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=self.stack_name)
            return sorted(
                resource["LogicalResourceId"]
                for page in pages
                for resource in page["StackResourceSummaries"]
                if resource["ResourceType"] == "AWS::SQS::Queue"
            )
        assert self.local_template is not None
        return sorted(self.local_template({}).queues)

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment variables as deployed (e.g. intake's EVENT_DESTINATIONS)."""
        if self.stack_name:
            answer = client("lambda").get_function_configuration(FunctionName=self.physical(logical_id))
            return dict(answer.get("Environment", {}).get("Variables", {}))
        from memberflow_local.template import PhysicalResource

        assert self.local_template is not None
        queues = self.local_template({}).queues
        physical = {name: PhysicalResource(ref=self.physical(name)) for name in queues}
        return dict(self.local_template(physical).functions[logical_id].environment)

    def physical(self, logical_id: str) -> str:
        """The physical id of a resource of template.yaml: a table name, a queue URL, a secret ARN or name."""
        if logical_id not in self._physical:
            self._physical[logical_id] = self._lookup(logical_id)
        return self._physical[logical_id]

    def _lookup(self, logical_id: str) -> str:
        if self.stack_name:
            answer = client("cloudformation").describe_stack_resource(
                StackName=self.stack_name, LogicalResourceId=logical_id
            )
            return str(answer["StackResourceDetail"]["PhysicalResourceId"])
        from memberflow_local.template import physical_name

        name = physical_name(logical_id)
        if logical_id.endswith("Queue"):
            return str(client("sqs").get_queue_url(QueueName=name)["QueueUrl"])
        if logical_id.endswith("Bucket"):
            return name.lower()  # bucket names are lowercase (memberflow_local.aws.create_bucket)
        return name


def resolve(stack: str | None) -> Target:
    """A deployed stack by name, or the local stack (and boto3 pointed at its moto server)."""
    if stack:
        description = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in description.get("Parameters", [])}
        return Target(f"stack {stack}", parameters, parameters.get("MailchimpApiUrl", ""), stack)

    from memberflow_local.aws import AWS_ENV
    from memberflow_local.settings import LocalSettings
    from memberflow_local.template import LocalTemplate

    settings = LocalSettings.from_env()
    os.environ.update({**AWS_ENV, "AWS_ENDPOINT_URL": f"http://{settings.host}:{settings.aws_port}"})
    mailchimp_url = f"http://{settings.host}:{settings.mailchimp_port}/3.0"

    def load(physical: dict[str, Any]) -> LocalTemplate:
        return LocalTemplate.load(
            settings.template_path,
            settings.parameter_overrides(mailchimp_url),
            physical,
            ignore_unknown_parameters=True,
        )

    return Target("the local stack", dict(load({}).parameters), mailchimp_url, local_template=load)


def secret(target: Target, logical_id: str) -> dict[str, Any]:
    """A JSON secret of the stack, read fresh."""
    value = json.loads(client("secretsmanager").get_secret_value(SecretId=target.physical(logical_id))["SecretString"])
    if not isinstance(value, dict):
        raise ValueError(f"{logical_id} does not hold a JSON object")
    return value
