from datetime import date
from uuid import RFC_4122, uuid4

from registration import service, store
from registration.models import HouseholdCreate, MemberCreate

MEMBER = {"name_km": "សុខ ចាន់", "sex": "F", "date_of_birth": "1980-05-01", "relationship": "HEAD"}
COMMAND = HouseholdCreate.model_validate(
    {
        "village_code": "12010101",
        "interviewed_on": "2025-03-01",
        "answers": {
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
        },
        "members": [
            {**MEMBER, "national_id": "123456789", "lives_with_hiv": True},
            {"name_km": "សុខ ដារ៉ា", "sex": "M", "date_of_birth": "2022-01-01", "relationship": "CHILD"},
        ],
    }
)


def test_a_member_row_is_the_member_as_validated_with_its_registry_columns() -> None:
    member = MemberCreate.model_validate({**MEMBER, "national_id": "123456789", "in_school": "yes"})
    household_id = uuid4()

    row = service.member_row(member, household_id, joined_on=date(2025, 3, 2), joined_reason="MOVED_IN")

    assert row == {
        **member.model_dump(),
        "member_id": row["member_id"],
        "household_id": household_id,
        "active": True,
        "joined_on": date(2025, 3, 2),
        "joined_reason": "MOVED_IN",
        "left_on": None,
        "left_reason": None,
    }
    assert row["member_id"].version == 4


def test_a_planned_registration_holds_every_column_it_writes() -> None:
    village = service.resolve_village(COMMAND.village_code)
    plan = service.plan_registration(
        COMMAND,
        village,
        service.score_command(COMMAND, village),
        actor="t",
        possible_duplicate=False,
        card_number="12010101-00001-1",
        card_valid_years=3,
    )

    assert plan.card is not None
    for row, columns in [
        (plan.household, store.HOUSEHOLD_COLUMNS),
        *((member, store.MEMBER_COLUMNS) for member in plan.members),
        (plan.assessment, store.ASSESSMENT_COLUMNS),
        (plan.card, store.CARD_COLUMNS),
        (plan.audit, store.AUDIT_COLUMNS),
    ]:
        assert set(columns) <= set(row)
    ids = [plan.household["household_id"], plan.assessment["assessment_id"]]
    ids += [m["member_id"] for m in plan.members]
    assert len(set(ids)) == len(ids)
    assert plan.household["head_member_id"] == plan.members[0]["member_id"]


def test_new_ids_are_distinct_random_uuids() -> None:
    ids = service.new_ids(1000)
    assert len(set(ids)) == 1000
    assert {(i.version, i.variant) for i in ids} == {(4, RFC_4122)}
