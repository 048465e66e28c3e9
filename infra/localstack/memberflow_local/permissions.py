"""Each function's AWS calls on the local stack, checked against its role in template.yaml.

moto allows every call; AWS allows only what a function's role says. A call the role does not allow would work
locally and fail with AccessDenied once deployed, so the local stack checks every call a function makes (DynamoDB,
SQS, Secrets Manager, S3 and SES: the services whose resources the template names) against the statements of that
function's `Policies`, resolved to the local stack's physical resources:

- the action (`dynamodb:BatchGetItem`, `sqs:SendMessage` for `SendMessageBatch`, `s3:ListBucket` for
  `ListObjectsV2`, ...) must be in an Allow statement whose resources match the call's (the table or its index, the
  queue, the secret, the bucket or object);
- `dynamodb:LeadingKeys` conditions are evaluated on the partition keys the call names, and `ses:FromAddress` on
  the sender of an email (whose identity is its address or its domain); other conditions are taken as met.

A denied call is refused as AWS refuses it (a `ClientError` with code `AccessDeniedException`), and kept in
`denied` with the function, action and resource, so tests can assert that nothing was denied. Calls made outside a
function's invocation (the stack itself, tests, the CLI) are not checked.
"""

from __future__ import annotations

import contextvars
import fnmatch
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CHECKED_SERVICES = ("dynamodb", "sqs", "secretsmanager", "s3", "email")
"""botocore's endpoint prefixes ("email" is SES, whose actions are named `ses:`)."""

_current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("memberflow_function", default=None)

# Operations whose IAM action has another name (batch calls are authorised by their single-item action).
ACTION_NAMES = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjects": "s3:ListBucket",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "s3:DeleteObjects": "s3:DeleteObject",
}


@contextmanager
def acting_as(logical_id: str) -> Iterator[None]:
    """The AWS calls made in this block (this thread) are the function's."""
    token = _current_function.set(logical_id)
    try:
        yield
    finally:
        _current_function.reset(token)


@dataclass(frozen=True)
class Denied:
    function: str
    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.function} may not {self.action} on {self.resource}"


@dataclass(frozen=True)
class Statement:
    actions: frozenset[str]
    resources: tuple[str, ...]
    leading_keys: tuple[str, ...] | None = None
    """Patterns every partition key of the call must match (`dynamodb:LeadingKeys`), if the statement says so."""
    from_addresses: tuple[str, ...] | None = None
    """The senders an email may have (`ses:FromAddress`), if the statement says so."""

    def allows(self, action: str, resource: str, condition_values: tuple[str, ...]) -> bool:
        """`condition_values`: what the call's conditions are evaluated on there (`Call.resources`)."""
        if action not in self.actions or not any(fnmatch.fnmatchcase(resource, r) for r in self.resources):
            return False
        if self.from_addresses is not None:
            return bool(condition_values) and all(sender in self.from_addresses for sender in condition_values)
        if self.leading_keys is None:
            return True
        return bool(condition_values) and all(
            any(fnmatch.fnmatchcase(key, pattern) for pattern in self.leading_keys) for key in condition_values
        )


@dataclass(frozen=True)
class Call:
    """One call as IAM sees it: the action, and each resource it touches with the values its conditions are evaluated
    on there (a DynamoDB call's partition keys, an email's sender)."""

    action: str
    resources: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass
class PermissionAudit:
    policies: Mapping[str, tuple[Statement, ...]]
    """Function logical id -> the Allow statements of its role, resolved."""
    arns: Mapping[str, str]
    """Physical id (queue URL, table or bucket name, secret ARN) -> the resource's ARN."""
    hash_keys: Mapping[str, str]
    """Table name -> its partition key attribute."""
    region: str
    account_id: str
    denied: list[Denied] = field(default_factory=list)
    checked: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, service: str, operation: str, params: Mapping[str, Any]) -> Denied | None:
        """None when the current function may make the call (or no function is running); else what was denied."""
        function = _current_function.get()
        if function is None or function not in self.policies or service not in CHECKED_SERVICES:
            return None
        call = self.describe(service, operation, params)
        statements = self.policies[function]
        with self._lock:
            self.checked += 1
        for resource, keys in call.resources:
            # An email's identity is its sender's address or the address's domain: either may be the one allowed.
            candidates = [resource, *([_domain_identity(resource)] if service == "email" else [])]
            if not any(statement.allows(call.action, c, keys) for statement in statements for c in candidates):
                denied = Denied(function, call.action, resource)
                with self._lock:
                    self.denied.append(denied)
                return denied
        return None

    # ------------------------------------------------------------------ a call's action and resources
    def describe(self, service: str, operation: str, params: Mapping[str, Any]) -> Call:
        action = f"{service}:{operation}"
        action = ACTION_NAMES.get(action, action)
        if service == "dynamodb":
            return Call(action, tuple(self._dynamodb_resources(operation, params)))
        if service == "sqs":
            url = str(params.get("QueueUrl", ""))
            return Call(action, ((self.arns.get(url, url), ()),))
        if service == "secretsmanager":
            return Call(action, ((self._secret_arn(str(params.get("SecretId", ""))), ()),))
        if service == "email":
            sender = str(params.get("Source", "")).rpartition("<")[2].rstrip(">").strip()
            identity = f"arn:aws:ses:{self.region}:{self.account_id}:identity/{sender}"
            return Call(f"ses:{operation}", ((identity, (sender,)),))
        bucket, key = str(params.get("Bucket", "")), params.get("Key")
        if action == "s3:DeleteObject" and "Delete" in params:
            keys = [str(o.get("Key", "")) for o in params["Delete"].get("Objects", [])]
            return Call(action, tuple((f"arn:aws:s3:::{bucket}/{k}", ()) for k in keys))
        resource = f"arn:aws:s3:::{bucket}/{key}" if key is not None else f"arn:aws:s3:::{bucket}"
        return Call(action, ((resource, ()),))

    def _table_arn(self, table: str, index: str | None = None) -> str:
        arn = self.arns.get(table) or f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{table}"
        return f"{arn}/index/{index}" if index else arn

    def _keys(self, table: str, *items: Mapping[str, Any] | None) -> tuple[str, ...]:
        name = self.hash_keys.get(table)
        found = []
        for item in items:
            value = (item or {}).get(name or "")
            if isinstance(value, Mapping):  # the low-level client's {"S": "..."}
                value = next(iter(value.values()), None)
            if value is not None:
                found.append(str(value))
        return tuple(found)

    def _dynamodb_resources(self, operation: str, params: Mapping[str, Any]) -> Iterator[tuple[str, tuple[str, ...]]]:
        if operation in ("BatchGetItem", "BatchWriteItem"):
            for table, request in (params.get("RequestItems") or {}).items():
                if operation == "BatchGetItem":
                    keys = self._keys(table, *request.get("Keys", []))
                else:
                    written = [
                        (r.get("PutRequest") or {}).get("Item") or (r.get("DeleteRequest") or {}).get("Key")
                        for r in request
                    ]
                    keys = self._keys(table, *written)
                yield self._table_arn(table), keys
            return
        table = str(params.get("TableName", ""))
        # A query's partition key is in its expression: not read here (no statement with a LeadingKeys condition
        # allows a query).
        keys = self._keys(table, params.get("Key"), params.get("Item"))
        yield self._table_arn(table, params.get("IndexName")), keys

    def _secret_arn(self, secret_id: str) -> str:
        if secret_id.startswith("arn:"):
            return secret_id
        for arn in self.arns.values():
            if arn.startswith("arn:aws:secretsmanager:") and arn.rsplit(":", 1)[-1].startswith(secret_id):
                return arn
        return f"arn:aws:secretsmanager:{self.region}:{self.account_id}:secret:{secret_id}"


