"""The registry of event contracts: every event model, its topic and its schema version.

``EVENT_TYPES`` is the one registry of what may travel on Kafka. A consumer turns raw bytes into
(envelope, model) with ``decode``; anything it can't turn is an ``InvalidEvent`` (→ DLQ).
"""

from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from krousar_common import topics
from krousar_common.events import eligibility as el
from krousar_common.events import households as hh
from krousar_common.events import payments as pay
from krousar_common.events import programmes as prog
from krousar_common.events.envelope import Envelope, InvalidEvent
from krousar_common.logging import describe_error


@dataclass(frozen=True)
class EventType:
    model: type[BaseModel]
    topic: topics.Topic
    schema_version: int = 1

    @property
    def name(self) -> str:
        return f"krousar.{self.model.__name__}"


EVENT_TYPES: dict[str, EventType] = {}


def register(model: type[BaseModel], topic: topics.Topic, schema_version: int = 1) -> None:
    event_type = EventType(model, topic, schema_version)
    EVENT_TYPES[event_type.name] = event_type


def type_of(event: BaseModel) -> EventType:
    return EVENT_TYPES[f"krousar.{type(event).__name__}"]


def make_envelope(event: BaseModel, *, source: str, subject: str, correlation_id: str) -> Envelope:
    return envelope_of(
        type(event),
        event.model_dump(mode="json"),
        source=source,
        subject=subject,
        correlation_id=correlation_id,
    )


def envelope_of(
    model: type[BaseModel], data: dict, *, source: str, subject: str, correlation_id: str
) -> Envelope:
    """An envelope around already-built event data (bulk paths skip building the model)."""
    event_type = EVENT_TYPES[f"krousar.{model.__name__}"]
    return Envelope(
        source=source,
        type=event_type.name,
        subject=subject,
        correlation_id=correlation_id,
        schema_version=event_type.schema_version,
        data=data,
    )


def decode(raw: bytes) -> tuple[Envelope, BaseModel]:
    """Parse and validate a Kafka message value, or raise ``InvalidEvent`` saying why."""
    envelope = Envelope.from_bytes(raw)
    event_type = EVENT_TYPES.get(envelope.type)
    if event_type is None:
        raise InvalidEvent(f"unknown event type {envelope.type!r}")
    if envelope.schema_version != event_type.schema_version:
        raise InvalidEvent(
            f"unsupported schema_version {envelope.schema_version} of {envelope.type}"
            f" (this consumer reads {event_type.schema_version})"
        )
    try:
        return envelope, event_type.model.model_validate(envelope.data)
    except ValidationError as exc:
        raise InvalidEvent(f"{envelope.type} does not match its schema: {describe_error(exc)}") from exc


for _model in (
    hh.HouseholdRegistered,
    hh.HouseholdAssessed,
    hh.MemberAdded,
    hh.MemberRemoved,
    hh.MemberChanged,
    hh.CardIssued,
    hh.CardExpired,
    hh.CardRevoked,
    hh.CardReplaced,
    hh.HouseholdWithdrawn,
    hh.HouseholdReclassified,
):
    register(_model, topics.HOUSEHOLDS)
register(prog.ProgrammeVersionPublished, topics.TOPUPS)
register(el.EligibilityDecided, topics.DECISIONS, schema_version=2)
register(pay.PaymentInstructed, topics.INSTRUCTIONS)
register(pay.PaymentStatusReported, topics.STATUSES)
register(pay.RunStateChanged, topics.RUNS)
