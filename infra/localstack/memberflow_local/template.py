"""Read template.yaml (the single source of truth) into a model the local stack can run.

* :func:`load_yaml` understands the CloudFormation short tags (``!Ref``, ``!Sub``, ``!GetAtt`` ...).
* :class:`Resolver` evaluates the intrinsic functions against parameter values (defaults plus
  overrides, like ``sam deploy --parameter-overrides``), pseudo parameters and the physical ids of
  the locally created resources.
* :class:`LocalTemplate` is the model: tables, queues, secrets and functions (with their events).

Physical ids: when the resources already exist locally, pass their :class:`PhysicalResource` map
(see :mod:`memberflow_local.aws`); otherwise deterministic local names are used
(``memberflow-local-<LogicalId>``), which is what ``aws.py`` creates.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .settings import LOCAL_ACCOUNT_ID, LOCAL_REGION

NAME_PREFIX = "memberflow-local-"


class TemplateError(ValueError):
    """The template cannot be read or resolved locally."""


# ---------------------------------------------------------------------------- YAML with CFN tags
class CfnYamlLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags into their long JSON form."""


def _construct(node: yaml.Node, loader: yaml.Loader) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _tag_constructor(name: str):
    def construct(loader: yaml.Loader, node: yaml.Node) -> Any:
        value = _construct(node, loader)
        if name == "Ref":
            return {"Ref": value}
        if name == "Condition":
            return {"Condition": value}
        if name == "GetAtt" and isinstance(value, str):
            logical_id, _, attribute = value.partition(".")
            return {"Fn::GetAtt": [logical_id, attribute]}
        return {f"Fn::{name}": value}

    return construct


for _tag in (
    "Ref",
    "Condition",
    "GetAtt",
    "Sub",
    "Join",
    "Select",
    "Split",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "FindInMap",
    "Base64",
    "GetAZs",
    "ImportValue",
    "Cidr",
    "Transform",
    "Length",
    "ToJsonString",
):
    CfnYamlLoader.add_constructor(f"!{_tag}", _tag_constructor(_tag))


def load_yaml(path: Path | str) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.load(text, Loader=CfnYamlLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict) or "Resources" not in data:
        raise TemplateError(f"{path}: not a CloudFormation/SAM template")
    return data


