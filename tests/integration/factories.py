"""Plain factory functions for request bodies, with overridable defaults."""

import csv
import io
import random
from typing import Any

URBAN_POOR_ANSWERS = {
    "roof": "THATCH",
    "walls": "THATCH_OR_BAMBOO",
    "floor_area_m2": 12,
    "house_condition": "POOR",
    "tenure": "INFORMAL",
    "earners": 0,
    "transport": "NONE",
    "valuables": 0,
    "food_shortage_months": 4,
    "shock_12m": True,
}
RURAL_POOR_ANSWERS = {
    "roof": "THATCH",
    "walls": "THATCH_OR_BAMBOO",
    "floor_area_m2": 12,
    "house_condition": "POOR",
    "land_ha": 0,
    "cattle": 0,
    "transport": "NONE",
    "valuables": 0,
    "food_shortage_months": 4,
    "shock_12m": True,
}


def make_member(**over: Any) -> dict[str, Any]:
    member = {"name_km": "សុខ ចាន់", "sex": "F", "date_of_birth": "1980-05-01", "relationship": "HEAD"}
    member.update(over)
    return member


def random_national_id() -> str:
    return f"{random.randrange(10**8, 10**9)}"


def make_household(**over: Any) -> dict[str, Any]:
    household = {
        "village_code": "12010101",
        "interviewed_on": "2025-03-01",
        "answers": dict(URBAN_POOR_ANSWERS),
        "members": [
            make_member(national_id=random_national_id()),
            make_member(name_km="សុខ ដារ៉ា", sex="M", date_of_birth="2022-01-01", relationship="CHILD"),
        ],
    }
    household.update(over)
    return household


# A score of 33 on SYNTH-URBAN-1 for the default two members (an adult and a small child).
URBAN_POOR_2_ANSWERS = {
    **URBAN_POOR_ANSWERS,
    "earners": 1,
    "transport": "MOTORBIKE",
    "valuables": 1,
    "food_shortage_months": 0,
    "shock_12m": False,
}
URBAN_NOT_POOR_ANSWERS = {
    "roof": "TILE_OR_CONCRETE",
    "walls": "BRICK_OR_CONCRETE",
    "floor_area_m2": 120,
    "house_condition": "GOOD",
    "tenure": "OWNED",
    "earners": 2,
    "transport": "CAR_OR_TRACTOR",
    "valuables": 5,
    "food_shortage_months": 0,
    "shock_12m": False,
}
KHMER_CONSONANTS = [chr(c) for c in range(0x1780, 0x17A3)]


def random_khmer_name() -> str:
    """A head name no other test uses, so the duplicate check flags only what a test means it to."""
    return (
        "".join(random.choices(KHMER_CONSONANTS, k=5)) + " " + "".join(random.choices(KHMER_CONSONANTS, k=4))
    )


def make_phnom_penh_check_household(**over: Any) -> dict[str, Any]:
    """DOMAIN.md §5.1's check household: Phnom Penh, POOR_1, 6 members, on 2020-07-01 two aged 60+
    and two under 5 (120,000 + 6 × 52,000 + 4 × 40,000 = 592,000 riel)."""
    members = [
        make_member(
            name_km=random_khmer_name(), sex="F", date_of_birth="1985-02-10", national_id=random_national_id()
        ),
        make_member(name_km="សុខ វណ្ណា", sex="M", date_of_birth="1983-09-01", relationship="SPOUSE"),
        make_member(name_km="សុខ ម៉ៅ", sex="M", date_of_birth="1950-01-15", relationship="PARENT"),
        make_member(name_km="សុខ ខៀវ", sex="F", date_of_birth="1958-07-01", relationship="PARENT"),
        make_member(name_km="សុខ ពិសី", sex="F", date_of_birth="2016-08-20", relationship="CHILD"),
        make_member(name_km="សុខ រតនា", sex="M", date_of_birth="2019-12-01", relationship="CHILD"),
    ]
    return make_household(village_code="12010101", interviewed_on="2020-06-15", members=members, **over)


def household_csv_rows(ref: str, household: dict[str, Any]) -> list[dict[str, Any]]:
    """A registration body as import rows: one per member, household and answers on the first."""
    first = {
        "village_code": household["village_code"],
        "interviewed_on": household["interviewed_on"],
        **household["answers"],
    }
    return [
        {"household_ref": ref, **(first if i == 0 else {}), **member}
        for i, member in enumerate(household["members"])
    ]


def csv_file(rows: list[dict[str, Any]], columns: list[str] | None = None) -> bytes:
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
