"""accept_webhook: one delivery from raw bytes to a durably queued member event, or a refusal saying why.

Order of checks: unknown source (404), oversize body (413), signature and replay window (401), media type
(415), JSON and payload shape (400); then platform handshakes are answered, events we do not act on are
acknowledged as ignored, and member events are written to the queue before the answer says "queued".

A platform that retries (Slack) is told not to retry a refused request, and a retry of a delivery already queued
is answered without queueing it again.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, parse_qsl

from pydantic import ValidationError

from memberflow.errors import QueueUnavailable, ServiceUnavailable
from memberflow.events.base import Event
from memberflow.intake.errors import ROOT_FIELD, IntakeError, problems_from
from memberflow.intake.registry import SourceRegistry, build_registry
from memberflow.intake.source import Accepted, Ignored, Redelivery, RetryingSource, WebhookRequest, WebhookSource
from memberflow.models import check_email
from memberflow.pipeline.envelope import QueuedEvent
from memberflow.privacy import mask_email
from memberflow.signatures import REPLAY_WINDOW_SECONDS, SignatureError
from memberflow.trace import (
    Outcome,
    Step,
    TraceRecord,
    TraceRecorder,
    email_subject,
    rejections_subject,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 256 * 1024
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


class EventRouter(Protocol):
    def send(self, event: QueuedEvent) -> object:
        """Store the event durably in the queue of its type's destination, or raise `QueueUnavailable`."""


class DeliveryLog(Protocol):
    """Deliveries queued recently, for platforms that deliver again what they think was lost."""

    def queued_before(self, idempotency_key: str, now: datetime) -> str | None:
        """The correlation id the event was queued under, if it was queued recently; else None."""

    def remember(self, idempotency_key: str, correlation_id: str, now: datetime) -> None:
        """Note that the event is queued, for a while (longer than the platform keeps retrying)."""


class Watcher(Protocol):
    """Another capability's look at every verified delivery (escalation rules on messages, reactions, flags): the
    extra events it means, with their idempotency keys, queued besides the delivery's own event."""

    def __call__(self, source: str, payload: Any, headers: Mapping[str, str]) -> list[tuple[Event, str]]: ...