def _domain_identity(identity_arn: str) -> str:
    """`...:identity/ada@example.org` -> `...:identity/example.org`."""
    prefix, _, address = identity_arn.rpartition("identity/")
    return f"{prefix}identity/{address.rpartition('@')[2]}"


def statements_of(policies: Any) -> tuple[Statement, ...]:
    """The Allow statements of a function's resolved `Policies` (inline statements; SAM policy templates are not
    used in the template, a test there sees to it)."""
    found: list[Statement] = []
    for policy in policies or []:
        if not isinstance(policy, Mapping):
            continue
        for statement in policy.get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            actions = statement.get("Action")
            resources = statement.get("Resource")
            leading = senders = None
            for condition in (statement.get("Condition") or {}).values():
                if isinstance(condition, Mapping) and "dynamodb:LeadingKeys" in condition:
                    patterns = condition["dynamodb:LeadingKeys"]
                    leading = tuple(patterns if isinstance(patterns, list) else [patterns])
                if isinstance(condition, Mapping) and "ses:FromAddress" in condition:
                    allowed = condition["ses:FromAddress"]
                    senders = tuple(str(a) for a in (allowed if isinstance(allowed, list) else [allowed]))
            found.append(
                Statement(
                    actions=frozenset(actions if isinstance(actions, list) else [actions]),
                    resources=tuple(str(r) for r in (resources if isinstance(resources, list) else [resources])),
                    leading_keys=leading,
                    from_addresses=senders,
                )
            )
    return tuple(found)


def permission_audit(template: Any, physical: Mapping[str, Any]) -> PermissionAudit:
    """The audit of a local stack: each function's statements resolved to the stack's resources."""
    resources = template.raw.get("Resources", {})
    policies = {
        logical_id: statements_of(template.resolve(resources[logical_id].get("Properties", {}).get("Policies")))
        for logical_id in template.functions
    }
    arns = {resource.ref: resource.attributes.get("Arn", resource.ref) for resource in physical.values()}
    hash_keys = {}
    for logical_id, table in template.tables.items():
        key = next((k["AttributeName"] for k in table.properties.get("KeySchema", []) if k["KeyType"] == "HASH"), "")
        if logical_id in physical:
            hash_keys[physical[logical_id].ref] = key
    return PermissionAudit(policies, arns, hash_keys, template.resolver.region, template.resolver.account_id)


_installed: PermissionAudit | None = None
_install_lock = threading.Lock()


def install(audit: PermissionAudit | None) -> None:
    """Check every botocore call of this process against `audit` (None: stop checking)."""
    global _installed
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    with _install_lock:
        _installed = audit
        if getattr(BaseClient, "_memberflow_permissions", False):
            return
        original = BaseClient._make_api_call

        def _make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            current = _installed
            if current is not None:
                service = self.meta.service_model.endpoint_prefix
                denied = current.check(service, operation_name, api_params)
                if denied is not None:
                    message = (
                        f"not authorized: the role of {denied.function} in template.yaml does not allow "
                        f"{denied.action} on {denied.resource}"
                    )
                    raise ClientError(
                        {
                            "Error": {"Code": "AccessDeniedException", "Message": message},
                            "ResponseMetadata": {"HTTPStatusCode": 400},
                        },
                        operation_name,
                    )
            return original(self, operation_name, api_params)

        BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]
        BaseClient._memberflow_permissions = True  # type: ignore[attr-defined]
