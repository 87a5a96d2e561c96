from datetime import date

import orjson
from krousar_common.events.households import HouseholdSnapshot
from registration import service
from registration.models import HouseholdCreate
from registration.snapshots import snapshot_data

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
            {
                "name_km": "សុខ ចាន់",
                "sex": "F",
                "date_of_birth": "1980-05-01",
                "relationship": "HEAD",
                "national_id": "123456789",
                "lives_with_hiv": True,
            },
            {"name_km": "សុខ ដារ៉ា", "sex": "M", "date_of_birth": "2022-01-01", "relationship": "CHILD"},
        ],
    }
)


def test_bulk_snapshot_data_serialises_exactly_like_the_validated_model() -> None:
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
    reclassified = [{"effective_from": date(2024, 1, 1), "category": "OTHER_URBAN"}]

    data = snapshot_data(plan.household, plan.members, plan.assessment, plan.card, reclassified)

    model = HouseholdSnapshot.model_validate(data)
    assert orjson.loads(orjson.dumps(data)) == model.model_dump(mode="json")
    assert model.location_category_on(date(2023, 12, 31)) == "PHNOM_PENH"
    assert model.location_category_on(date(2024, 1, 1)) == "OTHER_URBAN"
