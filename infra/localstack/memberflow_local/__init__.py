"""memberflow's local stack: template.yaml run on moto, with the handlers invoked in-process.

The template is the single source of truth: tables, queues, secrets, functions, routes, SQS event
sources and schedules are all read from it (see :mod:`memberflow_local.template`).

Modules: ``settings`` (ports, local secrets, parameter overrides), ``template`` (YAML + intrinsics),
``aws`` (moto server + resources), ``runtime`` (per-function pools of containers, Lambda context), ``http_api``
(HTTP API payload-2.0 bridge and admin routes), ``event_sources`` (SQS pollers), ``schedules``
(on-demand scheduled events), ``stack`` (:class:`LocalStack`).
"""

from .settings import LocalSettings
from .stack import LocalStack
from .template import (
    FunctionSpec,
    HttpApiRoute,
    LocalTemplate,
    PhysicalResource,
    ScheduleSource,
    SqsSource,
    TemplateError,
)

__all__ = [
    "FunctionSpec",
    "HttpApiRoute",
    "LocalSettings",
    "LocalStack",
    "LocalTemplate",
    "PhysicalResource",
    "ScheduleSource",
    "SqsSource",
    "TemplateError",
]
