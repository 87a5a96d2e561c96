"""The gazetteer routes and village reclassification on the real stack (DOMAIN.md §1)."""

import pytest
from factories import RURAL_POOR_ANSWERS, make_household
from household_events import HouseholdEvents
from krousar_common.testing import bearer

ADMIN = bearer("admin-1", "registry_admin")
STAFF = bearer("staff-banteay-meanchey", "commune_staff", communes=["010201"])
VIEWER = bearer("viewer-1", "viewer")
RESETTLED_VILLAGE = "01020104"  # Kouk Pnov, in a khum; no other test registers there


@pytest.fixture(scope="module")
async def household_events(stack):
    async with HouseholdEvents(stack) as events:
        yield events


@pytest.fixture
async def api(registration):
    async with registration.client() as client:
        yield client


def is_khmer(text: str) -> bool:
    return any("\u1780" <= ch <= "\u17ff" for ch in text)


async def places(api, path: str) -> dict[str, dict]:
    response = await api.get(f"/v1/geo/{path}", headers=VIEWER)
    assert response.status_code == 200, response.text
    return {place["code"]: place for place in response.json()}


async def test_gazetteer_lists_places_with_khmer_and_english_names(api) -> None:
    provinces = await places(api, "provinces")
    districts = await places(api, "provinces/12/districts")
    communes = await places(api, "districts/1201/communes")
    villages = await places(api, "communes/120101/villages")

    assert len(provinces) == 25
    assert provinces["12"]["name_en"] == "Phnom Penh"
    assert "ភ្នំពេញ" in provinces["12"]["name_km"]  # officially រាជធានីភ្នំពេញ, "capital Phnom Penh"
    assert districts["1201"]["name_en"] == "Chamkar Mon"
    assert all(code.startswith("12") and len(code) == 4 for code in districts)
    assert communes["120101"]["name_en"] == "Tonle Basak"
    assert all(code.startswith("1201") and len(code) == 6 for code in communes)
    assert villages["12010101"] == {"code": "12010101", "name_km": "ភូមិ ១", "name_en": "Phum Muoy"}
    assert all(code.startswith("120101") and len(code) == 8 for code in villages)
    every_place = [*provinces.values(), *districts.values(), *communes.values(), *villages.values()]
    assert all(is_khmer(p["name_km"]) and p["name_en"].isascii() for p in every_place)


@pytest.mark.parametrize(
    "path", ["provinces/99/districts", "provinces/1/districts", "districts/1299/communes"]
)
async def test_unknown_place_is_404(api, path) -> None:
    assert (await api.get(f"/v1/geo/{path}", headers=VIEWER)).status_code == 404


async def test_reclassifying_a_village_republishes_its_households(api, household_events) -> None:
    body = {
        "category": "OTHER_URBAN",
        "effective_from": "2026-01-01",
        "reason": "Resettled village moved to the urban rate",
    }
    households = []
    for _ in range(2):
        response = await api.post(
            "/v1/households",
            json=make_household(village_code=RESETTLED_VILLAGE, answers=RURAL_POOR_ANSWERS),
            headers=STAFF,
        )
        assert response.status_code == 201, response.text
        assert response.json()["location_category"] == "RURAL"
        households.append(response.json()["household_id"])
    path = f"/v1/geo/villages/{RESETTLED_VILLAGE}"

    refused = await api.put(f"{path}/classification", json=body, headers=STAFF)
    done = await api.put(f"{path}/classification", json=body, headers=ADMIN)
    village = await api.get(path, headers=VIEWER)

    assert refused.status_code == 403
    assert done.status_code == 200, done.text
    assert village.json() == done.json()
    assert village.json()["commune_unit"] == "khum"
    assert village.json()["location_category_today"] == "OTHER_URBAN"
    history = [(p["effective_from"], p["category"]) for p in village.json()["classification_history"]]
    assert history[0][1] == "RURAL"
    assert history[1:] == [("2026-01-01", "OTHER_URBAN")]
    assert village.json()["classification_history"][1]["reason"] == body["reason"]
    for household_id in households:
        after = (await api.get(f"/v1/households/{household_id}", headers=VIEWER)).json()
        assert (after["version"], after["location_category"]) == (2, "OTHER_URBAN")
        (message,) = await household_events.wait(household_id, "krousar.HouseholdReclassified")
        event = message.event
        assert (event.village_code, event.category, str(event.effective_from)) == (
            RESETTLED_VILLAGE,
            "OTHER_URBAN",
            "2026-01-01",
        )
        assert [(str(p.effective_from), p.category) for p in event.household.location_history][1:] == [
            ("2026-01-01", "OTHER_URBAN")
        ]
        assert event.household.version == 2
