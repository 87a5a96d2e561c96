import uuid
from datetime import date
from pathlib import Path

import orjson
import pytest
from krousar_common import topics
from krousar_common.cli import app
from krousar_common.events import EVENT_TYPES, Envelope, InvalidEvent, decode, make_envelope
from krousar_common.events import households as hh
from typer.testing import CliRunner

DOCS = Path(__file__).resolve().parents[3] / "docs" / "events"


def make_snapshot(**over: object) -> hh.HouseholdSnapshot:
    head = uuid.uuid4()
    values = {
        "household_id": uuid.uuid4(),
        "version": 1,
        "village_code": "12010101",
        "commune_code": "120101",
        "district_code": "1201",
        "province_code": "12",
        "location_history": [{"effective_from": "1900-01-01", "category": "PHNOM_PENH"}],
        "interviewed_on": date(2025, 3, 1),
        "head_member_id": head,
        "female_headed": True,
        "members": [
            {
                "member_id": head,
                "name_km": "សុខ",
                "sex": "F",
                "date_of_birth": "1980-01-01",
                "relationship": "HEAD",
            }
        ],
    }
    values.update(over)
    return hh.HouseholdSnapshot.model_validate(values)


def registered_envelope() -> Envelope:
    snapshot = make_snapshot()
    event = hh.HouseholdRegistered(household=snapshot)
    return make_envelope(event, source="test", subject=str(snapshot.household_id), correlation_id="c-1")


def test_envelope_round_trips_through_kafka_bytes() -> None:
    envelope = registered_envelope()

    decoded, event = decode(envelope.to_bytes())

    assert decoded == envelope
    assert isinstance(event, hh.HouseholdRegistered)
    assert decoded.specversion == "1.0" and decoded.type == "krousar.HouseholdRegistered"


def test_envelope_ids_are_time_ordered_so_inbox_rows_append() -> None:
    ids = [registered_envelope().id for _ in range(50)]

    assert {i.version for i in ids} == {7}
    assert ids == sorted(ids, key=lambda i: i.bytes)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda raw: b"{not json", "not a valid envelope"),
        (lambda raw: raw.replace(b"krousar.HouseholdRegistered", b"krousar.Nope"), "unknown event type"),
        (
            lambda raw: raw.replace(b'"schema_version":1', b'"schema_version":99'),
            "unsupported schema_version",
        ),
        (lambda raw: raw.replace(b'"version":1', b'"version":"one"'), "does not match its schema"),
    ],
)
def test_poison_messages_raise_invalid_event_with_the_reason(mutate, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        decode(mutate(registered_envelope().to_bytes()))


def test_every_event_has_a_registered_topic_with_a_dlq() -> None:
    names = set(topics.all_topic_names())
    for event_type in EVENT_TYPES.values():
        assert event_type.topic.name in names and event_type.topic.dlq in names


def test_location_category_in_force_on_a_day() -> None:
    snapshot = make_snapshot(
        location_history=[
            {"effective_from": "1900-01-01", "category": "RURAL"},
            {"effective_from": "2023-05-01", "category": "OTHER_URBAN"},
        ]
    )

    assert snapshot.location_category_on(date(2023, 4, 30)) == hh.LocationCategory.RURAL
    assert snapshot.location_category_on(date(2023, 5, 1)) == hh.LocationCategory.OTHER_URBAN


def test_published_event_schemas_match_the_models(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["write-event-schemas", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output

    generated = sorted(p.name for p in tmp_path.iterdir())
    assert generated == sorted(p.name for p in DOCS.iterdir()), "docs/events is stale: run `make schemas`"
    for name in generated:
        assert (tmp_path / name).read_text() == (DOCS / name).read_text(), f"docs/events/{name} is stale"


def test_envelope_json_has_cloudevents_attributes() -> None:
    body = orjson.loads(registered_envelope().to_bytes())
    assert {
        "id",
        "source",
        "type",
        "specversion",
        "time",
        "subject",
        "datacontenttype",
        "correlation_id",
        "schema_version",
        "data",
    } <= body.keys()
