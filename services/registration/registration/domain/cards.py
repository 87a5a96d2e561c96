"""Equity card numbers (``{village_code}-{seq:05d}-{check}``) and validity dates (DOMAIN.md §4)."""

import re
from datetime import date, timedelta

MAX_SEQ = 99_999
_CARD_NUMBER = re.compile(r"([0-9]{8})-([0-9]{5})-([0-9])")
_VILLAGE_CODE = re.compile(r"[0-9]{8}")


def luhn_check_digit(digits: str) -> int:
    """The digit that, appended to ``digits``, makes the Luhn sum a multiple of 10."""
    if not digits or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"Luhn needs ASCII digits, got {digits!r}")
    total = 0
    # Counting from the right, the digit next to the check digit is doubled, then every other one.
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def card_number(village_code: str, seq: int) -> str:
    if not _VILLAGE_CODE.fullmatch(village_code):
        raise ValueError(f"village code must be 8 digits, got {village_code!r}")
    if not 1 <= seq <= MAX_SEQ:
        raise ValueError(f"card sequence must be 1..{MAX_SEQ}, got {seq}")
    payload = f"{village_code}{seq:05d}"
    return f"{village_code}-{seq:05d}-{luhn_check_digit(payload)}"


def is_valid_card_number(number: str) -> bool:
    match = _CARD_NUMBER.fullmatch(number)
    if match is None:
        return False
    village_code, seq, check = match.groups()
    return luhn_check_digit(village_code + seq) == int(check)


def valid_until(issued_on: date, years: int) -> date:
    """The day before the same calendar date ``years`` later.

    A card issued on 29 February whose anniversary falls in a common year takes 1 March as that
    "same date" (the day after 28 February, as a birthday would), so it is valid through
    28 February: e.g. 2024-02-29 + 3 years -> valid until 2027-02-28, never a day short of N years.
    """
    if years < 1:
        raise ValueError(f"validity must be at least one year, got {years}")
    year = issued_on.year + years
    try:
        anniversary = issued_on.replace(year=year)
    except ValueError:  # 29 February in a common year
        anniversary = date(year, 3, 1)
    return anniversary - timedelta(days=1)