# ---------------------------------------------------------------------------- resolution
@dataclass(frozen=True)
class PhysicalResource:
    """What ``Ref`` and ``Fn::GetAtt`` return for one created resource."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


_NO_VALUE = object()


@dataclass
class Resolver:
    template: Mapping[str, Any]
    parameters: Mapping[str, str]
    physical: Mapping[str, PhysicalResource] = field(default_factory=dict)
    region: str = LOCAL_REGION
    account_id: str = LOCAL_ACCOUNT_ID
    stack_name: str = "memberflow-local"

    def __post_init__(self) -> None:
        self._conditions: dict[str, bool] = {}

    # -- pseudo parameters and references
    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local"),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        pseudo = self.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}):
            if name not in self.parameters:
                raise TemplateError(f"parameter {name} has no value: give it a default or an override")
            return self.parameters[name]
        resources = self.template.get("Resources", {})
        if name in self.physical:
            return self.physical[name].ref
        if name in resources:
            return default_ref(name, resources[name].get("Type", ""), self.region, self.account_id)
        raise TemplateError(f"!Ref {name}: no such parameter or resource")

    def get_att(self, logical_id: str, attribute: str) -> str:
        resources = self.template.get("Resources", {})
        if logical_id in self.physical and attribute in self.physical[logical_id].attributes:
            return self.physical[logical_id].attributes[attribute]
        if logical_id not in resources:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute}: no such resource")
        attrs = default_attributes(logical_id, resources[logical_id].get("Type", ""), self.region, self.account_id)
        if attribute not in attrs:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute} is not supported locally")
        return attrs[attribute]

    # -- conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {})
            if name not in conditions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    # -- the evaluator
    def resolve(self, value: Any) -> Any:
        result = self._resolve(value)
        return None if result is _NO_VALUE else result

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        out = {}
        for k, v in value.items():
            resolved = self._resolve(v)
            if resolved is not _NO_VALUE:
                out[k] = resolved
        return out

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            if isinstance(arg, str):
                arg = arg.split(".", 1)
            logical_id, attribute = (self._resolve(a) for a in arg)
            return self.get_att(logical_id, attribute)
        if name == "Sub":
            if isinstance(arg, list):
                text, variables = arg[0], {k: self._resolve(v) for k, v in arg[1].items()}
            else:
                text, variables = arg, {}
            return self._sub(text, variables)
        if name == "Join":
            sep, items = arg
            return str(self._resolve(sep)).join(_text(v) for v in self._resolve(items))
        if name == "Select":
            index, items = arg
            return self._resolve(items)[int(self._resolve(index))]
        if name == "Split":
            sep, text = arg
            return str(self._resolve(text)).split(self._resolve(sep))
        if name == "If":
            cond, yes, no = arg
            return self._resolve(yes if self.condition(cond) else no)
        if name == "Equals":
            a, b = (self._resolve(v) for v in arg)
            return _text(a) == _text(b)
        if name == "Not":
            return not self._resolve(arg[0])
        if name == "And":
            return all(self._resolve(v) for v in arg)
        if name == "Or":
            return any(self._resolve(v) for v in arg)
        if name == "FindInMap":
            m, k1, k2 = (self._resolve(v) for v in arg[:3])
            try:
                return self.template["Mappings"][m][k1][k2]
            except KeyError:
                raise TemplateError(f"!FindInMap {m}.{k1}.{k2}: not found") from None
        if name == "Base64":
            return base64.b64encode(_text(self._resolve(arg)).encode()).decode()
        if name == "GetAZs":
            return [f"{self.region}{z}" for z in "abc"]
        if name == "ToJsonString":
            return json.dumps(self._resolve(arg))
        if name == "Length":
            return len(self._resolve(arg))
        raise TemplateError(f"Fn::{name} is not supported by the local stack")

    _SUB = re.compile(r"\$\{([^}]*)\}")

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            expr = match.group(1).strip()
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return _text(variables[expr])
            if "." in expr and not expr.startswith("AWS::"):
                logical_id, attribute = expr.split(".", 1)
                return self.get_att(logical_id, attribute)
            return _text(self.ref(expr))

        return self._SUB.sub(replace, text)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def physical_name(logical_id: str) -> str:
    return NAME_PREFIX + logical_id


def default_ref(logical_id: str, resource_type: str, region: str, account_id: str) -> str:
    name = physical_name(logical_id)
    if resource_type == "AWS::SQS::Queue":
        return f"https://sqs.{region}.amazonaws.com/{account_id}/{name}"
    if resource_type == "AWS::SecretsManager::Secret":
        return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{name}"
    return name


def default_attributes(logical_id: str, resource_type: str, region: str, account_id: str) -> dict[str, str]:
    name = physical_name(logical_id)
    if resource_type == "AWS::SQS::Queue":
        return {
            "Arn": f"arn:aws:sqs:{region}:{account_id}:{name}",
            "QueueName": name,
            "QueueUrl": default_ref(logical_id, resource_type, region, account_id),
        }
    if resource_type == "AWS::DynamoDB::Table":
        return {"Arn": f"arn:aws:dynamodb:{region}:{account_id}:table/{name}"}
    if resource_type == "AWS::SecretsManager::Secret":
        return {"Id": default_ref(logical_id, resource_type, region, account_id)}
    if resource_type == "AWS::Serverless::Function":
        return {"Arn": f"arn:aws:lambda:{region}:{account_id}:function:{name}"}
    if resource_type == "AWS::Logs::LogGroup":
        return {"Arn": f"arn:aws:logs:{region}:{account_id}:log-group:{name}"}
    return {"Arn": f"arn:aws:local:{region}:{account_id}:{name}"}


# ---------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class HttpApiRoute:
    method: str
    path: str
    event_name: str = ""
    api_logical_id: str | None = None
    iam_auth: bool = False
    """`Auth: {Authorizer: AWS_IAM}`: callers must sign their requests (SigV4)."""

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class SqsSource:
    queue_logical_id: str
    batch_size: int = 10
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None
    event_name: str = ""
    enabled: bool = True
    maximum_batching_window_seconds: float = 0.0
    """How long Lambda may gather messages for one batch (batches of more than 10 need one)."""


@dataclass(frozen=True)
class ScheduleSource:
    name: str
    expression: str
    type: str = "ScheduleV2"
    input: str | None = None
    """The target Input (JSON text) from the template, with Scheduler's <aws.scheduler.*> placeholders."""
    enabled: bool = True


