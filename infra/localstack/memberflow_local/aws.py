"""moto in server mode, and the template's DynamoDB tables, SQS queues and secrets created in it.

:class:`MotoAws` starts ``moto.server.ThreadedMotoServer`` and points the whole process at it through
``AWS_ENDPOINT_URL`` (boto3 >= 1.31 honours it), so the functions need no special code.
Physical names are ``memberflow-local-<LogicalId>``. moto keeps its state per process: ``start()``
resets it (``POST /moto-api/reset``) so a new stack starts empty.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets as _random
import string
import threading
from collections.abc import Mapping
from typing import Any

import boto3
import requests
from botocore.config import Config

from memberflow_sandboxes.base import SHUTDOWN_POLL_SECONDS

from .environment import EnvironmentPatch
from .settings import LOCAL_ACCOUNT_ID, LOCAL_REGION
from .template import LocalTemplate, PhysicalResource, QueueSpec, physical_name

log = logging.getLogger("memberflow_local.aws")

AWS_ENV = {
    "AWS_DEFAULT_REGION": LOCAL_REGION,
    "AWS_REGION": LOCAL_REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
_UNSET_ENV = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE")

_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


CLIENT_CONNECTIONS = 50
_SESSION_LOCK = threading.Lock()  # a session is not thread-safe, the clients it makes are


@functools.cache
def _session() -> boto3.session.Session:
    """The process's one session for local clients (called under `_SESSION_LOCK`): a new one would load botocore's
    service models and endpoint data again, for every stack a process starts."""
    return boto3.session.Session()


class MotoAws:
    """A moto server on ``host:port`` (port 0 = any free port) and the process environment to use it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4566, region: str = LOCAL_REGION) -> None:
        self.host = host
        self.port = port
        self.region = region
        self._server: Any = None
        self._environment = EnvironmentPatch()
        self._clients: dict[tuple[str, str], Any] = {}
        """One client per service and server, shared: boto3's clients are thread-safe, and making one costs more
        than most local calls (its service model, its event hooks, its endpoint rules)."""

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("moto server not started")
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def start(self, *, set_environment: bool = True, reset: bool = True) -> str:
        if self._server is not None:
            return self.endpoint
        server = _quiet_moto_server(self.host, self.port)
        server.start()
        self._server = server
        if reset:
            self.reset()
        if set_environment:
            self._environment.set(self.environment())
            self._environment.unset(_UNSET_ENV)
        log.info("moto server on %s", self.endpoint)
        return self.endpoint

    def stop(self) -> None:
        if self._server is None:
            return
        try:
            self._server.stop()
        finally:
            self._server = None
            self._environment.restore()
            with _SESSION_LOCK:
                self._clients.clear()

    def reset(self) -> None:
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def queue_counts(self, queue_url: str) -> dict[str, int]:
        """A queue's visible, in-flight and delayed messages, as GetQueueAttributes names them, read from the moto
        server's state in this process. Drains ask for every queue's counts several times a second; moto answers
        GetQueueAttributes by building all of a queue's attributes once per name asked, walking its messages each
        time, so over HTTP these questions cost more than the work being waited for."""
        from moto.sqs.models import sqs_backends

        account, name = queue_url.rstrip("/").split("/")[-2:]
        queue = sqs_backends[account][self.region].get_queue(name)
        with queue._messages_lock:
            return {
                "ApproximateNumberOfMessages": queue.approximate_number_of_messages,
                "ApproximateNumberOfMessagesNotVisible": queue.approximate_number_of_messages_not_visible,
                "ApproximateNumberOfMessagesDelayed": queue.approximate_number_of_messages_delayed,
            }

    def end_long_polls(self) -> None:
        """Every long poll now waiting in moto answers at once (the stack is stopping its pollers)."""
        from memberflow_local import moto_long_polls

        moto_long_polls.end_long_polls()

    def environment(self) -> dict[str, str]:
        return {**AWS_ENV, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self, service: str) -> Any:
        """The boto3 client for `service` on this moto server (the same one each time)."""
        key = (service, self.endpoint)
        with _SESSION_LOCK:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = _session().client(
                    service,
                    region_name=self.region,
                    endpoint_url=key[1],
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    # Shared by the stack's pollers (a long poll holds its connection) and whoever else asks.
                    config=Config(max_pool_connections=CLIENT_CONNECTIONS),
                )
            return client

    # ------------------------------------------------------------------ resources
    def create_resources(
        self, template: LocalTemplate, secret_values: Mapping[str, str] | None = None
    ) -> dict[str, PhysicalResource]:
        """Create the template's tables, queues (dead-letter queues first) and secrets.

        ``secret_values`` (logical id -> SecretString) are the values put into the secrets after creating them
        (the template gives none, like a deployed stack before its one-time setup).
        Returns what ``Ref``/``GetAtt`` give for each created resource; reload the template with it
        (``LocalTemplate.load(..., physical=...)``) to resolve the functions' environment.
        """
        physical: dict[str, PhysicalResource] = {}
        for spec in template.tables.values():
            physical[spec.logical_id] = self.create_table(spec.logical_id, spec.properties)
        for spec in _queue_order(template.queues):
            physical[spec.logical_id] = self.create_queue(spec, physical)
        for spec in template.secrets.values():
            value = (secret_values or {}).get(spec.logical_id)
            physical[spec.logical_id] = self.create_secret(spec.logical_id, spec.properties, value)
        for spec in template.buckets.values():
            physical[spec.logical_id] = self.create_bucket(spec.logical_id, spec.properties)
        for spec in template.workgroups.values():
            name = str(spec.properties.get("Name") or physical_name(spec.logical_id))
            # moto's Athena answers every query at once, with no rows: the health report runs on DuckDB locally.
            self.client("athena").create_work_group(Name=name)
            physical[spec.logical_id] = PhysicalResource(ref=name)
        return physical

    def create_bucket(self, logical_id: str, props: Mapping[str, Any]) -> PhysicalResource:
        """A bucket named as CloudFormation would (lower case); its lifecycle rules are not emulated."""
        name = str(props.get("BucketName") or physical_name(logical_id)).lower()
        self.client("s3").create_bucket(Bucket=name)
        return PhysicalResource(ref=name, attributes={"Arn": f"arn:aws:s3:::{name}", "DomainName": name})

    def create_table(self, logical_id: str, props: Mapping[str, Any]) -> PhysicalResource:
        ddb = self.client("dynamodb")
        name = props.get("TableName") or physical_name(logical_id)
        billing = props.get("BillingMode", "PROVISIONED")
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": billing,
        }
        throughput = props.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        if billing == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = _throughput(throughput)
        gsis = []
        for gsi in props.get("GlobalSecondaryIndexes") or []:
            index = {k: gsi[k] for k in ("IndexName", "KeySchema", "Projection")}
            if billing == "PROVISIONED":
                index["ProvisionedThroughput"] = _throughput(gsi.get("ProvisionedThroughput") or throughput)
            gsis.append(index)
        if gsis:
            kwargs["GlobalSecondaryIndexes"] = gsis
        lsis = [
            {k: lsi[k] for k in ("IndexName", "KeySchema", "Projection")}
            for lsi in props.get("LocalSecondaryIndexes") or []
        ]
        if lsis:
            kwargs["LocalSecondaryIndexes"] = lsis
        stream = props.get("StreamSpecification")
        if stream:
            kwargs["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        description = ddb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and _truthy(ttl.get("Enabled")):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        attributes = {"Arn": description["TableArn"]}
        if description.get("LatestStreamArn"):
            attributes["StreamArn"] = description["LatestStreamArn"]
        return PhysicalResource(ref=name, attributes=attributes)

    def create_queue(self, spec: QueueSpec, created: Mapping[str, PhysicalResource]) -> PhysicalResource:
        sqs = self.client("sqs")
        props = spec.properties
        fifo = _truthy(props.get("FifoQueue"))
        name = props.get("QueueName") or physical_name(spec.logical_id) + (".fifo" if fifo else "")
        attributes = {k: _attr(props[k]) for k in _QUEUE_ATTRIBUTES if k in props}
        if props.get("RedrivePolicy"):
            policy = props["RedrivePolicy"]
            policy = json.loads(policy) if isinstance(policy, str) else dict(policy)
            if spec.dead_letter_queue and spec.dead_letter_queue in created:
                policy["deadLetterTargetArn"] = created[spec.dead_letter_queue].attributes["Arn"]
            policy["maxReceiveCount"] = int(policy["maxReceiveCount"])
            attributes["RedrivePolicy"] = json.dumps(policy)
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return PhysicalResource(ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url})

    def create_secret(self, logical_id: str, props: Mapping[str, Any], value: str | None = None) -> PhysicalResource:
        sm = self.client("secretsmanager")
        name = props.get("Name") or physical_name(logical_id)
        if value is None:
            value = props.get("SecretString")
        if value is None and props.get("GenerateSecretString") is not None:
            value = _generate_secret(props["GenerateSecretString"])
        # Neither: an empty secret, as CloudFormation creates it (its value is put once after deploying).
        kwargs: dict[str, Any] = {"Name": name} if value is None else {"Name": name, "SecretString": value}
        if props.get("Description"):
            kwargs["Description"] = props["Description"]
        arn = sm.create_secret(**kwargs)["ARN"]
        return PhysicalResource(ref=arn, attributes={"Id": arn})

    def put_secret_value(self, secret_id: str, value: str) -> None:
        self.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=value)


