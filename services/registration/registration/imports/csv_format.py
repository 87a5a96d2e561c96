"""The import CSV: one row per member, grouped into households by ``household_ref``.

Pure parsing and validation: text in, household commands and errors by row and field out.
Household and answer columns are read from a household's first row. A file is read twice, as a
stream: once to survey it (its households, their identity keys), once to hand out its households.
"""

import codecs
import csv
import io
import operator
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
MAX_HEADER_CHARS = 64 * 1024
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


class UploadCheck:
    """What makes a file as a whole unreadable, checked chunk by chunk as an upload arrives: a
    national round is hundreds of MiB, spooled to disk rather than held in memory."""

    def __init__(self) -> None:
        self.size = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._first_line = ""  # for the header check, until its line break

    def feed(self, chunk: bytes, *, final: bool = False) -> None:
        if self.size + len(chunk) > MAX_FILE_BYTES:
            raise FileRejected(
                f"file is larger than {MAX_FILE_BYTES // 2**20} MiB: split the round into several files"
            )
        held_back = len(self._decoder.getstate()[0])  # an incomplete character's bytes
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            raise FileRejected(
                f"file is not UTF-8 (byte {self.size - held_back + exc.start}):"
                " save it as 'CSV UTF-8' and upload again"
            ) from exc
        # No text of a round holds one, and PostgreSQL could not store it: UTF-16 without a BOM is
        # valid UTF-8 with a NUL after every Latin letter.
        if (nul := chunk.find(b"\x00")) >= 0:
            raise FileRejected(
                f"file contains a NUL byte (byte {self.size + nul}), so it is not CSV text (UTF-16?):"
                " save it as 'CSV UTF-8' and upload again"
            )
        if "\n" not in self._first_line and len(self._first_line) < MAX_HEADER_CHARS:
            self._first_line += text
        self.size += len(chunk)

    def finish(self) -> None:
        """After the last chunk: the file's end, and its header."""
        self.feed(b"", final=True)
        check_header(self._first_line)


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


def read_rows(source: Iterable[str]) -> tuple[Layout, Iterator[Row]]:
    """The file's layout and its non-blank rows, read as they are needed."""
    layout, reader = _reader(source)
    return layout, _rows(reader, layout)


def _reader(source: Iterable[str]) -> tuple[Layout, Any]:
    """The file's layout, and a csv reader at its first row."""
    reader = csv.reader(source)
    with _malformed(reader):
        return Layout.of(next(reader, [])), reader


@contextmanager
def _malformed(reader: Any) -> Iterator[None]:
    try:
        yield
    except csv.Error as exc:
        raise FileRejected(f"line {reader.line_num}: malformed CSV ({exc})") from exc


def _rows(reader: Any, layout: Layout) -> Iterator[Row]:
    with _malformed(reader):
        for row in reader:
            if row:
                yield reader.line_num, layout.cells(row)


def parse(raw: bytes) -> tuple[list[ParsedHousehold], list[RowError]]:
    """Every valid household, and every error by row and field. A household with any error is out."""
    UploadCheck().feed(raw, final=True)
    return parse_text(raw.decode("utf-8-sig"))


@dataclass(frozen=True)
class HouseholdRows:
    ref: str
    rows: list[Row]


@dataclass
class Survey:
    """What an import must know of the whole file before its first household (the first pass)."""

    layout: Layout
    rows_of: dict[str, int] = field(default_factory=dict)  # ref -> rows, households in file order
    villages: Counter[str] = field(default_factory=Counter)  # village cell of first rows -> households
    tied: set[str] = field(default_factory=set)  # refs sharing an identity key with another household

    @property
    def households(self) -> int:
        return len(self.rows_of)


SURVEYED = ("household_ref", "village_code", "national_id", "relationship", "name_km")


def survey(source: Iterable[str]) -> Survey:
    """A first pass over the file reading only the cells the survey needs (a national round is
    2.8 million rows: stripping all of every row's cells would double its time)."""
    layout, reader = _reader(source)
    found = Survey(layout)
    surveyed = operator.itemgetter(*(layout.position[column] for column in SURVEYED))
    padding = [""] * (len(layout.header) + 1)  # absent columns point past the header's cells
    first_village: dict[str, str] = {}
    holder: dict[tuple[str, str], str] = {}  # identity key -> the first household with it
    with _malformed(reader):
        for row in reader:
            if not row:
                continue
            ref, village, national_id, relationship, name_km = map(str.strip, surveyed(row + padding))
            if ref not in first_village:
                first_village[ref] = village
                found.villages[village] += 1
            found.rows_of[ref] = found.rows_of.get(ref, 0) + 1
            for key in _member_identity_keys(first_village[ref], national_id, relationship, name_km):
                if (first := holder.setdefault(key, ref)) != ref:
                    found.tied.update((first, ref))
    return found


def stream_households(source: Iterable[str], found: Survey) -> Iterator[HouseholdRows]:
    """The surveyed file's households, in the order they first appear, each once all its rows are
    read: in a file whose households' rows are together, one household is held at a time."""
    ref_at = found.layout.position["household_ref"]
    _, rows = read_rows(source)
    order = iter(found.rows_of)
    next_ref = next(order, None)
    reading: dict[str, list[Row]] = {}
    complete: dict[str, list[Row]] = {}
    for row in rows:
        ref = row[1][ref_at]
        household_rows = reading.setdefault(ref, [])
        household_rows.append(row)
        if len(household_rows) == found.rows_of[ref]:
            complete[ref] = reading.pop(ref)
        while next_ref is not None and next_ref in complete:
            yield HouseholdRows(next_ref, complete.pop(next_ref))
            next_ref = next(order, None)


def read_households(text: str) -> tuple[Layout, list[HouseholdRows]]:
    """A whole file's households at once, for text small enough to hold."""
    found = survey(io.StringIO(text))
    return found.layout, list(stream_households(io.StringIO(text), found))


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
    village = household.rows[0][1][at["village_code"]]
    return {
        key
        for _, cells in household.rows
        for key in _member_identity_keys(
            village, cells[at["national_id"]], cells[at["relationship"]], cells[at["name_km"]]
        )
    }


def _member_identity_keys(
    village: str, national_id: str, relationship: str, name_km: str
) -> list[tuple[str, str]]:
    """The identity keys of a member's row (stripped cells); ``village``: its household's first row's."""
    keys = []
    if national_id:
        keys.append(("national_id", national_id))
    if relationship == "HEAD":
        # The model strips fewer characters than str.strip, so stripping again keeps equal names equal.
        keys.append(("head", f"{village.zfill(8)} {clean_name(name_km).strip()}"))
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
