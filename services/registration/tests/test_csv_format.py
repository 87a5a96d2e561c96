import csv
import io
import re
from datetime import date

import pytest
from registration.imports import csv_format
from registration.imports.csv_format import (
    ALL_COLUMNS,
    FileRejected,
    RowError,
    UploadCheck,
    check_header,
    parse,
    parse_text,
    read_households,
)

HEAD = {
    "household_ref": "H1",
    "village_code": "12010101",
    "interviewed_on": "2025-03-01",
    "roof": "THATCH",
    "floor_area_m2": "12.5",
    "earners": "0",
    "shock_12m": "yes",
    "name_km": "សុខ ចាន់",
    "sex": "F",
    "date_of_birth": "1980-05-01",
    "relationship": "HEAD",
    "national_id": "123456789",
}
CHILD = {
    "household_ref": "H1",
    "name_km": "សុខ ដារ៉ា",
    "sex": "M",
    "date_of_birth": "2019-01-01",
    "relationship": "CHILD",
    "in_school": "true",
}


def csv_text(rows: list[dict[str, str]], columns: list[str] = ALL_COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_a_household_is_its_rows_with_answers_from_the_first() -> None:
    [parsed], errors = parse_text(csv_text([HEAD, CHILD]))

    assert errors == []
    assert (parsed.ref, parsed.rows) == ("H1", [2, 3])
    command = parsed.command
    assert command.answers == {"roof": "THATCH", "floor_area_m2": 12.5, "earners": 0, "shock_12m": True}
    assert (command.identification_mode, command.round_no) == ("ON_DEMAND", None)
    assert [(m.relationship, m.date_of_birth, m.in_school) for m in command.members] == [
        ("HEAD", date(1980, 5, 1), False),
        ("CHILD", date(2019, 1, 1), True),
    ]


def test_rows_of_a_household_need_not_be_together() -> None:
    other = {**HEAD, "household_ref": "H2", "national_id": "987654321"}
    parsed, errors = parse_text(csv_text([HEAD, other, CHILD]))

    assert errors == []
    assert {p.ref: p.rows for p in parsed} == {"H1": [2, 4], "H2": [3]}


def test_a_round_number_makes_it_a_round() -> None:
    [parsed], _ = parse_text(csv_text([{**HEAD, "round_no": "10"}]))
    assert (parsed.command.identification_mode, parsed.command.round_no) == ("ROUND", 10)


def test_a_round_number_beyond_what_storage_holds_is_reported_by_its_column() -> None:
    _, errors = parse_text(csv_text([{**HEAD, "round_no": "99999999999"}]))
    assert [(e.row, e.field) for e in errors] == [(2, "round_no")]


def test_cells_are_stripped_and_names_cleaned_of_zero_width_characters() -> None:
    head = {**HEAD, "name_km": " សុខ\u200bណា\u200dរី\ufeff ", "sex": " F "}
    [parsed], errors = parse_text(csv_text([head]))
    assert errors == []
    assert (parsed.command.members[0].name_km, parsed.command.members[0].sex) == ("សុខណារី", "F")


def test_header_names_are_read_without_spaces_a_second_bom_or_zero_width_characters() -> None:
    text = csv_text([HEAD]).replace("name_km", " name_km\u200b", 1)
    check_header("\ufeff" + text)
    [parsed], errors = parse_text("\ufeff" + text)
    assert errors == []
    assert parsed.command.members[0].name_km == "សុខ ចាន់"


def test_optional_columns_may_be_left_out_and_short_rows_are_padded() -> None:
    columns = ["household_ref", "village_code", "interviewed_on", "name_km", "sex", "date_of_birth"]
    text = csv_text([HEAD], [*columns, "relationship", "roof"]).replace(",HEAD,THATCH", ",HEAD")

    [parsed], errors = parse_text(text)

    assert errors == []
    assert parsed.command.answers == {}
    assert parsed.command.members[0].national_id is None


def test_cells_beyond_the_header_are_ignored() -> None:
    [parsed], errors = parse_text(csv_text([HEAD]).removesuffix("\r\n") + ",surplus\r\n")
    assert errors == []
    assert parsed.command.members[0].in_school is False


def test_blank_lines_are_skipped_and_rows_keep_their_line_numbers() -> None:
    text = csv_text([HEAD]) + "\r\n" + csv_text([CHILD]).split("\r\n", 1)[1]
    [parsed], errors = parse_text(text)
    assert errors == []
    assert parsed.rows == [2, 4]


def test_a_bad_member_is_reported_by_its_line_and_field() -> None:
    households, errors = parse_text(csv_text([HEAD, {**CHILD, "sex": "X"}]))
    assert households == []
    assert [(e.row, e.household_ref, e.field) for e in errors] == [(3, "H1", "sex")]


def test_a_bad_answer_keeps_the_household_out() -> None:
    households, errors = parse_text(csv_text([{**HEAD, "earners": "two"}]))
    assert households == []
    assert errors == [RowError(2, "H1", "earners", "'two' is not a valid int")]


def test_a_household_rule_is_reported_on_its_first_line() -> None:
    _, errors = parse_text(csv_text([HEAD, {**CHILD, "relationship": "HEAD"}]))
    assert [(e.row, e.field) for e in errors] == [(2, "members")]
    assert "exactly one member must be HEAD" in errors[0].message


def test_rows_without_a_household_ref_are_reported() -> None:
    _, errors = parse_text(csv_text([{**HEAD, "household_ref": ""}]))
    assert errors == [RowError(2, "", "household_ref", "is required")]


def test_an_overlong_cell_is_reported_by_its_column() -> None:
    _, errors = parse_text(csv_text([HEAD, {**CHILD, "name_latin": "x" * 1001}]))
    assert [(e.row, e.field) for e in errors] == [(3, "name_latin")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "missing required column"),
        ("household_ref,village_code\r\nH1,12010101\r\n", "missing required column(s): interviewed_on"),
        (csv_text([HEAD], [*ALL_COLUMNS, "colour"]), "unknown column(s): colour"),
        (csv_text([HEAD]) + "H2," + "1" * 200_000 + "\r\n", "line 3: malformed CSV"),
    ],
)
def test_an_unreadable_file_is_rejected_as_a_whole(text: str, message: str) -> None:
    with pytest.raises(FileRejected, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_text(text)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (csv_text([HEAD]).replace("សុខ ចាន់", "Sók").encode("cp1252"), "file is not UTF-8 (byte"),
        (csv_text([HEAD]).replace("សុខ ចាន់", "Sok").encode("utf-16-le"), "file contains a NUL byte (byte 1)"),
        (csv_text([{**HEAD, "name_km": "សុខ\x00"}]).encode(), "file contains a NUL byte"),
    ],
)
def test_a_file_that_is_not_utf8_text_is_rejected_with_what_to_do(raw: bytes, message: str) -> None:
    with pytest.raises(FileRejected, match=rf"{re.escape(message)}.*save it as 'CSV UTF-8'"):
        parse(raw)