def _quiet_moto_server(host: str, port: int) -> Any:
    """``ThreadedMotoServer`` without an access-log line per AWS call, keeping connections open as AWS does."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    from memberflow_local import (
        moto_atomic,
        moto_conditions,
        moto_dispatch,
        moto_long_polls,
        moto_query,
        moto_results,
        moto_sqs,
        moto_updates,
    )
    from memberflow_sandboxes.keepalive import KeepAlive

    moto_atomic.install()
    moto_conditions.install()
    moto_dispatch.install()
    moto_long_polls.install()
    moto_query.install()
    moto_results.install()
    moto_sqs.install()
    moto_updates.install()

    class QuietHandler(KeepAlive, MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    class QuietServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = _dispatcher_remembering_backends(DomainDispatcherApplication)(create_backend_app)
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=QuietHandler)
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=SHUTDOWN_POLL_SECONDS)

    return QuietServer(ip_address=host, port=port, verbose=False)


def _dispatcher_remembering_backends(dispatcher: type) -> type:
    """moto's request dispatcher, remembering which backend serves a host. moto works it out anew for every request
    (a listing of its package directory, then hundreds of URL patterns), under a lock every request shares: about a
    fifth of a local AWS call."""

    class Dispatcher(dispatcher):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host not in self._backends:
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    return Dispatcher


def _queue_order(queues: Mapping[str, QueueSpec]) -> list[QueueSpec]:
    """Dead-letter queues before the queues that redrive into them."""
    ordered: list[QueueSpec] = []
    seen: set[str] = set()

    def visit(spec: QueueSpec, path: tuple[str, ...] = ()) -> None:
        if spec.logical_id in seen:
            return
        if spec.logical_id in path:
            raise ValueError(f"redrive cycle: {' -> '.join(path)}")
        if spec.dead_letter_queue in queues:
            visit(queues[spec.dead_letter_queue], (*path, spec.logical_id))
        seen.add(spec.logical_id)
        ordered.append(spec)

    for spec in queues.values():
        visit(spec)
    return ordered


def _throughput(value: Mapping[str, Any]) -> dict[str, int]:
    return {k: int(value[k]) for k in ("ReadCapacityUnits", "WriteCapacityUnits")}


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _attr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _generate_secret(spec: Mapping[str, Any]) -> str:
    length = int(spec.get("PasswordLength", 32))
    excluded = set(spec.get("ExcludeCharacters", ""))
    alphabet = "".join(c for c in string.ascii_letters + string.digits if c not in excluded)
    password = "".join(_random.choice(alphabet) for _ in range(length))
    template = spec.get("SecretStringTemplate")
    key = spec.get("GenerateStringKey")
    if template and key:
        data = json.loads(template)
        data[key] = password
        return json.dumps(data)
    return password


__all__ = ["MotoAws", "LOCAL_ACCOUNT_ID", "LOCAL_REGION"]
