"""Rows in PostgreSQL's binary COPY format, made where asyncpg is not (a worker process).

A worker process that builds rows for the service process hands them back as the bytes of
``COPY ... FROM STDIN (FORMAT binary)``: a few bytes a value, where pickling the rows as Python
objects and encoding them again in the service process cost as much as building them. Each column
has an encoder (value → its length-prefixed field); ``encode`` lays the rows out. The layouts are
those of PostgreSQL's send functions (its documentation, "COPY", "Binary Format").
"""

import operator
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # signature, flags, extension
_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_int32 = struct.Struct(">i").pack
_int64 = struct.Struct(">q").pack
_TEXT_OID = 25
# PostgreSQL counts dates and timestamps from 2000-01-01.
_EPOCH_DAY = date(2000, 1, 1).toordinal()
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

Encoder = Callable[[Any], bytes]


def uuid(value: Any) -> bytes:
    return b"\x00\x00\x00\x10" + value.bytes


def text(value: str) -> bytes:
    data = value.encode()
    return _int32(len(data)) + data


def int4(value: int) -> bytes:
    return b"\x00\x00\x00\x04" + _int32(value)


def int8(value: int) -> bytes:
    return b"\x00\x00\x00\x08" + _int64(value)


def boolean(value: bool) -> bytes:
    return b"\x00\x00\x00\x01\x01" if value else b"\x00\x00\x00\x01\x00"


def day(value: date) -> bytes:
    return int4(value.toordinal() - _EPOCH_DAY)


def timestamptz(value: datetime) -> bytes:
    if value.tzinfo is None:  # as asyncpg takes a naive one: in UTC
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return int8((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def text_array(values: Sequence[str]) -> bytes:
    """A one-dimensional text[] without NULLs ('{}' when empty)."""
    if not values:
        body = _int32(0) + _int32(0) + _int32(_TEXT_OID)
    else:
        body = b"".join(
            [_int32(1), _int32(0), _int32(_TEXT_OID), _int32(len(values)), _int32(1)]
            + [text(v) for v in values]
        )
    return _int32(len(body)) + body


def json(value: Any) -> bytes:
    """A json column: the JSON text itself."""
    data = orjson.dumps(value)
    return _int32(len(data)) + data


def jsonb(value: Any) -> bytes:
    """A jsonb column: a version byte (1), then the JSON text."""
    data = b"\x01" + orjson.dumps(value)
    return _int32(len(data)) + data


def nullable(encoder: Encoder) -> Encoder:
    def encode_or_null(value: Any) -> bytes:
        return _NULL if value is None else encoder(value)

    return encode_or_null


def shared(encoder: Encoder) -> Encoder:
    """``encoder`` remembering what it made, for a column of few distinct values (codes, the
    arithmetic of a line): a country has some thousands of them, a run hundreds of thousands of
    lines."""
    made: dict[Any, bytes] = {}

    def encode_shared(value: Any) -> bytes:
        data = made.get(value)
        if data is None:
            data = made[value] = encoder(value)
        return data

    return encode_shared


# A text column of few distinct values (codes), and one of any text, each NULL for None.
code = shared(nullable(text))
optional_text = nullable(text)


def encode(rows: Sequence[Sequence[Any]], types: Sequence[Encoder]) -> bytes:
    """Rows as COPY ... FROM STDIN (FORMAT binary) takes them; b"" for no row."""
    if not rows:
        return b""
    width = len(types)
    count = struct.pack(">h", width)
    parts = [_HEADER]
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row of {len(row)} values for {width} columns: {row!r}")
        parts.append(count)
        parts += map(operator.call, types, row)  # each value through its column's encoder
    parts.append(_TRAILER)
    return b"".join(parts)