class IntakeMisconfigured(RuntimeError):
    """The webhook secrets lack what a source needs: an operator must fix it, the sender cannot."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class IntakeDeps:
    queue: EventRouter
    trace: TraceRecorder
    secrets: Callable[[], Mapping[str, Any]]
    """The webhook secrets JSON (slack_signing_secret, discourse_secret, discord_relay_public_key, ...)."""
    clock: Callable[[], datetime] = utc_now
    registry: SourceRegistry = field(default_factory=build_registry)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    replay_window_seconds: int = REPLAY_WINDOW_SECONDS
    deliveries: DeliveryLog | None = None
    """Where deliveries of retrying platforms are remembered, so their retries are not queued twice."""
    watchers: tuple[Watcher, ...] = ()


@dataclass(frozen=True)
class IntakeResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    outcome: Literal["accepted", "rejected", "failed"] = "accepted"
    """accepted: 2xx (queued, ignored or answered); rejected: bad input; failed: ours, sender should retry."""
    source: str = "unknown"
    """The registered source name, or "unknown": safe to use as a metric dimension."""


def accept_webhook(
    source_name: str,
    raw_body: bytes,
    headers: Mapping[str, str],
    deps: IntakeDeps,
    *,
    correlation_id: str | None = None,
    path: str = "",
    query: Mapping[str, str] | None = None,
) -> IntakeResponse:
    correlation_id = correlation_id or uuid.uuid4().hex
    try:
        return _accept(source_name, raw_body, headers, deps, correlation_id, path, query)
    except Exception as error:
        # A defect of ours, never the sender's: a JSON 503 makes the platform deliver again (a bare 500 is not
        # JSON, and some platforms give up on it), and the log says where, with the correlation id to find it.
        return unexpected_failure(error, source_name, correlation_id, deps.registry)


def unexpected_failure(
    error: BaseException, source_name: str, correlation_id: str | None, registry: SourceRegistry | None = None
) -> IntakeResponse:
    """The answer to an error nobody foresaw: 503 with a JSON body, logged with the correlation id and where it
    happened (not the exception's text, which may quote the delivery and so personal data)."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "unknown"
    source = source_name[:64] if registry is not None and source_name in registry else "unknown"
    logger.error(
        "webhook not handled: unexpected error",
        extra={
            "source": source,
            "correlation_id": correlation_id,
            "error_type": type(error).__name__,
            "where": where,
        },
    )
    body = {
        "error": "internal_error",
        "detail": f"the delivery could not be handled; please deliver it again (correlation id {correlation_id})",
    }
    return IntakeResponse(503, body, outcome="failed", source=source)


def _accept(
    source_name: str,
    raw_body: bytes,
    headers: Mapping[str, str],
    deps: IntakeDeps,
    correlation_id: str,
    path: str,
    query: Mapping[str, str] | None,
) -> IntakeResponse:
    headers = {name.lower(): value for name, value in headers.items()}
    request = WebhookRequest(source_name, raw_body, headers, path, dict(query or {}))
    received_at = deps.clock().astimezone(UTC)
    source: WebhookSource | None = None
    redelivery: Redelivery | None = None
    try:
        source = deps.registry.get(source_name)
        if len(raw_body) > deps.max_body_bytes:
            raise IntakeError(
                413,
                "payload_too_large",
                f"the body is {len(raw_body)} bytes; at most {deps.max_body_bytes} are accepted",
            )
        _verify(source, request, received_at, deps)
        redelivery = _redelivery(source, headers)
        payload = _parse_body(source, raw_body, headers)
        interpretation = source.interpret(payload, headers)
    except IntakeError as error:
        return _rejected(error, source_name, source, raw_body, headers, received_at, correlation_id, deps)
    except IntakeMisconfigured as problem:
        # Ours, not the sender's: a 503 makes the platform deliver again once an operator has fixed the secret.
        logger.error("webhook secrets misconfigured", extra={"source": source_name[:64], "problem": str(problem)})
        body = {"error": "intake_misconfigured", "detail": f"{source_name[:64]} deliveries cannot be verified yet"}
        return IntakeResponse(503, body, outcome="failed", source=source.name if source else "unknown")

    # A redelivery runs the watchers too: the platform retries because an earlier attempt was not answered 2xx, so
    # their events may never have been queued (those that were are deduplicated by their keys). A delivery known to
    # be queued in full is answered below without queueing anything.
    also = _watched(source.name, payload, headers, deps.watchers) if deps.watchers else []
    if isinstance(interpretation, Ignored):
        if also:
            return _queue_also(also, None, source.name, received_at, correlation_id, deps)
        logger.info("webhook ignored", extra={"source": source.name, "reason": interpretation.reason})
        return IntakeResponse(200, {"status": "ignored", "reason": interpretation.reason}, source=source.name)
    if isinstance(interpretation, Accepted):
        try:
            queued = QueuedEvent(
                idempotency_key=interpretation.idempotency_key,
                correlation_id=correlation_id,
                source=source.name,
                received_at=received_at,
                event=interpretation.event,
            )
        except ValidationError as error:
            # The idempotency key is made of the platform's ids (an event id, a resource id, a workspace).
            unusable = IntakeError(
                400,
                "invalid_payload",
                "the event's ids cannot identify it",
                problems_from(error, {"idempotency_key": "id"}),
            )
            return _rejected(unusable, source_name, source, raw_body, headers, received_at, correlation_id, deps)
        if redelivery is not None and (earlier := _queued_before(queued, deps)):
            logger.info(
                "redelivery of a queued event: not queued again",
                extra={"source": source.name, "idempotency_key": queued.idempotency_key, "queued_as": earlier},
            )
            body = {"status": "already_queued", "idempotency_key": queued.idempotency_key, "correlation_id": earlier}
            return IntakeResponse(200, body, source=source.name)
        answer = _queue(queued, deps)
        if answer.status == 200 and also:
            answer = _queue_also(also, answer, source.name, received_at, correlation_id, deps)
        if answer.status == 200 and isinstance(source, RetryingSource):
            _remember(queued, deps)
        return answer
    return IntakeResponse(interpretation.status, interpretation.body, interpretation.headers, source=source.name)


def _watched(
    source: str, payload: Any, headers: Mapping[str, str], watchers: tuple[Watcher, ...]
) -> list[tuple[Event, str]]:
    found: list[tuple[Event, str]] = []
    for watcher in watchers:
        try:
            found += watcher(source, payload, headers)
        except Exception as error:
            # A watcher's defect must not cost the delivery's own event; the log says which.
            logger.error("webhook watcher failed", extra={"source": source, "error_type": type(error).__name__})
    return found


def _queue_also(
    also: list[tuple[Event, str]],
    answer: IntakeResponse | None,
    source: str,
    received_at: datetime,
    correlation_id: str,
    deps: IntakeDeps,
) -> IntakeResponse:
    """Queue the watchers' events; a failure is the delivery's (503: the platform delivers again, and the events
    already queued are deduplicated by their keys)."""
    for event, key in also:
        queued = QueuedEvent(
            idempotency_key=key, correlation_id=correlation_id, source=source, received_at=received_at, event=event
        )
        extra = _queue(queued, deps)
        if extra.status != 200:
            return extra
        answer = answer or extra
    assert answer is not None
    return answer


def _redelivery(source: WebhookSource, headers: Mapping[str, str]) -> Redelivery | None:
    if not isinstance(source, RetryingSource):
        return None
    redelivery = source.redelivery(headers)
    if redelivery is not None:
        logger.info(
            "webhook redelivered",
            extra={"source": source.name, "retry_num": redelivery.attempt, "retry_reason": redelivery.reason},
        )
    return redelivery


def _queued_before(queued: QueuedEvent, deps: IntakeDeps) -> str | None:
    if deps.deliveries is None:
        return None
    try:
        return deps.deliveries.queued_before(queued.idempotency_key, queued.received_at)
    except Exception:
        # Not knowing means queueing it again: the consumer's idempotency makes a duplicate harmless.
        logger.warning("delivery log not readable", extra={"source": queued.source}, exc_info=True)
        return None


def _remember(queued: QueuedEvent, deps: IntakeDeps) -> None:
    """Best effort: without the record a retry is queued again, which the consumer's idempotency absorbs."""
    if deps.deliveries is None:
        return
    try:
        deps.deliveries.remember(queued.idempotency_key, queued.correlation_id, queued.received_at)
    except Exception:
        logger.warning("queued delivery not remembered", extra={"source": queued.source}, exc_info=True)


def _verify(source: WebhookSource, request: WebhookRequest, received_at: datetime, deps: IntakeDeps) -> None:
    try:
        secret = deps.secrets().get(source.secret_key)
    except ServiceUnavailable as error:
        raise IntakeMisconfigured(f"the webhook secrets cannot be read: {error}") from None
    if not isinstance(secret, str) or not secret:
        raise IntakeMisconfigured(f"the webhook secrets have no {source.secret_key}")
    try:
        source.verify(secret, request, now=received_at.timestamp(), window=deps.replay_window_seconds)
    except SignatureError as error:
        raise IntakeError(401, error.code, error.detail) from None
    except ValueError as error:  # a key that is not a key (e.g. a placeholder instead of the relay's public key)
        raise IntakeMisconfigured(f"{source.secret_key} is unusable: {error}") from None


def answer_url_check(
    source_name: str,
    headers: Mapping[str, str],
    deps: IntakeDeps,
    *,
    path: str = "",
    correlation_id: str | None = None,
) -> IntakeResponse:
    """A GET of a webhook URL: senders that check the URL before using it (Mailchimp, when its webhook is saved)
    get 200 once the secret in the URL matches; every other source or a wrong secret is refused, saying why."""
    correlation_id = correlation_id or uuid.uuid4().hex
    headers = {name.lower(): value for name, value in headers.items()}
    try:
        source = deps.registry.get(source_name)
        if not getattr(source, "answers_url_check", False):
            raise IntakeError(405, "method_not_allowed", f"{source.name} deliveries are POSTed; GET is not answered")
        _verify(source, WebhookRequest(source_name, b"", headers, path), deps.clock().astimezone(UTC), deps)
    except IntakeError as error:
        logger.warning(
            "webhook URL check refused",
            extra={"source": source_name[:64], "status": error.status, "error": error.code},
        )
        return IntakeResponse(error.status, error.body(), outcome="rejected", source="unknown")
    except IntakeMisconfigured as problem:
        logger.error("webhook secrets misconfigured", extra={"source": source_name[:64], "problem": str(problem)})
        body = {"error": "intake_misconfigured", "detail": f"{source_name[:64]} deliveries cannot be verified yet"}
        return IntakeResponse(503, body, outcome="failed", source=source.name)
    except Exception as error:
        return unexpected_failure(error, source_name, correlation_id, deps.registry)
    logger.info("webhook URL checked", extra={"source": source.name})
    return IntakeResponse(200, {"status": "ok", "source": source.name}, source=source.name)


def _parse_body(source: WebhookSource, raw_body: bytes, headers: Mapping[str, str]) -> Any:
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if getattr(source, "form_encoded", False):
        if media_type and media_type != FORM_MEDIA_TYPE:
            raise IntakeError(
                415, "unsupported_media_type", f"the body must be {FORM_MEDIA_TYPE}, not {media_type[:100]}"
            )
        return parse_nested_form(raw_body)
    if source.form_payload_field:
        # Such a source posts its JSON as the body whatever the content type says (Discourse sends the same JSON
        # with `application/x-www-form-urlencoded`): a form carrying the JSON in a field is only the fallback.
        return _json_or_form_field(raw_body, source.form_payload_field, media_type)
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise IntakeError(415, "unsupported_media_type", f"the body must be application/json, not {media_type[:100]}")
    return _parse_json(raw_body)


def _json_or_form_field(raw_body: bytes, name: str, media_type: str) -> Any:
    try:
        return _parse_json(raw_body)
    except IntakeError as not_json:
        # A body that starts like JSON is broken JSON, whatever the header says (the platform only sends JSON).
        if raw_body.lstrip()[:1] in (b"{", b"["):
            raise not_json from None
        field_value = _form_field(raw_body, name)
        if field_value is not None:
            return _parse_json(field_value)
        if media_type != FORM_MEDIA_TYPE:
            raise not_json from None
        raise IntakeError(
            400,
            "invalid_payload",
            f"a form-encoded delivery that is not JSON must carry its JSON in the `{name}` field",
            [{"field": name, "problem": "Field required"}],
        ) from None


def parse_nested_form(raw_body: bytes) -> dict[str, Any]:
    """A form body with bracketed names (`data[merges][FNAME]=Ada`) as nested objects, as PHP and Rack read them;
    a name given twice keeps its last value."""
    try:
        pairs = parse_qsl(raw_body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw_body.strip()))
    except (UnicodeDecodeError, ValueError) as error:
        problem = str(error)[:200]
        raise IntakeError(
            400, "invalid_form", f"the body is not a valid form: {problem}", [{"field": ROOT_FIELD, "problem": problem}]
        ) from None
    result: dict[str, Any] = {}
    for name, value in pairs:
        head, _, rest = name.partition("[")
        keys = [head] + ([part.rstrip("]") for part in rest.split("[")] if rest else [])
        target = result
        for key in keys[:-1]:
            child = target.get(key)
            if not isinstance(child, dict):
                child = target[key] = {}
            target = child
        target[keys[-1]] = value
    return result


