"""The import CSV: one row per member, grouped into households by ``household_ref``.

Pure parsing and validation: bytes in, household commands and errors by row and field out.
Household and answer columns are read from a household's first row.
"""

import csv
import io
import unicodedata
from dataclasses import dataclass
from typing import Any

from krousar_common.errors import clean_message
from pydantic import ValidationError

from registration.models import HouseholdCreate

HOUSEHOLD_COLUMNS = ["household_ref", "village_code", "interviewed_on", "identification_mode", "round_no"]
ANSWER_COLUMNS = {
    "roof": str,
    "walls": str,
    "floor_area_m2": float,
    "house_condition": str,
    "land_ha": float,
    "cattle": int,
    "tenure": str,
    "earners": int,
    "transport": str,
    "valuables": int,
    "food_shortage_months": int,
    "shock_12m": bool,
}
MEMBER_COLUMNS = [
    "name_km",
    "name_latin",
    "sex",
    "date_of_birth",
    "dob_estimated",
    "relationship",
    "national_id",
    "has_disability",
    "disability_card_no",
    "lives_with_hiv",
    "is_pregnant",
    "expected_delivery_date",
    "in_school",
]
REQUIRED_COLUMNS = [
    "household_ref",
    "village_code",
    "interviewed_on",
    "name_km",
    "sex",
    "date_of_birth",
    "relationship",
]
ALL_COLUMNS = HOUSEHOLD_COLUMNS + list(ANSWER_COLUMNS) + MEMBER_COLUMNS
NAME_COLUMNS = ("name_km", "name_latin")
MAX_FIELD_CHARS = 1000
MAX_FILE_BYTES = 512 * 1024 * 1024
TRUE_WORDS = {"true", "1", "yes", "y"}
FALSE_WORDS = {"false", "0", "no", "n", ""}
# Zero-width characters that copy-paste leaves in Khmer names; they would defeat duplicate checks.
ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


class FileRejected(ValueError):
    """The file as a whole can't be read (encoding, header); nothing is imported."""


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based line number in the file, the header being line 1
    household_ref: str
    field: str
    message: str


@dataclass
class ParsedHousehold:
    ref: str
    rows: list[int]
    command: HouseholdCreate


def decode(raw: bytes) -> str:
    if len(raw) > MAX_FILE_BYTES:
        raise FileRejected(
            f"file is larger than {MAX_FILE_BYTES // 2**20} MiB: split the round into several files"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"file is not UTF-8 (byte {exc.start}): save it as 'CSV UTF-8' and upload again"
        ) from exc
    # No text of a round holds one, and PostgreSQL could not store it: UTF-16 without a BOM is
    # valid UTF-8 with a NUL after every Latin letter.
    if (nul := raw.find(b"\x00")) >= 0:
        raise FileRejected(
            f"file contains a NUL byte (byte {nul}), so it is not CSV text (UTF-16?):"
            " save it as 'CSV UTF-8' and upload again"
        )
    return text


def column_names(header: list[str]) -> list[str]:
    """The header's names without what a spreadsheet or a copy-paste leaves around them (spaces,
    a second BOM, zero-width characters), which would make a required column look missing."""
    return [cell.translate(ZERO_WIDTH).strip() for cell in header]


def check_columns(columns: list[str]) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise FileRejected(f"missing required column(s): {', '.join(missing)}")
    unknown = [c for c in columns if c not in ALL_COLUMNS]
    if unknown:
        raise FileRejected(f"unknown column(s): {', '.join(unknown)}; see docs/registration.md#import-format")


def check_header(text: str) -> None:
    """The header alone, so that an unusable file is refused at upload, before any job starts."""
    check_columns(column_names(next(csv.reader([text.partition("\n")[0]]), [])))


@dataclass(frozen=True)
class Layout:
    """Where each known column sits in this file's rows: rows are lists of stripped cells, padded
    with one always-empty cell that absent optional columns point at."""

    header: list[str]
    position: dict[str, int]
    member_columns: list[tuple[str, int]]  # the member columns the file has, with their positions

    @classmethod
    def of(cls, cells: list[str]) -> "Layout":
        header = column_names(cells)
        check_columns(header)
        absent = len(header)
        # A repeated column name: its last cell counts, as with csv.DictReader.
        position = dict.fromkeys(ALL_COLUMNS, absent) | {column: i for i, column in enumerate(header)}
        return cls(header, position, [(c, position[c]) for c in MEMBER_COLUMNS if position[c] != absent])

    def cells(self, row: list[str]) -> list[str]:
        """Stripped cells, missing trailing ones empty; cells beyond the header are ignored."""
        width = len(self.header)
        cells = list(map(str.strip, row[:width]))
        cells.extend([""] * (width + 1 - len(cells)))
        return cells


Row = tuple[int, list[str]]  # (line number in the file, cells as ``Layout.cells`` makes them)


def read_rows(text: str) -> tuple[Layout, list[Row]]:
    """The file's layout and its non-blank rows."""
    reader = csv.reader(io.StringIO(text))
    try:
        layout = Layout.of(next(reader, []))
        return layout, [(reader.line_num, layout.cells(row)) for row in reader if row]
    except csv.Error as exc:
        raise FileRejected(f"line {reader.line_num}: malformed CSV ({exc})") from exc


