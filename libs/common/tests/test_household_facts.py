import uuid
from datetime import date

from krousar_common.events.households import HouseholdSnapshot
from krousar_common.household_facts import facts_of, projection_columns, validated_facts


def test_facts_read_off_the_model_are_those_of_its_json_data() -> None:
    head, child = uuid.uuid4(), uuid.uuid4()
    member = {"name_km": "សុខ", "sex": "F", "date_of_birth": "1980-01-01", "relationship": "HEAD"}
    snapshot = HouseholdSnapshot.model_validate(
        {
            "household_id": uuid.uuid4(),
            "version": 3,
            "village_code": "12010101",
            "commune_code": "120101",
            "district_code": "1201",
            "province_code": "12",
            "location_history": [
                {"effective_from": "1900-01-01", "category": "RURAL"},
                {"effective_from": "2024-07-01", "category": "OTHER_URBAN"},
            ],
            "interviewed_on": date(2025, 3, 1),
            "head_member_id": head,
            "female_headed": True,
            "members": [
                {**member, "member_id": head, "has_disability": True, "left_on": "2025-06-30"},
                {
                    **member,
                    "member_id": child,
                    "relationship": "CHILD",
                    "date_of_birth": "2024-02-29",
                    "lives_with_hiv": True,
                    "in_school": True,
                    "joined_on": "2024-02-29",
                },
            ],
        }
    )

    expected = facts_of(snapshot.model_dump(mode="json"))
    assert validated_facts(snapshot) == expected
    assert projection_columns(snapshot)["facts"] == expected
    assert expected[1][1] == [str(child), "2024-02-29", False, True, True, "2024-02-29", None]
