"""The whole local stack: moto + resources from template.yaml + Mailchimp sandbox + HTTP API + SQS pollers.

    with LocalStack(LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0)) as stack:
        stack.endpoints()            # {"api_url", "webhooks_url", "aws_endpoint", "mailchimp_url"}
        stack.drain()                # wait until the queues are idle
        stack.fire_schedule("DripSchedule", at=datetime(...))

``run_forever()`` is what ``memberflow local up`` calls: it starts, prints endpoints and local keys,
and blocks until SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from .aws import MotoAws
from .environment import EnvironmentPatch
from .event_sources import EventSourceManager, SqsPoller
from .http_api import HttpApiBridge
from .permissions import PermissionAudit, permission_audit
from .permissions import install as install_permissions
from .runtime import FunctionRuntime, Handler
from .schedules import ScheduleRunner
from .services import SERVICES, LocalService
from .settings import LOCAL_ACCOUNT_ID, LOCAL_REGION, LocalSettings
from .template import FunctionSpec, HttpApiRoute, LocalTemplate, PhysicalResource, ScheduleSource, SqsSource

log = logging.getLogger("memberflow_local.stack")

AUDIENCE_MERGE_FIELDS = (("PLATFORM", "Platform", "text"), ("JOINED", "Joined", "date"))
LONG_POLL_SECONDS = 20
"""The pollers' ReceiveMessage wait, as Lambda's: an idle stack makes no call until a message comes."""


class LocalStack:
    """Runs template.yaml locally. Use as a context manager, or ``start()``/``stop()``.

    ``mailchimp=False`` skips the Mailchimp sandbox (MailchimpApiUrl then keeps its template default
    unless ``settings.extra_parameter_overrides`` sets it); ``services`` says which of the other sandboxes
    (services.SERVICES) to start: all (True), none (False) or those named. ``handlers`` maps function logical ids to
    callables used instead of loading ``app.py`` (tests). ``pollers=False`` does not start the SQS
    pollers (invoke or drain by hand).
    """

    _active: LocalStack | None = None
    _active_lock = threading.Lock()

    def __init__(
        self,
        settings: LocalSettings | None = None,
        *,
        template_path: Path | str | None = None,
        mailchimp: bool = True,
        services: bool | Iterable[str] = True,
        pollers: bool = True,
        handlers: Mapping[str, Handler] | None = None,
        preload: bool = False,
    ) -> None:
        self.settings = settings or LocalSettings.from_env()
        self.template_path = Path(template_path or self.settings.template_path)
        self.start_mailchimp = mailchimp
        self.start_services = services
        self.start_pollers = pollers
        self.preload = preload
        self._handlers = dict(handlers or {})
        self.aws = MotoAws(self.settings.host, self.settings.aws_port, LOCAL_REGION)
        self.mailchimp: Any = None
        self.services: dict[str, LocalService] = {}
        self.template: LocalTemplate | None = None
        self.physical: dict[str, PhysicalResource] = {}
        self.runtimes: dict[str, FunctionRuntime] = {}
        self.permissions: PermissionAudit | None = None
        """Every function's AWS calls checked against its role in template.yaml (denied calls in `denied`)."""
        self.http: HttpApiBridge | None = None
        self.event_sources = EventSourceManager(end_long_polls=self.aws.end_long_polls)
        self.schedules: ScheduleRunner | None = None
        self._environment = EnvironmentPatch()
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        if self._started:
            return self
        with LocalStack._active_lock:
            # moto keeps its state per process and start() resets it: one stack at a time.
            if LocalStack._active is not None:
                raise RuntimeError("another LocalStack is running in this process; stop it first")
            LocalStack._active = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def _start(self) -> None:
        s = self.settings
        self.aws.start()
        mailchimp_url: str | None = None
        if self.start_mailchimp:
            from memberflow_sandboxes.mailchimp import MailchimpSandbox

            self.mailchimp = MailchimpSandbox(
                host=s.host,
                port=s.mailchimp_port,
                api_key=s.mailchimp_api_key,
                lists=(s.mailchimp_list_id,),
                # The merge fields the README asks an operator to add to the audience.
                merge_fields=AUDIENCE_MERGE_FIELDS,
                # The welcome journey the stack's parameters name: a trigger for any other answers 404, as an
                # account without that journey does.
                journeys=((s.welcome_journey_id, s.welcome_journey_step_id),),
            )
            self.mailchimp.start()
            mailchimp_url = self.mailchimp.url
        overrides = s.parameter_overrides(mailchimp_url)
        secrets = s.secret_values()
        for name, build in SERVICES:
            if self.start_services is False or (self.start_services is not True and name not in self.start_services):
                continue
            service = self.services[name] = build(s)
            service.start()
            overrides.update(service.parameter_overrides())
            for logical_id, value in service.secret_values().items():
                secrets[logical_id] = merge_json_secret(secrets.get(logical_id), value)
        # An override the operator set wins over a sandbox's default.
        overrides.update({k: str(v) for k, v in s.extra_parameter_overrides.items()})
        load: dict[str, Any] = dict(
            region=LOCAL_REGION,
            account_id=LOCAL_ACCOUNT_ID,
            stack_name=s.stack_name,
            ignore_unknown_parameters=True,
        )
        first = LocalTemplate.load(self.template_path, overrides, **load)
        self.physical = self.aws.create_resources(first, secrets)
        self.template = template = LocalTemplate.load(self.template_path, overrides, self.physical, **load)

        self._set_environment(template)
        self.permissions = permission_audit(template, self.physical)
        install_permissions(self.permissions)
        _fresh_containers()
        self.runtimes = {
            logical_id: FunctionRuntime(spec, self._handlers.get(logical_id), max_containers=container_cap(spec, s))
            for logical_id, spec in template.functions.items()
        }
        if self.preload:
            for runtime in self.runtimes.values():
                try:
                    runtime.handler  # noqa: B018 - import now to surface errors at start
                except Exception as error:  # noqa: BLE001
                    log.warning("%s cannot be loaded yet: %s", runtime.spec.logical_id, error)

        self.schedules = ScheduleRunner(template.schedules(), self.runtimes)
        for spec, source in template.sqs_sources():
            if not source.enabled:
                continue
            queue = self.physical[source.queue_logical_id]
            self.event_sources.add(
                SqsPoller(
                    source,
                    self.runtimes[spec.logical_id],
                    queue_url=queue.ref,
                    queue_arn=queue.attributes["Arn"],
                    client_factory=lambda: self.aws.client("sqs"),
                    counts=self.aws.queue_counts,
                    workers=s.sqs_max_workers,
                    wait_time_seconds=LONG_POLL_SECONDS,
                )
            )
        if self.start_pollers:
            self.event_sources.start()

        self.http = HttpApiBridge(
            [(route, self.runtimes[spec.logical_id]) for spec, route in template.http_routes()],
            host=s.host,
            port=s.api_port,
            fire_schedule=self.schedules.fire_detailed,
            schedule_names=self.schedules.names,
            drain=self.drain,
        )
        self.http.start()
        if self.mailchimp is not None:
            # As an operator does in Mailchimp (Audience, Settings, Webhooks): the sandbox checks the URL with a GET,
            # then sends the member's own changes and the admin's (not the API's, Mailchimp's default).
            self.mailchimp.add_webhook(s.mailchimp_list_id, self.mailchimp_webhook_url())
        for service in self.services.values():
            service.bind(self)

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None
        self.event_sources.stop()
        self.event_sources = EventSourceManager(end_long_polls=self.aws.end_long_polls)
        if self.mailchimp is not None:
            try:
                self.mailchimp.stop()
            finally:
                self.mailchimp = None
        for service in self.services.values():
            try:
                service.stop()
            except Exception as error:  # noqa: BLE001 - stop the others anyway
                log.warning("the %s sandbox did not stop cleanly: %s", service.name, error)
        self.services = {}
        for runtime in self.runtimes.values():
            runtime.close()
        install_permissions(None)
        self.aws.stop()
        self._environment.restore()
        self._started = False
        with LocalStack._active_lock:
            if LocalStack._active is self:
                LocalStack._active = None

    def _set_environment(self, template: LocalTemplate) -> None:
        env: dict[str, str] = {}
        for spec in template.functions.values():
            for key, value in spec.environment.items():
                if key in env and env[key] != value:
                    # One process, one environment: the second function would silently run with the first's value.
                    raise ValueError(
                        f"functions disagree on {key} ({env[key]!r} vs {value!r}): the local stack runs every "
                        "function in one process, so each must name its own variable"
                    )
                env[key] = value
        if self.settings.disable_tracing:
            env["POWERTOOLS_TRACE_DISABLED"] = "true"
        self._environment.set(env)

    # ------------------------------------------------------------------ accessors
    def _require_template(self) -> LocalTemplate:
        if self.template is None:
            raise RuntimeError("the local stack is not started")
        return self.template

    def mailchimp_webhook_url(self) -> str:
        if self.http is None:
            raise RuntimeError("the local stack is not started")
        return f"{self.http.url}/webhooks/mailchimp/{self.settings.mailchimp_webhook_secret}"

    def endpoints(self) -> dict[str, str | None]:
        api_url = self.http.url if self.http else None
        return {
            "api_url": api_url,
            "webhooks_url": f"{api_url}/webhooks" if api_url else None,
            "aws_endpoint": self.aws.endpoint if self.aws.running else None,
            "mailchimp_url": self.mailchimp.url if self.mailchimp is not None else None,
            **{f"{name}_url": service.url for name, service in self.services.items()},
        }

    def _physical(self, logical_id: str, kind: str, names: Mapping[str, Any]) -> PhysicalResource:
        if logical_id not in names:
            raise KeyError(f"no {kind} {logical_id!r} in the template; known: {', '.join(sorted(names))}")
        return self.physical[logical_id]

    def queue_url(self, logical_id: str) -> str:
        return self._physical(logical_id, "queue", self._require_template().queues).ref

    def queue_arn(self, logical_id: str) -> str:
        return self._physical(logical_id, "queue", self._require_template().queues).attributes["Arn"]

    def physical_id(self, logical_id: str) -> str:
        """The physical id (Ref) of any resource of the template: a table or bucket name, a queue URL, a secret ARN."""
        self._require_template()
        if logical_id not in self.physical:
            raise KeyError(f"no resource {logical_id!r} in the template")
        return self.physical[logical_id].ref

    def table_name(self, logical_id: str) -> str:
        return self._physical(logical_id, "table", self._require_template().tables).ref

    def secret_arn(self, logical_id: str) -> str:
        return self._physical(logical_id, "secret", self._require_template().secrets).ref

    def bucket_name(self, logical_id: str) -> str:
        return self._physical(logical_id, "bucket", self._require_template().buckets).ref

    def function(self, logical_id: str) -> FunctionRuntime:
        if logical_id not in self.runtimes:
            raise KeyError(f"no function {logical_id!r}; known: {', '.join(sorted(self.runtimes))}")
        return self.runtimes[logical_id]

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke a function directly (like ``sam local invoke``) with a Lambda-like context."""
        return self.function(logical_id).invoke(event)

    def client(self, service: str) -> Any:
        """A boto3 client for the local moto server."""
        return self.aws.client(service)

    # ------------------------------------------------------------------ operations
    def drain(self, timeout: float = 30) -> bool:
        """Wait until every SQS event source's queue is empty (nothing visible, in flight or delayed)."""
        return self.event_sources.drain(timeout)

    def dead_letters(self, logical_id: str) -> list[dict[str, str]]:
        """A look into a dead-letter queue, without consuming it: each message's attributes and body."""
        sqs, url = self.client("sqs"), self.queue_url(logical_id)
        seen: dict[str, dict[str, str]] = {}
        for _ in range(5):
            answer = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=2, MessageAttributeNames=["All"]
            )
            for message in answer.get("Messages", []):
                attributes = message.get("MessageAttributes", {})
                seen[message["MessageId"]] = {
                    "body": message["Body"],
                    **{name: value.get("StringValue", "") for name, value in attributes.items()},
                }
            if not answer.get("Messages"):
                break
        return list(seen.values())  # they become visible again 2 s later: the look consumed nothing

    def fire_schedule(self, name: str, at: datetime | None = None) -> Any:
        """Invoke a scheduled function now, as if its schedule fired at ``at`` (default: now)."""
        if self.schedules is None:
            raise RuntimeError("the local stack is not started")
        return self.schedules.fire(name, at)

    def schedule_names(self) -> list[str]:
        return self.schedules.names() if self.schedules else []

    def print_endpoints(self, file: TextIO | None = None, *, show_secrets: bool = True) -> None:
        out = file or sys.stdout
        template = self._require_template()
        ep = self.endpoints()
        s = self.settings
        lines = [
            "memberflow local stack",
            f"  HTTP API      {ep['api_url']}",
        ]
        for spec, route in template.http_routes():
            lines.append(f"                {route.route_key}  -> {spec.logical_id}")
        lines += [
            f"  admin         POST {ep['api_url']}/_local/schedules/<name>",
            f"                POST {ep['api_url']}/_local/drain",
            f"  AWS (moto)    {ep['aws_endpoint']}",
            f"                (AWS_ENDPOINT_URL; region {LOCAL_REGION}, keys testing/testing)",
            f"  Mailchimp     {ep['mailchimp_url'] or '(not started)'}",
            *(f"  {name:<13} {service.url}" for name, service in self.services.items()),
            "  tables        " + ", ".join(f"{k}={self.table_name(k)}" for k in template.tables),
            "  queues        " + ", ".join(f"{k}={self.queue_url(k)}" for k in template.queues),
            "  secrets       " + ", ".join(f"{k}={self.secret_arn(k)}" for k in template.secrets),
            "  schedules     " + (", ".join(self.schedule_names()) or "(none)"),
        ]
        if show_secrets:
            lines += [
                "local keys (not secret; for signing test requests):",
                f"  slack signing secret       {s.slack_signing_secret}",
                f"  discourse secret           {s.discourse_secret}",
                f"  generic HMAC secret        {s.generic_hmac_secret}",
                f"  discord relay private key  {s.discord_relay_private_key}",
                f"  discord relay public key   {s.discord_relay_public_key}",
                f"  mailchimp api key          {s.mailchimp_api_key}  (list {s.mailchimp_list_id})",
            ]
        print("\n".join(lines), file=out, flush=True)

    def run_forever(self, *, on_ready: Callable[[LocalStack], None] | None = None) -> None:
        """Start, print endpoints and keys, block until SIGINT/SIGTERM, then stop."""
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.preload = True
        stop = threading.Event()
        previous: dict[int, Any] = {}
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        try:
            self.start()
            self.print_endpoints()
            if on_ready is not None:
                on_ready(self)
            print("Ctrl-C to stop.", flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def container_cap(spec: FunctionSpec, settings: LocalSettings) -> int:
    """How many containers a function may run at once: per enabled SQS event source as many as its pollers
    (``MaximumConcurrency`` bounded by ``sqs_max_workers``), ``http_max_containers`` if it serves HTTP API routes
    and one for its schedules; added up, at least 1 (direct invocations only)."""
    cap = 0
    for event in spec.events:
        if isinstance(event, SqsSource) and event.enabled:
            cap += SqsPoller.worker_count(event, settings.sqs_max_workers)
    if any(isinstance(event, HttpApiRoute) for event in spec.events):
        cap += max(1, settings.http_max_containers)
    if any(isinstance(event, ScheduleSource) for event in spec.events):
        cap += 1
    return max(1, cap)


def merge_json_secret(current: str | None, added: str) -> str:
    """A secret two parties fill (the webhook secrets: the stack's sources and a sandbox's own): JSON objects are
    merged, key by key; anything else is replaced."""
    import json

    try:
        old, new = json.loads(current) if current else None, json.loads(added)
    except ValueError:
        return added
    if isinstance(old, dict) and isinstance(new, dict):
        return json.dumps({**old, **new})
    return added


def _fresh_containers() -> None:
    """Functions share this process: forget clients and settings built for an earlier stack, as new Lambda
    containers would. Called once per stack start; containers created later share what the layer builds."""
    from memberflow.runtime.container import reset

    reset()