def _form_field(raw_body: bytes, name: str) -> bytes | None:
    try:
        values = parse_qs(raw_body.decode("utf-8"), keep_blank_values=True).get(name)
    except (UnicodeDecodeError, ValueError):
        values = None
    return values[0].encode() if values else None


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:
        # ValueError covers malformed JSON and bytes that are not UTF-8.
        problem = str(error)[:200]
        raise IntakeError(
            400,
            "invalid_json",
            f"the body is not valid JSON: {problem}",
            [{"field": ROOT_FIELD, "problem": problem}],
        ) from None


def _queue(queued: QueuedEvent, deps: IntakeDeps) -> IntakeResponse:
    source, received_at, correlation_id = queued.source, queued.received_at, queued.correlation_id
    log_fields = {"source": source, "idempotency_key": queued.idempotency_key, **queued.event.log_fields()}
    try:
        deps.queue.send(queued)
    except QueueUnavailable as error:
        # Not the sender's fault: a 5xx makes Slack, Discourse and the relay deliver again later.
        logger.error("member event not queued", extra={**log_fields, "error": str(error)})
        return IntakeResponse(
            503,
            {
                "error": "queue_unavailable",
                "detail": "the event could not be stored; please deliver it again",
            },
            outcome="failed",
            source=source,
        )
    logger.info("member event queued", extra=log_fields)
    event = queued.event
    _record(
        deps.trace,
        TraceRecord(
            subject=event.trace_subject(),
            step=Step.EVENT_RECEIVED,
            outcome=Outcome.OK,
            detail=f"{event.type} from {source} queued",
            correlation_id=correlation_id,
            source=source,
            at=received_at,
            extra={"idempotency_key": queued.idempotency_key, **_identity(event)},
        ),
    )
    body = {"status": "queued", "idempotency_key": queued.idempotency_key, "correlation_id": correlation_id}
    return IntakeResponse(200, body, source=source)


