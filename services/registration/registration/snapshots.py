"""The household as events carry it (``HouseholdSnapshot``), built from registry rows.

``snapshot_data`` builds the event's plain data directly — the bulk import publishes hundreds of
thousands of them and skips model validation; ``snapshot_from_rows`` is the validated model. A
unit test keeps the two identical.
"""

import operator
from datetime import date
from functools import cache
from typing import Any

from krousar_common.events import households as ev

from registration.domain import geography

# The first location period of every household; reclassifications add dated periods after it.
SINCE_ALWAYS = date(1900, 1, 1)
MEMBER_FIELDS = tuple(ev.MemberSnapshot.model_fields)
_member_values = operator.itemgetter(*MEMBER_FIELDS)


@cache
def commune_units() -> dict[str, str]:
    return geography.load_commune_units()


def snapshot_data(
    household: Any, members: list[Any], assessment: Any, card: Any, reclassified: list[Any]
) -> dict[str, Any]:
    base = geography.location_category(household["commune_code"], commune_units())
    history = [{"effective_from": SINCE_ALWAYS, "category": str(base)}]
    history += [{"effective_from": r["effective_from"], "category": r["category"]} for r in reclassified]
    head = next(m for m in members if m["member_id"] == household["head_member_id"])
    return {
        "household_id": household["household_id"],
        "version": household["version"],
        "status": household["status"],
        "village_code": household["village_code"],
        "commune_code": household["commune_code"],
        "district_code": household["district_code"],
        "province_code": household["province_code"],
        "location_history": history,
        "interviewed_on": household["interviewed_on"],
        "score": assessment["score"] if assessment else None,
        "scoring_model": assessment["scoring_model"] if assessment else None,
        "model_level": str(assessment["model_level"]) if assessment else None,
        "poverty_level": _text(household["poverty_level"]),
        "head_member_id": household["head_member_id"],
        "female_headed": head["sex"] == "F",
        "possible_duplicate": household["possible_duplicate"],
        "card": _card(card),
        "members": [dict(zip(MEMBER_FIELDS, _member_values(m), strict=True)) for m in members],
    }


def _card(card: Any) -> dict[str, Any] | None:
    if not card:
        return None
    return {k: card[k] for k in ("card_number", "status", "issued_on", "valid_until")}


def _text(value: Any) -> Any:
    """Enums (StrEnum) as their plain string, so the data serialises like the model does."""
    return str(value) if isinstance(value, str) else value


def snapshot_from_rows(
    household: Any, members: list[Any], assessment: Any, card: Any, reclassified: list[Any]
) -> ev.HouseholdSnapshot:
    data = snapshot_data(household, members, assessment, card, reclassified)
    return ev.HouseholdSnapshot.model_validate(data)
