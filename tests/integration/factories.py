"""Plain factory functions for request bodies, with overridable defaults."""

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