def chunked(raw: bytes, size: int) -> UploadCheck:
    check = UploadCheck()
    for at in range(0, len(raw), size):
        check.feed(raw[at : at + size])
    check.finish()
    return check


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64 * 1024])
def test_an_upload_checked_chunk_by_chunk_accepts_characters_cut_between_chunks(size: int) -> None:
    raw = ("\ufeff" + csv_text([HEAD, CHILD])).encode()
    assert chunked(raw, size).size == len(raw)


@pytest.mark.parametrize("size", [1, 5, 64 * 1024])
def test_an_upload_checked_chunk_by_chunk_names_the_byte_of_the_whole_file(size: int) -> None:
    text = csv_text([HEAD, CHILD])
    bad_at = len(text.encode()) + 2  # in a line after the file's own lines
    raw = text.encode() + "ក".encode() + b"\xff" + b"\r\n"
    assert raw.index(b"\xff") == bad_at + 1
    with pytest.raises(FileRejected, match=rf"file is not UTF-8 \(byte {bad_at + 1}\)"):
        chunked(raw, size)
    with pytest.raises(FileRejected, match=rf"NUL byte \(byte {bad_at - 2}\)"):
        chunked(text.encode() + b"\x00", size)


def test_an_upload_with_a_header_missing_a_column_is_rejected_when_it_ends() -> None:
    check = UploadCheck()
    check.feed(b"household_ref,village_")
    check.feed(b"code\r\nH1,12010101\r\n")
    with pytest.raises(FileRejected, match=r"missing required column\(s\): interviewed_on"):
        check.finish()


def test_an_upload_over_the_size_limit_is_rejected_at_the_chunk_that_crosses_it(monkeypatch) -> None:
    monkeypatch.setattr(csv_format, "MAX_FILE_BYTES", 2**20)
    check = UploadCheck()
    check.feed(b"x" * 2**20)
    with pytest.raises(FileRejected, match="larger than 1 MiB"):
        check.feed(b"x")


def test_households_come_in_the_order_they_first_appear_with_all_their_rows() -> None:
    second = {**HEAD, "household_ref": "H2", "national_id": ""}
    child_of_second = {**CHILD, "household_ref": "H2"}
    _, households = read_households(
        csv_text([HEAD, second, CHILD, child_of_second, {**HEAD, "household_ref": "H3"}])
    )
    assert [(h.ref, [line for line, _ in h.rows]) for h in households] == [
        ("H1", [2, 4]),
        ("H2", [3, 5]),
        ("H3", [6]),
    ]
