"""A household's life in the registry: members moving in and out and marrying in (dated versions
with their events), withdrawal (a status, never a delete; later writes refused), its full history
and audit trail; and the household list, filtered by place, level and card status, page by page.

Households of the list tests live in provinces 15 and 16, which no other test module writes to;
other modules' households may still show up in a listing, so the checks look at their own."""

from datetime import date
from typing import Any

import httpx
import pytest
from factories import (
    RURAL_POOR_ANSWERS,
    URBAN_NOT_POOR_ANSWERS,
    URBAN_POOR_2_ANSWERS,
    URBAN_POOR_ANSWERS,
    make_household,
    make_member,
    random_khmer_name,
    random_national_id,
)
from household_events import HouseholdEvents
from krousar_common.testing import bearer

STAFF = bearer("staff-phnom-penh", "commune_staff", communes=["120101"])
ADMIN = bearer("admin-history", "registry_admin")
VIEWER = bearer("viewer-history", "viewer")
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
async def household_events(stack):
    async with HouseholdEvents(stack) as events:
        yield events


@pytest.fixture
async def api(registration):
    async with registration.client() as client:
        yield client


async def register(api: httpx.AsyncClient, body: dict[str, Any], headers: dict = STAFF) -> dict[str, Any]:
    response = await api.post("/v1/households", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def change(
    api: httpx.AsyncClient, household: dict[str, Any], path: str, body: dict[str, Any], headers: dict = STAFF
) -> httpx.Response:
    """POST a change to the household as of the version in ``household`` (its If-Match)."""
    return await api.post(
        f"/v1/households/{household['household_id']}/{path}",
        json=body,
        headers={**headers, "If-Match": f'"{household["version"]}"'},
    )


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def member_named(household: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in household["members"] if m["name_km"] == name)


async def history(api: httpx.AsyncClient, household_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/households/{household_id}/history", headers=VIEWER)
    assert response.status_code == 200, response.text
    return response.json()


# --- life events ----------------------------------------------------------------------------------


async def test_moving_in_marrying_in_and_moving_out_are_dated_versions(api, household_events) -> None:
    household = await register(api, make_household())
    household_id = household["household_id"]
    child = next(m for m in household["members"] if m["relationship"] == "CHILD")
    grandmother = make_member(name_km="សុខ យាយ", date_of_birth="1950-03-01", relationship="PARENT")
    spouse = make_member(name_km="សុខ ប្តី", sex="M", date_of_birth="1979-08-01", relationship="SPOUSE")

    moved_in = ok(
        await change(api, household, "moves-in", {"member": grandmother, "effective_on": "2025-04-01"})
    )
    married = ok(await change(api, moved_in, "marriages", {"member": spouse, "effective_on": "2025-05-01"}))
    leaving = {"member_id": child["member_id"], "effective_on": "2025-06-01"}
    moved_out = ok(await change(api, married, "moves-out", leaving))

    assert [h["version"] for h in (moved_in, married, moved_out)] == [2, 3, 4]
    joined = [member_named(moved_out, name) for name in ("សុខ យាយ", "សុខ ប្តី")]
    assert [(m["relationship"], m["joined_on"], m["joined_reason"]) for m in joined] == [
        ("PARENT", "2025-04-01", "MOVED_IN"),
        ("SPOUSE", "2025-05-01", "MARRIAGE"),
    ]
    gone = next(m for m in moved_out["members"] if m["member_id"] == child["member_id"])
    assert (gone["left_on"], gone["left_reason"]) == ("2025-06-01", "MOVED_OUT")  # kept, dated
    assert len(moved_out["members"]) == 4

    added = await household_events.wait(household_id, "krousar.MemberAdded", count=2)
    assert [(m.event.change, m.event.effective_on, m.event.household.version) for m in added] == [
        ("MOVED_IN", date(2025, 4, 1), 2),
        ("MARRIAGE", date(2025, 5, 1), 3),
    ]
    assert [str(m.event.member_id) for m in added] == [j["member_id"] for j in joined]
    (removed,) = await household_events.wait(household_id, "krousar.MemberRemoved")
    assert (removed.event.change, str(removed.event.member_id)) == ("MOVED_OUT", child["member_id"])
    left = next(m for m in removed.event.household.members if str(m.member_id) == child["member_id"])
    assert (removed.event.household.version, left.left_on) == (4, date(2025, 6, 1))

    trail = await history(api, household_id)
    assert [(h["action"], h["version"]) for h in trail] == [
        ("REGISTERED", 1),
        ("MEMBER_MOVED_IN", 2),
        ("MEMBER_MARRIAGE", 3),
        ("MEMBER_MOVED_OUT", 4),
    ]
    assert [h["details"] for h in trail[1:]] == [
        {"member_id": joined[0]["member_id"], "on": "2025-04-01"},
        {"member_id": joined[1]["member_id"], "on": "2025-05-01"},
        {"member_id": child["member_id"], "on": "2025-06-01"},
    ]


async def test_life_events_that_cannot_happen_are_refused(api) -> None:
    household = await register(api, make_household())
    child = next(m for m in household["members"] if m["relationship"] == "CHILD")
    second_head = make_member(name_km="សុខ មេ", date_of_birth="1970-01-01", national_id=random_national_id())

    head_moving_in = await change(
        api, household, "moves-in", {"member": second_head, "effective_on": "2025-04-01"}
    )
    moved_out = ok(
        await change(
            api, household, "moves-out", {"member_id": child["member_id"], "effective_on": "2025-04-01"}
        )
    )
    again = await change(
        api, moved_out, "moves-out", {"member_id": child["member_id"], "effective_on": "2025-05-01"}
    )

    assert head_moving_in.status_code == 422
    assert [e["field"] for e in head_moving_in.json()["errors"]] == ["member.relationship"]
    assert again.status_code == 404, again.text  # not a current member any more
    assert again.headers["content-type"] == PROBLEM_JSON
    current = (await api.get(f"/v1/households/{household['household_id']}", headers=VIEWER)).json()
    assert current["version"] == 2


# --- withdrawal -----------------------------------------------------------------------------------


async def test_withdrawal_is_a_status_and_refuses_later_writes(api, household_events) -> None:
    household = await register(api, make_household())
    household_id, head_id = household["household_id"], household["head_member_id"]
    assert household["card"]["status"] == "ACTIVE"
    reason = {"reason": "moved abroad"}

    unversioned = await api.post(f"/v1/households/{household_id}/withdrawal", json=reason, headers=STAFF)
    withdrawn = ok(await change(api, household, "withdrawal", reason))

    assert unversioned.status_code == 428
    assert (withdrawn["status"], withdrawn["version"]) == ("WITHDRAWN", 2)
    assert withdrawn["card"]["status"] == "REVOKED"
    kept = await api.get(f"/v1/households/{household_id}", headers=VIEWER)
    assert kept.status_code == 200  # nothing was deleted
    assert [m["member_id"] for m in kept.json()["members"]] == [m["member_id"] for m in household["members"]]

    birth = {
        "member": make_member(relationship="CHILD", date_of_birth="2025-06-01"),
        "effective_on": "2025-06-01",
    }
    refused = [
        await change(api, withdrawn, "births", birth),
        await change(api, withdrawn, "withdrawal", reason),
        await change(api, withdrawn, "card/revocation", {"reason": "fraud"}, headers=ADMIN),
        await api.patch(
            f"/v1/households/{household_id}/members/{head_id}",
            json={"effective_on": "2025-07-01", "in_school": True},
            headers={**STAFF, "If-Match": '"2"'},
        ),
    ]
    for response in refused:
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert "withdrawn" in response.json()["detail"]
    assert (await api.get(f"/v1/households/{household_id}", headers=VIEWER)).json()["version"] == 2

    (message,) = await household_events.wait(household_id, "krousar.HouseholdWithdrawn")
    assert (message.event.reason, message.event.household.status) == ("moved abroad", "WITHDRAWN")
    trail = await history(api, household_id)
    assert [(h["action"], h["version"]) for h in trail] == [("REGISTERED", 1), ("WITHDRAWN", 2)]
    assert trail[1]["details"] == reason


# --- history and audit trail ----------------------------------------------------------------------


async def test_history_lists_every_write_with_who_and_when(api) -> None:
    household = await register(api, make_household())
    household_id, head_id = household["household_id"], household["head_member_id"]
    other = await register(api, make_household())
    birth = {
        "member": make_member(relationship="CHILD", date_of_birth="2025-06-01"),
        "effective_on": "2025-06-01",
    }

    born = ok(await change(api, household, "births", birth))
    revoked = ok(await change(api, born, "card/revocation", {"reason": "card misused"}, headers=ADMIN))
    renamed = await api.patch(
        f"/v1/households/{household_id}/members/{head_id}",
        json={"effective_on": "2025-07-01", "name_latin": "Sok Chan"},
        headers={**STAFF, "If-Match": f'"{revoked["version"]}"'},
    )
    ok(renamed)
    ok(await change(api, other, "births", birth))  # another household's trail

    trail = await history(api, household_id)
    assert [(h["action"], h["actor"], h["version"]) for h in trail] == [
        ("REGISTERED", "staff-phnom-penh", 1),
        ("MEMBER_BIRTH", "staff-phnom-penh", 2),
        ("CARD_REVOKED", "admin-history", 3),
        ("MEMBER_CHANGED", "staff-phnom-penh", 4),
    ]
    times = [h["at"] for h in trail]
    assert times == sorted(times)
    assert trail[2]["details"] == {"card_number": household["card"]["card_number"], "reason": "card misused"}
    assert [h["action"] for h in await history(api, other["household_id"])] == ["REGISTERED", "MEMBER_BIRTH"]
    unknown = await api.get("/v1/households/00000000-0000-4000-8000-000000000000/history", headers=VIEWER)
    assert unknown.status_code == 404


# --- the household list ---------------------------------------------------------------------------


async def list_all(api: httpx.AsyncClient, *, limit: int = 500, **filters: str) -> list[dict[str, Any]]:
    """Every household the filters select, following next_cursor to the last page."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {**filters, "limit": limit}
    while True:
        response = await api.get("/v1/households", params=params, headers=VIEWER)
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["items"]
        if page["next_cursor"] is None:
            return found
        params["cursor"] = page["next_cursor"]


def household_in(village_code: str, answers: dict[str, Any] = RURAL_POOR_ANSWERS) -> dict[str, Any]:
    head = make_member(name_km=random_khmer_name(), national_id=random_national_id())
    child = make_member(name_km="សុខ ដារ៉ា", sex="M", date_of_birth="2019-01-01", relationship="CHILD")
    return make_household(village_code=village_code, answers=dict(answers), members=[head, child])


async def test_households_are_filtered_by_place_level_and_card_status(api) -> None:
    places = {  # name: (village, answers); provinces 15 (khum only) and 16 (a sangkat: urban answers)
        "a": ("15010101", RURAL_POOR_ANSWERS),
        "b": ("15010102", RURAL_POOR_ANSWERS),  # same commune as a
        "c": ("15010201", RURAL_POOR_ANSWERS),  # same district
        "d": ("15020101", RURAL_POOR_ANSWERS),  # same province
        "poor_1": ("16020101", URBAN_POOR_ANSWERS),
        "poor_2": ("16020101", URBAN_POOR_2_ANSWERS),
        "not_poor": ("16020101", URBAN_NOT_POOR_ANSWERS),
    }
    registered = {name: await register(api, household_in(*place), ADMIN) for name, place in places.items()}
    ok(await change(api, registered["b"], "card/revocation", {"reason": "card misused"}, headers=ADMIN))
    name_of = {h["household_id"]: name for name, h in registered.items()}

    async def selected(**filters: str) -> set[str]:
        items = await list_all(api, **filters)
        for item in items:
            assert all(item[FIELD_OF[key]] == value for key, value in filters.items() if key in FIELD_OF), (
                item
            )
        return {name_of[i["household_id"]] for i in items if i["household_id"] in name_of}

    assert await selected(village="15010101") == {"a"}
    assert await selected(commune="150101") == {"a", "b"}
    assert await selected(district="1501") == {"a", "b", "c"}
    assert await selected(province="15") == {"a", "b", "c", "d"}
    assert await selected(village="16020101", level="POOR_2") == {"poor_2"}
    assert await selected(province="16", level="NOT_POOR") == {"not_poor"}
    assert await selected(province="15", card_status="REVOKED") == {"b"}
    assert await selected(province="15", card_status="ACTIVE") == {"a", "c", "d"}
    assert await selected(province="16", card_status="ACTIVE") == {"poor_1", "poor_2"}
    bad = await api.get("/v1/households", params={"level": "VERY_POOR"}, headers=VIEWER)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "level"


FIELD_OF = {
    "village": "village_code",
    "commune": "commune_code",
    "district": "district_code",
    "province": "province_code",
    "level": "poverty_level",
}


async def test_cursor_pages_have_no_duplicates_and_no_gaps(api) -> None:
    village = "15020301"
    before = [(await register(api, household_in(village), ADMIN))["household_id"] for _ in range(7)]

    pages: list[list[str]] = []
    params: dict[str, Any] = {"village": village, "limit": 3}
    while True:
        page = (await api.get("/v1/households", params=params, headers=VIEWER)).json()
        pages.append([item["household_id"] for item in page["items"]])
        if page["next_cursor"] is None:
            break
        assert page["next_cursor"] == pages[-1][-1]
        params["cursor"] = page["next_cursor"]
        if len(pages) == 1:  # registrations between two pages move no one across the cursor
            await register(api, household_in(village), ADMIN)

    listed = [household_id for page in pages for household_id in page]
    assert all(len(page) <= 3 for page in pages) and all(len(page) == 3 for page in pages[:-1])
    assert len(listed) == len(set(listed)), "a household on two pages"
    assert set(before) <= set(listed), "a household missing from every page"
    assert listed == sorted(listed)
    not_a_cursor = await api.get("/v1/households", params={"cursor": "page-2"}, headers=VIEWER)
    assert not_a_cursor.status_code == 422
