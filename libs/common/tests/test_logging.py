"""Nothing personal leaves the process: error texts name where and what, never the input."""

import uuid

import asyncpg
import orjson
import pytest
import structlog
from krousar_common.events import InvalidEvent, decode
from krousar_common.logging import configure_logging, describe_error, scrub
from pydantic import BaseModel, ValidationError

NATIONAL_ID = "987654321"
NAME = "សុខ សម្ងាត់"


def malformed_household_event() -> bytes:
    """A HouseholdRegistered whose only member lacks ``sex``: pydantic's text would quote the member."""
    member = {
        "member_id": str(uuid.uuid4()),
        "name_km": NAME,
        "national_id": NATIONAL_ID,
        "date_of_birth": "1980-01-01",
        "relationship": "HEAD",
        "lives_with_hiv": True,
    }
    household = {"household_id": str(uuid.uuid4()), "version": 1, "members": [member]}
    envelope = {
        "id": str(uuid.uuid4()),
        "source": "test",
        "type": "krousar.HouseholdRegistered",
        "subject": household["household_id"],
        "correlation_id": "c-1",
        "schema_version": 1,
        "data": {"household": household},
    }
    return orjson.dumps(envelope)


def assert_nothing_personal(text: str) -> None:
    assert NATIONAL_ID not in text
    assert NAME not in text
    assert "True" not in text  # lives_with_hiv's value


def test_a_malformed_household_event_is_reported_without_its_data() -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode(malformed_household_event())

    reason = str(caught.value)
    assert reason.startswith("krousar.HouseholdRegistered does not match its schema:")
    assert "household.members.0.sex: Field required [missing]" in reason
    assert "household.village_code: Field required [missing]" in reason
    assert_nothing_personal(reason)
    assert "lives_with_hiv" not in reason


def test_validation_errors_are_described_by_location_message_and_type() -> None:
    class Member(BaseModel):
        lives_with_hiv: bool

    with pytest.raises(ValidationError) as caught:
        Member.model_validate({"lives_with_hiv": "positive"})

    assert describe_error(caught.value) == (
        "1 validation error(s) for Member: lives_with_hiv:"
        " Input should be a valid boolean, unable to interpret input [bool_parsing]"
    )


def test_database_errors_keep_their_code_and_names_not_the_value() -> None:
    bad_argument = asyncpg.DataError(f"invalid input for query argument $1: '{NATIONAL_ID}' (too long)")

    assert describe_error(bad_argument) == "DataError (SQLSTATE 22000)"


def test_other_exceptions_are_named_only_and_connection_errors_keep_their_text() -> None:
    assert describe_error(ValueError(f"bad national id {NATIONAL_ID}")) == "ValueError"
    assert describe_error(ConnectionRefusedError(111, "Connect call failed")) == (
        "ConnectionRefusedError: [Errno 111] Connect call failed"
    )


def test_scrub_removes_quoted_input_and_sensitive_values() -> None:
    text = (
        "[type=missing, input_value={'lives_with_hiv': True}, input_type=dict]"
        f" {{\"national_id\": \"{NATIONAL_ID}\"}} Member(name_km='{NAME}', sex='F')"
    )

    scrubbed = scrub(text)

    assert NATIONAL_ID not in scrubbed and NAME not in scrubbed and "True" not in scrubbed
    assert "sex='F'" in scrubbed


def test_log_lines_redact_keys_and_scrub_text_and_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test")
    log = structlog.get_logger("test")
    try:
        raise RuntimeError(f"failed on {{'lives_with_hiv': True, 'national_id': '{NATIONAL_ID}'}}")
    except RuntimeError:
        log.exception("thing.failed", name_km=NAME, error=f"input_value={{'name_km': '{NAME}'}}, input_type=")

    line = orjson.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["name_km"] == "[redacted]"
    assert_nothing_personal(line["error"] + line["exception"])
    assert "RuntimeError" in line["exception"]