def parse(raw: bytes) -> tuple[list[ParsedHousehold], list[RowError]]:
    """Every valid household, and every error by row and field. A household with any error is out."""
    return parse_text(decode(raw))


@dataclass(frozen=True)
class HouseholdRows:
    ref: str
    rows: list[Row]


def read_households(text: str) -> tuple[Layout, list[HouseholdRows]]:
    """The file's rows grouped by ``household_ref``, households in the order they first appear."""
    layout, rows = read_rows(text)
    ref_at = layout.position["household_ref"]
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row[1][ref_at], []).append(row)
    return layout, [HouseholdRows(ref, household_rows) for ref, household_rows in groups.items()]


def parse_text(text: str) -> tuple[list[ParsedHousehold], list[RowError]]:
    return parse_households(*read_households(text))


def parse_households(
    layout: Layout, households: list[HouseholdRows]
) -> tuple[list[ParsedHousehold], list[RowError]]:
    parsed_households, errors = [], []
    for household in households:
        parsed, problems = _parse_household(layout, household.ref, household.rows)
        if problems:
            errors += problems
        elif parsed is not None:
            parsed_households.append(parsed)
    return parsed_households, errors


def identity_keys(layout: Layout, household: HouseholdRows) -> set[tuple[str, str]]:
    """What could tie this household to another of the file: each national ID (two households
    holding one are both rejected) and its head's village and name (two such heads are flagged
    possible duplicates). Whenever two households' validated values would be equal, so are these
    keys: they are read from the cells the way validation reads them, minus the date of birth."""
    at = layout.position
    village = household.rows[0][1][at["village_code"]].zfill(8)
    keys = set()
    for _, cells in household.rows:
        if national_id := cells[at["national_id"]]:
            keys.add(("national_id", national_id))
        if cells[at["relationship"]] == "HEAD":
            # The model strips fewer characters than str.strip, so stripping again keeps equal names equal.
            keys.add(("head", f"{village} {clean_name(cells[at['name_km']]).strip()}"))
    return keys


def _parse_household(
    layout: Layout, ref: str, rows: list[Row]
) -> tuple[ParsedHousehold | None, list[RowError]]:
    lines = [line for line, _ in rows]
    if not ref:
        return None, [RowError(line, ref, "household_ref", "is required") for line in lines]
    too_long = [
        RowError(line, ref, layout.header[i], f"longer than {MAX_FIELD_CHARS} characters")
        for line, cells in rows
        if max(map(len, cells)) > MAX_FIELD_CHARS
        for i, cell in enumerate(cells)
        if len(cell) > MAX_FIELD_CHARS
    ]
    if too_long:
        return None, too_long
    first = rows[0][1]
    at = layout.position
    answers, errors = _answers(layout, first, lines[0], ref)
    round_no = first[at["round_no"]]
    body = {
        "village_code": first[at["village_code"]],
        "interviewed_on": first[at["interviewed_on"]],
        "identification_mode": first[at["identification_mode"]] or ("ROUND" if round_no else "ON_DEMAND"),
        "round_no": round_no or None,
        "answers": answers,
        "members": [_member(layout, cells) for _, cells in rows],
    }
    try:
        return ParsedHousehold(ref, lines, HouseholdCreate.model_validate(body)), errors
    except ValidationError as exc:
        return None, errors + [_row_error(e, lines, ref) for e in exc.errors()]


def _answers(layout: Layout, cells: list[str], line: int, ref: str) -> tuple[dict[str, Any], list[RowError]]:
    answers: dict[str, Any] = {}
    errors = []
    for column, kind in ANSWER_COLUMNS.items():
        text = cells[layout.position[column]]
        if text == "":
            continue
        try:
            answers[column] = _convert(text, kind)
        except ValueError:
            errors.append(RowError(line, ref, column, f"{text!r} is not a valid {kind.__name__}"))
    return answers, errors


def _convert(text: str, kind: type) -> Any:
    if kind is bool:
        return _boolean(text)
    return kind(text)


def _boolean(text: str) -> bool:
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(text)


def _member(layout: Layout, cells: list[str]) -> dict[str, Any]:
    member: dict[str, Any] = {}
    for column, at in layout.member_columns:
        if text := cells[at]:
            member[column] = clean_name(text) if column in NAME_COLUMNS else text
    return member  # pydantic parses the values and names the field of a bad one


def clean_name(text: str) -> str:
    return unicodedata.normalize("NFC", text.translate(ZERO_WIDTH))


def _row_error(error: Any, lines: list[int], ref: str) -> RowError:
    loc = error["loc"]
    if loc and loc[0] == "members" and len(loc) >= 3 and isinstance(loc[1], int):
        return RowError(lines[loc[1]], ref, str(loc[2]), clean_message(error["msg"]))
    field = ".".join(str(p) for p in loc) or "household"
    return RowError(lines[0], ref, field, clean_message(error["msg"]))
