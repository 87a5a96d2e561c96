"""The binary COPY layout of a few rows, byte by byte (PostgreSQL's "COPY", "Binary Format")."""

import pytest
from krousar_common import copy_binary

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)


def test_rows_are_laid_out_field_by_field_between_header_and_trailer() -> None:
    types = (copy_binary.int4, copy_binary.optional_text)

    data = copy_binary.encode([(7, "ក"), (-1, None)], types)

    first = b"\x00\x02" + b"\x00\x00\x00\x04\x00\x00\x00\x07" + b"\x00\x00\x00\x03" + "ក".encode()
    second = b"\x00\x02" + b"\x00\x00\x00\x04\xff\xff\xff\xff" + b"\xff\xff\xff\xff"
    assert data == HEADER + first + second + b"\xff\xff"


def test_no_row_is_no_bytes() -> None:
    assert copy_binary.encode([], (copy_binary.int4,)) == b""


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="a row of 1 values for 2 columns"):
        copy_binary.encode([(1, "a"), (2,)], (copy_binary.int4, copy_binary.optional_text))
