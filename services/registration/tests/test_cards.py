from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from registration.domain.cards import (
    MAX_SEQ,
    card_number,
    is_valid_card_number,
    luhn_check_digit,
    valid_until,
)

village_codes = st.text(alphabet="0123456789", min_size=8, max_size=8)
seqs = st.integers(min_value=1, max_value=MAX_SEQ)


@pytest.mark.parametrize(
    ("digits", "check"),
    [
        ("7992739871", 3),  # the textbook Luhn example
        ("0", 0),
        ("0501010100001", 0),  # worked by hand: doubled 1 -> 2, plus 1 + 1 + 1 + 5 = 10
        ("0501010100002", 8),  # doubled 2 -> 4, total 12
    ],
)
def test_luhn_check_digit(digits: str, check: int) -> None:
    assert luhn_check_digit(digits) == check


@pytest.mark.parametrize("digits", ["", "12a4", "០១២", " 123"])
def test_luhn_rejects_non_digits(digits: str) -> None:
    with pytest.raises(ValueError):
        luhn_check_digit(digits)


def test_card_number_format() -> None:
    assert card_number("05010101", 1) == "05010101-00001-0"
    assert card_number("05010101", 2) == "05010101-00002-8"
    assert card_number("12010101", MAX_SEQ).startswith("12010101-99999-")


@pytest.mark.parametrize(
    ("village_code", "seq"), [("05010101", 0), ("05010101", MAX_SEQ + 1), ("5010101", 1)]
)
def test_card_number_rejects_bad_parts(village_code: str, seq: int) -> None:
    with pytest.raises(ValueError):
        card_number(village_code, seq)


@pytest.mark.parametrize(
    "number",
    [
        "05010101-00001-1",  # wrong check digit
        "5010101-00001-0",  # 7-digit village
        "05010101-0001-0",
        "0501010100001-0",
        "05010101000010",
        "05010101-00001-0 ",
        "០៥០១០១០១-០០០០១-០",  # Khmer digits
        "",
    ],
)
def test_invalid_card_numbers(number: str) -> None:
    assert not is_valid_card_number(number)


@given(village_codes, seqs)
def test_generated_numbers_always_validate(village_code: str, seq: int) -> None:
    number = card_number(village_code, seq)
    assert is_valid_card_number(number)
    assert number[:8] == village_code and int(number[9:14]) == seq


@given(village_codes, seqs, st.integers(min_value=0, max_value=12), st.integers(min_value=1, max_value=9))
def test_any_single_digit_change_invalidates(village_code: str, seq: int, position: int, shift: int) -> None:
    number = card_number(village_code, seq)
    digits = list(number.replace("-", ""))
    digits[position] = str((int(digits[position]) + shift) % 10)
    changed = "".join(digits)
    assert not is_valid_card_number(f"{changed[:8]}-{changed[8:13]}-{changed[13]}")


@pytest.mark.parametrize(
    ("issued_on", "years", "expected"),
    [
        (date(2024, 1, 15), 3, date(2027, 1, 14)),
        (date(2024, 1, 1), 3, date(2026, 12, 31)),
        (date(2023, 3, 1), 1, date(2024, 2, 29)),
        (date(2024, 2, 29), 3, date(2027, 2, 28)),  # 2027-02-29 doesn't exist: anniversary is 1 March
        (date(2024, 2, 29), 4, date(2028, 2, 28)),  # 2028 is a leap year: anniversary is 29 February
        (date(2024, 2, 28), 3, date(2027, 2, 27)),
    ],
)
def test_valid_until(issued_on: date, years: int, expected: date) -> None:
    assert valid_until(issued_on, years) == expected


def test_valid_until_needs_a_positive_term() -> None:
    with pytest.raises(ValueError):
        valid_until(date(2024, 1, 1), 0)


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)), st.integers(min_value=1, max_value=10)
)
def test_valid_until_is_the_day_before_the_anniversary(issued_on: date, years: int) -> None:
    anniversary = valid_until(issued_on, years) + timedelta(days=1)
    assert anniversary.year == issued_on.year + years
    if (issued_on.month, issued_on.day) != (2, 29):
        assert (anniversary.month, anniversary.day) == (issued_on.month, issued_on.day)
    else:
        assert (anniversary.month, anniversary.day) in {(2, 29), (3, 1)}
