"""In-process Lambda runtime: a pool of execution environments ("containers") per function.

All functions share one process. Like Lambda, a function has a pool of containers: each one is a separate load
of the function's ``app.py`` (its own module object, ``memberflow_local_fn_<LogicalId>_<n>``, imported with
:func:`importlib.util.spec_from_file_location` after the function's environment has been put into
``os.environ``; the functions' variables agree with each other), runs one invocation at a time and is reused
while warm. A new container is only created when every existing one is busy, up to ``max_containers``; beyond
that an invocation waits for a free container (Lambda would throttle; the event sources wait instead).

What containers do *not* isolate: modules they import (the ``memberflow`` layer, Powertools, boto3) are imported
once per process and shared, so Powertools' process-wide state (its cold-start flag, the Metrics store) is shared
by a function's containers. Locally that only affects the ``cold_start`` log key and EMF output.

Caveat: a container's module ``__name__`` is its unique name, so anything keyed by ``__module__`` differs
between containers of one function, e.g. Powertools' default idempotency key prefix
(``<function name>.<module>.<qualname>``); give ``@idempotent_function`` a ``key_prefix`` (the product does).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .permissions import acting_as
from .template import FunctionSpec

log = logging.getLogger("memberflow_local.runtime")

Handler = Callable[[Any, Any], Any]

MODULE_PREFIX = "memberflow_local_fn_"


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that code (and Powertools) uses."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if not self._deadline:
            self._deadline = time.monotonic() + self.timeout_seconds
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"
        if not self.log_stream_name:
            self.log_stream_name = new_log_stream_name()

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def new_log_stream_name() -> str:
    return time.strftime("%Y/%m/%d") + "/[$LATEST]" + uuid.uuid4().hex


def apply_environment(environment: Mapping[str, str]) -> None:
    for key, value in environment.items():
        os.environ[key] = str(value)


class Container:
    """One execution environment: a loaded handler (and its module), used by one invocation at a time."""

    def __init__(self, runtime_name: str, index: int, handler: Handler, module: types.ModuleType | None) -> None:
        self.function = runtime_name
        self.index = index
        self.handler = handler
        self.module = module
        self.log_stream_name = new_log_stream_name()
        self.invocations = 0
        self.busy = False

    @property
    def module_name(self) -> str | None:
        return self.module.__name__ if self.module is not None else None

    def __repr__(self) -> str:
        return f"<Container {self.function}#{self.index} invocations={self.invocations} busy={self.busy}>"


_load_lock = threading.Lock()
"""Loading a container changes os.environ, sys.path and sys.modules: one load at a time in the process."""


class FunctionRuntime:
    """One function: a pool of at most ``max_containers`` containers, created on demand and reused while warm.

    With ``handler`` given (tests), every container runs that callable instead of loading ``app.py``.
    """

    def __init__(self, spec: FunctionSpec, handler: Handler | None = None, *, max_containers: int = 1) -> None:
        self.spec = spec
        self._injected = handler
        self.max_containers = max(1, int(max_containers))
        self.module_name = f"{MODULE_PREFIX}{spec.logical_id}"
        """Prefix of the containers' module names (``<module_name>_<n>``, n from 1)."""
        self._pool = threading.Condition()
        self._containers: list[Container] = []
        self._idle: list[Container] = []
        self._creating = 0
        self._next_index = 1

    # ------------------------------------------------------------------ pool
    @property
    def containers(self) -> list[Container]:
        """The containers created so far, in creation order."""
        with self._pool:
            return list(self._containers)

    @property
    def modules(self) -> list[types.ModuleType]:
        """The loaded ``app`` modules, one per container (none for an injected handler)."""
        return [c.module for c in self.containers if c.module is not None]

    @property
    def handler(self) -> Handler:
        """The first container's handler (loads it if no container exists yet)."""
        with self._pool:
            if self._containers:
                return self._containers[0].handler
        container = self._acquire()
        self._release(container)
        with self._pool:
            return self._containers[0].handler

    def _acquire(self) -> Container:
        with self._pool:
            while True:
                if self._idle:
                    container = self._idle.pop()  # the most recently used one: warmest
                    container.busy = True
                    return container
                if len(self._containers) + self._creating < self.max_containers:
                    self._creating += 1
                    index = self._next_index
                    self._next_index += 1
                    break
                self._pool.wait()
        try:
            container = self._create(index)
        except BaseException:
            with self._pool:
                self._creating -= 1
                self._pool.notify()
            raise
        with self._pool:
            self._creating -= 1
            container.busy = True
            self._containers.append(container)
        return container

    def _release(self, container: Container) -> None:
        with self._pool:
            container.busy = False
            if container in self._containers:  # not closed meanwhile
                self._idle.append(container)
            self._pool.notify()

    def _create(self, index: int) -> Container:
        if self._injected is not None:
            return Container(self.spec.logical_id, index, self._injected, None)
        handler, module = self._load(f"{self.module_name}_{index}")
        log.info("%s: container %d started (%s)", self.spec.logical_id, index, module.__name__)
        return Container(self.spec.logical_id, index, handler, module)

    def _load(self, module_name: str) -> tuple[Handler, types.ModuleType]:
        spec = self.spec
        module_file = spec.module_file
        if not module_file.is_file():
            raise FileNotFoundError(f"{spec.logical_id}: handler module {module_file} does not exist")
        with _load_lock:
            apply_environment(spec.environment)
            code_dir = str(spec.code_dir)
            if code_dir not in sys.path:
                # Lambda puts the code directory on sys.path: sibling modules of app.py must import.
                sys.path.append(code_dir)
            import_spec = importlib.util.spec_from_file_location(module_name, module_file)
            if import_spec is None or import_spec.loader is None:
                raise ImportError(f"cannot import {module_file}")
            module = importlib.util.module_from_spec(import_spec)
            sys.modules[module_name] = module
            try:
                import_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
        _own_metrics_store(module)
        handler = getattr(module, spec.handler_name, None)
        if not callable(handler):
            sys.modules.pop(module_name, None)
            raise AttributeError(f"{module_file} has no callable {spec.handler_name!r}")
        return handler, module

    def close(self) -> None:
        """Forget the containers (their modules leave ``sys.modules``); a later invocation starts a new one."""
        with self._pool:
            containers, self._containers, self._idle = self._containers, [], []
        for container in containers:
            name = container.module_name
            if name is not None and sys.modules.get(name) is container.module:
                del sys.modules[name]

    # ------------------------------------------------------------------ invocation
    def context(self, container: Container | None = None) -> LambdaContext:
        return LambdaContext(
            function_name=self.spec.function_name,
            memory_limit_in_mb=self.spec.memory_size,
            invoked_function_arn=self.spec.arn,
            timeout_seconds=self.spec.timeout,
            log_stream_name=container.log_stream_name if container is not None else "",
        )

    def invoke(self, event: Any, context: LambdaContext | None = None) -> Any:
        """Run one invocation in a free container (a new one if all are busy and the cap allows; else wait)."""
        container = self._acquire()
        try:
            context = context or self.context(container)
            container.invocations += 1
            started = time.monotonic()
            try:
                with acting_as(self.spec.logical_id):  # its AWS calls are checked against its role (permissions.py)
                    return container.handler(event, context)
            finally:
                self._report_overrun(started)
        finally:
            self._release(container)

    def _report_overrun(self, started: float) -> None:
        elapsed = time.monotonic() - started
        if elapsed > self.spec.timeout:
            log.warning(
                "%s ran %.1f s, longer than its %d s timeout (Lambda would have killed it)",
                self.spec.logical_id,
                elapsed,
                self.spec.timeout,
            )


def _own_metrics_store(module: types.ModuleType) -> None:
    """Give each Powertools `Metrics` of a container's module a store of its own.

    Powertools keeps the figures of every `Metrics` in class-level dicts, one store per process: in Lambda, one per
    container. Here every function shares this process, so without this one function's flush would publish another's
    figures under its own dimensions, and the other would then warn that it had nothing to publish."""
    metrics_type = getattr(sys.modules.get("aws_lambda_powertools.metrics.metrics"), "Metrics", None)
    if metrics_type is None:
        return
    for value in vars(module).values():
        if isinstance(value, metrics_type):
            provider = value.provider
            value.metric_set = provider.metric_set = {}
            value.dimension_set = provider.dimension_set = {}
            value.metadata_set = provider.metadata_set = {}
            value.default_dimensions = provider.default_dimensions = {}
