from datetime import UTC, datetime

import pytest
from payments.api import Cursor
from pydantic import TypeAdapter, ValidationError


def test_a_cursor_is_read_in_utc_and_one_past_the_last_day_in_utc_is_invalid() -> None:
    cursor = TypeAdapter(Cursor)

    assert cursor.validate_python("2026-12-01T08:00:00+07:00") == datetime(2026, 12, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="out of range"):
        cursor.validate_python("9999-12-31T23:59:59-23:59")
