import csv
import io
import sys
from collections.abc import Iterable

from pydantic import ConfigDict, TypeAdapter
from registration.imports.csv_format import ALL_COLUMNS, identity_keys, stream_households, survey
from registration.imports.service import batches


def household(ref: str, *, national_id: str = "", name: str = "សុខ ចាន់", village: str = "12010101") -> dict:
    return {
        "household_ref": ref,
        "village_code": village,
        "interviewed_on": "2025-03-01",
        "name_km": name,
        "sex": "F",
        "date_of_birth": "1980-05-01",
        "relationship": "HEAD",
        "national_id": national_id,
    }


def read(*rows: dict) -> tuple:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ALL_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    found = survey(io.StringIO(out.getvalue()))
    return found, list(stream_households(io.StringIO(out.getvalue()), found))


def refs(cut: Iterable) -> list[list[str]]:
    return [[h.ref for h in batch] for batch in cut]


def test_households_tied_by_a_national_id_or_a_head_go_last_together() -> None:
    found, households = read(
        household("A", national_id="111111111", name="ក"),
        household("B", name="ខ"),
        household("C", name="គ", village="12010102"),
        household("D", name="ឃ"),
        household("E", national_id="111111111", name="ង"),
        household("F", name="ច"),
        household("G", name="គ", village="12010102"),
        household("H", name="គ"),  # same name as C and G, another village
    )

    assert refs(batches(found, households, size=2)) == [["B", "D"], ["F", "H"], ["A", "C", "E", "G"]]


def test_a_national_id_of_any_member_ties_households() -> None:
    child = {**household("A", national_id="333333333", name="ជ"), "relationship": "CHILD"}
    found, households = read(
        household("A", name="ក"), household("B", name="ខ"), child, household("C", national_id="333333333")
    )
    assert found.tied == {"A", "C"}
    assert refs(batches(found, households, size=5)) == [["B"], ["A", "C"]]


def test_a_file_of_unrelated_households_is_cut_in_order() -> None:
    found, households = read(*(household(str(i), name=f"ក{i}") for i in range(5)))
    assert refs(batches(found, households, size=2)) == [["0", "1"], ["2", "3"], ["4"]]


def test_identity_keys_of_values_validation_makes_equal_are_equal() -> None:
    found, households = read(
        household("A", name="សុខ\u200bណារី", village="1010101"),
        household("B", name=" សុខណារី\ufeff", village="01010101"),
    )
    first, second = (identity_keys(found.layout, h) for h in households)
    assert first == second == {("head", "01010101 សុខណារី")}


def test_only_members_named_head_give_a_head_key() -> None:
    found, households = read({**household("A", national_id="222222222"), "relationship": "SPOUSE"})
    assert identity_keys(found.layout, households[0]) == {("national_id", "222222222")}


def test_validation_strips_no_character_that_str_strip_keeps() -> None:
    """Why an identity key may strip with ``str.strip``: names the model makes equal stay equal."""
    strip = TypeAdapter(list[str], config=ConfigDict(str_strip_whitespace=True))
    characters = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    stripped = strip.validate_python([f"{c}x{c}" for c in characters])
    assert all(f"{c}x{c}".strip() == "x" for c, s in zip(characters, stripped, strict=True) if s == "x")
