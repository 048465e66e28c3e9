"""In-process Lambda runtime: load a function's handler by file path and invoke it with a Lambda-like context.

All functions share one process. Each function's ``app.py`` is imported under a unique module name
(``memberflow_local_fn_<LogicalId>``) with :func:`importlib.util.spec_from_file_location`, after its
resolved environment has been put into ``os.environ`` (the functions' variables agree with each other).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .template import FunctionSpec

log = logging.getLogger("memberflow_local.runtime")

Handler = Callable[[Any, Any], Any]


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
            self.log_stream_name = time.strftime("%Y/%m/%d") + "/[$LATEST]" + uuid.uuid4().hex

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def apply_environment(environment: Mapping[str, str]) -> None:
    for key, value in environment.items():
        os.environ[key] = str(value)


class FunctionRuntime:
    """One function: lazily imported handler, invoked in-process."""

    def __init__(self, spec: FunctionSpec, handler: Handler | None = None) -> None:
        self.spec = spec
        self._handler = handler
        self._lock = threading.Lock()
        # One container: Lambda never runs two invocations at once in one execution environment, and handlers
        # keep per-container state (Powertools' BatchProcessor, for one) that relies on it.
        self._container = threading.Lock()
        self.module_name = f"memberflow_local_fn_{spec.logical_id}"

    @property
    def handler(self) -> Handler:
        if self._handler is None:
            with self._lock:
                if self._handler is None:
                    self._handler = self._load()
        return self._handler

    def _load(self) -> Handler:
        spec = self.spec
        module_file = spec.module_file
        if not module_file.is_file():
            raise FileNotFoundError(f"{spec.logical_id}: handler module {module_file} does not exist")
        apply_environment(spec.environment)
        code_dir = str(spec.code_dir)
        if code_dir not in sys.path:
            # Lambda puts the code directory on sys.path: sibling modules of app.py must import.
            sys.path.append(code_dir)
        import_spec = importlib.util.spec_from_file_location(self.module_name, module_file)
        if import_spec is None or import_spec.loader is None:
            raise ImportError(f"cannot import {module_file}")
        module = importlib.util.module_from_spec(import_spec)
        sys.modules[self.module_name] = module
        try:
            import_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(self.module_name, None)
            raise
        handler = getattr(module, spec.handler_name, None)
        if not callable(handler):
            raise AttributeError(f"{module_file} has no callable {spec.handler_name!r}")
        log.info("loaded %s from %s", spec.logical_id, module_file)
        return handler

    def context(self) -> LambdaContext:
        return LambdaContext(
            function_name=self.spec.function_name,
            memory_limit_in_mb=self.spec.memory_size,
            invoked_function_arn=self.spec.arn,
            timeout_seconds=self.spec.timeout,
        )

    def invoke(self, event: Any, context: LambdaContext | None = None) -> Any:
        handler = self.handler
        context = context or self.context()
        with self._container:
            started = time.monotonic()
            try:
                return handler(event, context)
            finally:
                self._report_overrun(started)

    def _report_overrun(self, started: float) -> None:
        elapsed = time.monotonic() - started
        if elapsed > self.spec.timeout:
            log.warning(
                "%s ran %.1f s, longer than its %d s timeout (Lambda would have killed it)",
                self.spec.logical_id,
                elapsed,
                self.spec.timeout,
            )
