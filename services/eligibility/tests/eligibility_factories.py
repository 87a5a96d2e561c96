"""Plain factories for the eligibility unit tests: programmes from the seed, households, enrolments."""

import uuid
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from eligibility.household import facts_of
from krousar_common.events.eligibility import Enrolment, PayeeType
from krousar_common.events.households import (
    CardSnapshot,
    CardStatus,
    HouseholdSnapshot,
    LocationCategory,
    LocationPeriod,
    MemberSnapshot,
    PovertyLevel,
    Relationship,
    Sex,
)
from krousar_common.programmes import ProgrammeStatus, ProgrammeVersion, load_programme

SEED = Path(__file__).resolve().parents[2] / "topups" / "topups" / "seed"
COVID = load_programme(SEED / "COVID19_CT.json")
PWYC = load_programme(SEED / "PWYC.json")
FAMILY = load_programme(SEED / "FAMILY_PACKAGE.json")
FLOOD = load_programme(SEED / "examples" / "FLOOD_2022.json")
INFLATION = load_programme(SEED / "examples" / "INFLATION_2022.json")
MARCH_2023 = date(2023, 3, 1)


def make_member(**over: Any) -> MemberSnapshot:
    fields: dict[str, Any] = {
        "member_id": uuid.uuid4(),
        "name_km": "សុខ",
        "sex": Sex.F,
        "date_of_birth": date(1985, 5, 17),
        "relationship": Relationship.CHILD,
    }
    return MemberSnapshot(**(fields | over))


def make_card(**over: Any) -> CardSnapshot:
    fields: dict[str, Any] = {
        "card_number": "12010101-00001-5",
        "status": CardStatus.ACTIVE,
        "issued_on": date(2020, 1, 1),
        "valid_until": date(2030, 12, 31),
    }
    return CardSnapshot(**(fields | over))


def make_household(*members: MemberSnapshot, **over: Any) -> HouseholdSnapshot:
    head = make_member(relationship=Relationship.HEAD, date_of_birth=date(1970, 1, 1))
    fields: dict[str, Any] = {
        "household_id": uuid.uuid4(),
        "version": 1,
        "village_code": "12010101",
        "commune_code": "120101",
        "district_code": "1201",
        "province_code": "12",
        "location_history": [
            LocationPeriod(effective_from=date(1900, 1, 1), category=LocationCategory.PHNOM_PENH)
        ],
        "interviewed_on": date(2020, 1, 1),
        "poverty_level": PovertyLevel.POOR_1,
        "head_member_id": head.member_id,
        "female_headed": True,
        "card": make_card(),
        "members": [head, *members],
    }
    return HouseholdSnapshot(**(fields | over))


def make_enrolment() -> Enrolment:
    return Enrolment(
        enrolment_id=uuid.uuid4(),
        payee_type=PayeeType.HEAD,
        payee_name="សុខ",
        verified_by="staff-1",
        verified_on=date(2020, 5, 1),
    )


ENROLLED = make_enrolment()


def with_status(programme: ProgrammeVersion, status: ProgrammeStatus) -> ProgrammeVersion:
    return programme.model_copy(update={"status": status})


def projection_row(snapshot: HouseholdSnapshot) -> dict[str, Any]:
    """The row ``store.upsert_household`` writes, as deciding reads it back (facts as JSON text)."""
    data, card = snapshot.model_dump(mode="json"), snapshot.card
    return {
        "household_id": snapshot.household_id,
        "version": snapshot.version,
        "status": data["status"],
        "village_code": snapshot.village_code,
        "commune_code": snapshot.commune_code,
        "district_code": snapshot.district_code,
        "province_code": snapshot.province_code,
        "poverty_level": data["poverty_level"],
        "female_headed": snapshot.female_headed,
        "card_status": None if card is None else data["card"]["status"],
        "card_issued_on": None if card is None else card.issued_on,
        "card_valid_until": None if card is None else card.valid_until,
        "facts": orjson.dumps(facts_of(data)).decode(),
    }