def _rejected(
    error: IntakeError,
    source_name: str,
    source: WebhookSource | None,
    raw_body: bytes,
    headers: Mapping[str, str],
    received_at: datetime,
    correlation_id: str,
    deps: IntakeDeps,
) -> IntakeResponse:
    known_source = source.name if source else "unknown"
    traced_source = source.name if source else source_name[:64]
    # An unsigned body may name anyone: only a verified sender's invalid request is filed under a member.
    claimed_email = _claimed_email(source, raw_body, headers, deps) if error.status not in (401, 413) else None
    logger.warning(
        "webhook rejected",
        extra={
            "source": traced_source,
            "status": error.status,
            "error": error.code,
            "detail": error.detail,
            "claimed_email": mask_email(claimed_email),
        },
    )
    # The rejections of the day, and (for a verified sender's invalid request) the member the body names: so the
    # trace of a member can show "a request for this member was rejected: invalid payload".
    subjects = [rejections_subject(received_at.strftime("%Y-%m-%d"))]
    if claimed_email:
        subjects.append(email_subject(claimed_email))
    for subject in subjects:
        _record(
            deps.trace,
            TraceRecord(
                subject=subject,
                step=Step.REQUEST_REJECTED,
                outcome=Outcome.REFUSED,
                detail=f"{error.status} {error.code}: {error.detail}",
                correlation_id=correlation_id,
                source=traced_source,
                at=received_at,
            ),
        )
    # A retrying platform is told that retrying a refused request cannot help (Slack: X-Slack-No-Retry).
    refusal_headers: dict[str, str] = dict(source.refusal_headers) if isinstance(source, RetryingSource) else {}
    return IntakeResponse(error.status, error.body(), refusal_headers, outcome="rejected", source=known_source)


def _claimed_email(
    source: WebhookSource | None, raw_body: bytes, headers: Mapping[str, str], deps: IntakeDeps
) -> str | None:
    if source is None or len(raw_body) > deps.max_body_bytes:
        return None
    try:
        # Only an address: the trace is keyed by its hash, which text that is not an address cannot have.
        return check_email(source.claimed_email(_parse_body(source, raw_body, headers)))
    except (IntakeError, ValueError):
        return None


def _identity(event: object) -> dict[str, str]:
    identity = getattr(event, "identity", None)
    return {"identity": identity.key} if identity is not None else {}


def _record(trace: TraceRecorder, record: TraceRecord) -> None:
    """Best effort: the trace explains what happened, it must never decide whether a delivery is accepted."""
    try:
        trace.record(record)
    except Exception:
        logger.warning("trace record not written", extra={"step": record.step.value}, exc_info=True)
