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
            make_member(name_km="សុខ ដារ៉ា", sex="M", date_of_birth="2019-01-01", relationship="CHILD"),
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


def example_topup(code: str) -> dict[str, Any]:
    """A top-up definition exactly as written in ``services/topups/topups/seed/examples``."""
    import json  # local: this file's header belongs to other factories
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "services" / "topups" / "topups" / "seed" / "examples"
    return json.loads((examples / f"{code}.json").read_text())


def make_topup(code: str, *, payment_dates: list[str], **target: Any) -> dict[str, Any]:
    """A top-up paying 100,000 + 10,000/member (all locations, POOR_1 and POOR_2) on ``payment_dates``."""
    rates = {"base": 100_000, "per_member": 10_000, "per_vulnerable": 0}
    levels = {"POOR_1": rates, "POOR_2": rates}
    return {
        "code": code,
        "version": 1,
        "kind": "TOPUP",
        "title": f"Test top-up {code}",
        "legal_reference": "integration test",
        "calendar": {"type": "PAYMENT_DATES", "payment_dates": payment_dates},
        "target": {"poverty_levels": ["POOR_1", "POOR_2"], **target},
        "rate_tables": [
            {
                "effective_from": payment_dates[0],
                "rates": {loc: levels for loc in ("PHNOM_PENH", "OTHER_URBAN", "RURAL")},
            }
        ],
    }


def make_snapshot_member(**over: Any) -> dict[str, Any]:
    """A member as household events carry it (``MemberSnapshot``)."""
    import uuid  # local: this file's header belongs to other factories

    member = {
        "member_id": str(uuid.uuid4()),
        "name_km": "សុខ ចាន់",
        "sex": "F",
        "date_of_birth": "1980-05-01",
        "relationship": "HEAD",
    }
    member.update(over)
    return member


def make_snapshot(
    village_code: str = "12010101",
    *,
    category: str = "PHNOM_PENH",
    level: str = "POOR_1",
    members: list[dict[str, Any]] | None = None,
    **over: Any,
) -> dict[str, Any]:
    """A household as events carry it (``HouseholdSnapshot``): its location category since always,
    an ACTIVE equity card valid from 2020-06-15 to 2026-06-14, a head and one young child."""
    import uuid

    members = members or [
        make_snapshot_member(),
        make_snapshot_member(sex="M", date_of_birth="2012-03-01", relationship="CHILD"),
    ]
    household = {
        "household_id": str(uuid.uuid4()),
        "version": 1,
        "status": "ACTIVE",
        "village_code": village_code,
        "commune_code": village_code[:6],
        "district_code": village_code[:4],
        "province_code": village_code[:2],
        "location_history": [{"effective_from": "1900-01-01", "category": category}],
        "interviewed_on": "2020-06-15",
        "score": 45 if level == "POOR_1" else 30 if level == "POOR_2" else 10,
        "scoring_model": "SYNTH-URBAN-1" if category != "RURAL" else "SYNTH-RURAL-1",
        "model_level": level,
        "poverty_level": level,
        "head_member_id": members[0]["member_id"],
        "female_headed": members[0]["sex"] == "F",
        "card": {
            "card_number": f"{village_code}-00001-0",
            "status": "ACTIVE",
            "issued_on": "2020-06-15",
            "valid_until": "2026-06-14",
        },
        "members": members,
    }
    household.update(over)
    return household


def make_check_snapshot(**over: Any) -> dict[str, Any]:
    """DOMAIN.md §5.1's check household as a snapshot: Phnom Penh, POOR_1, 6 members, on 2020-07-01
    two aged 60+ and two under 5 (120,000 + 6 × 52,000 + 4 × 40,000 = 592,000 riel)."""
    members = [
        make_snapshot_member(date_of_birth="1985-02-10"),
        make_snapshot_member(sex="M", date_of_birth="1983-09-01", relationship="SPOUSE"),
        make_snapshot_member(sex="M", date_of_birth="1950-01-15", relationship="PARENT"),
        make_snapshot_member(date_of_birth="1958-07-01", relationship="PARENT"),
        make_snapshot_member(date_of_birth="2016-08-20", relationship="CHILD"),
        make_snapshot_member(sex="M", date_of_birth="2019-12-01", relationship="CHILD"),
    ]
    return make_snapshot("12010101", category="PHNOM_PENH", level="POOR_1", members=members, **over)


def make_decision(
    household: dict[str, Any],
    programme_code: str,
    *,
    eligible: bool = True,
    reasons: list[str] | None = None,
    enrolled: bool = True,
    **over: Any,
) -> dict[str, Any]:
    """An ``EligibilityDecided`` body for a snapshot (see make_snapshot) with one programme's
    decision; enrolled: the head is the payee, on Wing."""
    import uuid
    from datetime import UTC, datetime

    enrolment = {
        "enrolment_id": str(uuid.uuid4()),
        "payee_type": "HEAD",
        "payee_name": household["members"][0]["name_km"],
        "payee_member_id": household["head_member_id"],
        "channel": "WING",
        "account": f"0{random.randrange(10**8, 10**9)}",
        "verified_by": "commune-staff-1",
        "verified_on": "2020-06-20",
    }
    decision = {
        "household_id": household["household_id"],
        "effective_on": "2020-07-01",
        "decided_at": datetime.now(UTC).isoformat(),
        "household": household,
        "enrolment": enrolment if enrolled else None,
        "decisions": [
            {
                "programme_code": programme_code,
                "programme_version": 1,
                "eligible": eligible,
                "reasons": reasons or [],
            }
        ],
    }
    decision.update(over)
    return decision