Event = HttpApiRoute | SqsSource | ScheduleSource


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    timeout: int = 3
    environment: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    memory_size: int = 128
    runtime: str = "python3.12"
    function_name: str = ""
    arn: str = ""

    def __post_init__(self) -> None:
        if not self.function_name:
            object.__setattr__(self, "function_name", physical_name(self.logical_id))
        if not self.arn:
            object.__setattr__(
                self, "arn", f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:function:{self.function_name}"
            )

    @property
    def module_file(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_dir / (module.replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rpartition(".")[2]


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    properties: dict[str, Any]
    dead_letter_queue: str | None = None
    """Logical id of the redrive target, if any."""
    max_receive_count: int | None = None


@dataclass(frozen=True)
class SecretSpec:
    logical_id: str
    properties: dict[str, Any]


@dataclass
class BucketSpec:
    logical_id: str
    properties: dict[str, Any]


@dataclass
class LocalTemplate:
    path: Path
    raw: dict[str, Any]
    parameters: dict[str, str]
    tables: dict[str, TableSpec]
    queues: dict[str, QueueSpec]
    secrets: dict[str, SecretSpec]
    functions: dict[str, FunctionSpec]
    resolver: Resolver
    outputs: dict[str, Any] = field(default_factory=dict)
    buckets: dict[str, BucketSpec] = field(default_factory=dict)
    workgroups: dict[str, BucketSpec] = field(default_factory=dict)
    """Athena workgroups (logical id and resolved properties, as for buckets)."""

    @classmethod
    def load(
        cls,
        path: Path | str,
        parameter_overrides: Mapping[str, str] | None = None,
        physical: Mapping[str, PhysicalResource] | None = None,
        *,
        region: str = LOCAL_REGION,
        account_id: str = LOCAL_ACCOUNT_ID,
        stack_name: str = "memberflow-local",
        ignore_unknown_parameters: bool = False,
    ) -> LocalTemplate:
        """Read and resolve the template. Overrides for parameters the template does not declare
        are an error unless ``ignore_unknown_parameters`` (the local stack sets it, so one set of
        settings fits test templates too)."""
        path = Path(path).resolve()
        raw = load_yaml(path)
        overrides = dict(parameter_overrides or {})
        if ignore_unknown_parameters:
            declared = raw.get("Parameters") or {}
            overrides = {k: v for k, v in overrides.items() if k in declared}
        parameters = resolve_parameters(raw, overrides)
        resolver = Resolver(raw, parameters, dict(physical or {}), region, account_id, stack_name)
        resources: dict[str, Any] = raw.get("Resources", {})

        tables: dict[str, TableSpec] = {}
        queues: dict[str, QueueSpec] = {}
        secrets: dict[str, SecretSpec] = {}
        functions: dict[str, FunctionSpec] = {}
        buckets: dict[str, BucketSpec] = {}
        workgroups: dict[str, BucketSpec] = {}
        for logical_id, resource in resources.items():
            if "Condition" in resource and not resolver.condition(resource["Condition"]):
                continue
            rtype = resource.get("Type")
            props_raw = resource.get("Properties", {}) or {}
            if rtype == "AWS::DynamoDB::Table":
                tables[logical_id] = TableSpec(logical_id, resolver.resolve(props_raw))
            elif rtype == "AWS::SQS::Queue":
                props = resolver.resolve(props_raw)
                dlq, max_receive = _redrive(props_raw, props)
                queues[logical_id] = QueueSpec(logical_id, props, dlq, max_receive)
            elif rtype == "AWS::SecretsManager::Secret":
                secrets[logical_id] = SecretSpec(logical_id, resolver.resolve(props_raw))
            elif rtype == "AWS::Serverless::Function":
                functions[logical_id] = _function_spec(logical_id, raw, props_raw, resolver, path.parent)
            elif rtype == "AWS::S3::Bucket":
                buckets[logical_id] = BucketSpec(logical_id, resolver.resolve(props_raw))
            elif rtype == "AWS::Athena::WorkGroup":
                workgroups[logical_id] = BucketSpec(logical_id, {"Name": resolver.resolve(props_raw.get("Name"))})

        return cls(
            path=path,
            raw=raw,
            parameters=parameters,
            tables=tables,
            queues=queues,
            secrets=secrets,
            functions=functions,
            resolver=resolver,
            outputs=raw.get("Outputs", {}),
            buckets=buckets,
            workgroups=workgroups,
        )

    @property
    def root(self) -> Path:
        return self.path.parent

    def resolve(self, value: Any) -> Any:
        return self.resolver.resolve(value)

    def http_routes(self) -> list[tuple[FunctionSpec, HttpApiRoute]]:
        return [(f, e) for f in self.functions.values() for e in f.events if isinstance(e, HttpApiRoute)]

    def sqs_sources(self) -> list[tuple[FunctionSpec, SqsSource]]:
        return [(f, e) for f in self.functions.values() for e in f.events if isinstance(e, SqsSource)]

    def schedules(self) -> list[tuple[FunctionSpec, ScheduleSource]]:
        return [(f, e) for f in self.functions.values() for e in f.events if isinstance(e, ScheduleSource)]


def resolve_parameters(raw: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    declared: dict[str, Any] = raw.get("Parameters", {}) or {}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"unknown parameter override(s): {', '.join(unknown)}")
    values: dict[str, str] = {}
    missing: list[str] = []
    for name, spec in declared.items():
        if name in overrides:
            value = _text(overrides[name])
        elif "Default" in spec:
            value = _text(spec["Default"])
        else:
            missing.append(name)
            continue
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [_text(a) for a in allowed]:
            raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        if spec.get("Type") == "Number":
            try:
                float(value)
            except ValueError:
                raise TemplateError(f"parameter {name}={value!r} is not a number") from None
        values[name] = value
    if missing:
        raise TemplateError(f"parameters without a value (no default, no override): {', '.join(missing)}")
    return values


def _redrive(props_raw: Mapping[str, Any], props: Mapping[str, Any]) -> tuple[str | None, int | None]:
    policy_raw = props_raw.get("RedrivePolicy")
    policy = props.get("RedrivePolicy")
    if not policy_raw or not policy:
        return None, None
    if isinstance(policy, str):
        policy = json.loads(policy)
    target_raw = policy_raw.get("deadLetterTargetArn") if isinstance(policy_raw, dict) else None
    dlq: str | None = None
    if isinstance(target_raw, dict) and "Fn::GetAtt" in target_raw:
        att = target_raw["Fn::GetAtt"]
        dlq = att.split(".", 1)[0] if isinstance(att, str) else att[0]
    max_receive = policy.get("maxReceiveCount")
    return dlq, int(max_receive) if max_receive is not None else None


def _merge_globals(raw: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict((raw.get("Globals") or {}).get("Function") or {})
    for key, value in props.items():
        if key == "Environment" and "Environment" in merged:
            variables = dict((merged["Environment"] or {}).get("Variables") or {})
            variables.update((value or {}).get("Variables") or {})
            merged["Environment"] = {"Variables": variables}
        else:
            merged[key] = value
    return merged


def _function_spec(
    logical_id: str, raw: Mapping[str, Any], props_raw: Mapping[str, Any], resolver: Resolver, root: Path
) -> FunctionSpec:
    merged = _merge_globals(raw, props_raw)
    wanted = ("CodeUri", "Handler", "Timeout", "Environment", "MemorySize", "Runtime", "FunctionName")
    props = resolver.resolve({k: v for k, v in merged.items() if k in wanted})
    code_uri = props.get("CodeUri")
    if not isinstance(code_uri, str):
        raise TemplateError(f"{logical_id}: CodeUri must be a local path")
    variables = ((props.get("Environment") or {}).get("Variables")) or {}
    environment = {str(k): _text(v) for k, v in variables.items()}
    events: list[Event] = []
    for event_name, event in (props_raw.get("Events") or {}).items():
        parsed = _event(logical_id, event_name, event, resolver)
        if parsed is not None:
            events.append(parsed)
    function_name = props.get("FunctionName") or physical_name(logical_id)
    return FunctionSpec(
        logical_id=logical_id,
        code_dir=(root / code_uri).resolve(),
        handler=props["Handler"],
        timeout=int(props.get("Timeout", 3)),
        environment=environment,
        events=events,
        memory_size=int(props.get("MemorySize", 128)),
        runtime=str(props.get("Runtime", "")),
        function_name=function_name,
        arn=f"arn:aws:lambda:{resolver.region}:{resolver.account_id}:function:{function_name}",
    )


def _event(logical_id: str, event_name: str, event: Mapping[str, Any], resolver: Resolver) -> Event | None:
    etype = event.get("Type")
    props_raw = event.get("Properties") or {}
    if etype == "HttpApi":
        props = resolver.resolve({k: v for k, v in props_raw.items() if k != "ApiId"})
        api = props_raw.get("ApiId")
        api_id = api.get("Ref") if isinstance(api, dict) else None
        return HttpApiRoute(
            method=str(props.get("Method", "ANY")).upper(),
            path=str(props.get("Path", "$default")),
            event_name=event_name,
            api_logical_id=api_id,
            iam_auth=(props.get("Auth") or {}).get("Authorizer") == "AWS_IAM",
        )
    if etype == "SQS":
        queue_raw = props_raw.get("Queue")
        queue_id = None
        if isinstance(queue_raw, dict) and "Fn::GetAtt" in queue_raw:
            att = queue_raw["Fn::GetAtt"]
            queue_id = att.split(".", 1)[0] if isinstance(att, str) else att[0]
        if queue_id is None:
            raise TemplateError(f"{logical_id}.{event_name}: SQS Queue must be !GetAtt <Queue>.Arn locally")
        props = resolver.resolve({k: v for k, v in props_raw.items() if k != "Queue"})
        scaling = props.get("ScalingConfig") or {}
        max_conc = scaling.get("MaximumConcurrency")
        return SqsSource(
            queue_logical_id=queue_id,
            batch_size=int(props.get("BatchSize", 10)),
            report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            maximum_concurrency=int(max_conc) if max_conc is not None else None,
            event_name=event_name,
            enabled=bool(props.get("Enabled", True)),
            maximum_batching_window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0)),
        )
    if etype in ("Schedule", "ScheduleV2"):
        props = resolver.resolve(props_raw)
        enabled = props.get("Enabled", True)
        if "State" in props:
            enabled = str(props["State"]).upper() == "ENABLED"
        return ScheduleSource(
            name=event_name,
            expression=str(props.get("Schedule") or props.get("ScheduleExpression") or ""),
            type=etype,
            input=props.get("Input"),
            enabled=bool(enabled),
        )
    return None
