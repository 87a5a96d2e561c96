"""The registry API on the real stack: registration and its checks, member changes under If-Match,
commune scope, idempotent retries, the HIV field and the events on ``registry.households.v1``.

Cards, assessments and council decisions: test_registration_cards.py; gazetteer and village
reclassification: test_registration_geo.py; bulk import: test_registration_imports.py.
"""

import re
import uuid
from datetime import date

import orjson
import pytest
from factories import (
    RURAL_POOR_ANSWERS,
    URBAN_NOT_POOR_ANSWERS,
    URBAN_POOR_2_ANSWERS,
    URBAN_POOR_ANSWERS,
    make_household,
    make_member,
    make_phnom_penh_check_household,
    random_khmer_name,
    random_national_id,
)
from household_events import HouseholdEvents
from krousar_common.events import EVENT_TYPES
from krousar_common.testing import bearer

STAFF = bearer("staff-phnom-penh", "commune_staff", communes=["120101"])
OTHER_STAFF = bearer("staff-banteay-meanchey", "commune_staff", communes=["010201"])
ADMIN = bearer("admin-1", "registry_admin")
VIEWER = bearer("viewer-1", "viewer")
HEALTH = bearer("health-1", "health_staff")
URBAN_VILLAGE = "01060201"  # commune 010602 (Banteay Meanchey) is a sangkat
RURAL_VILLAGE = "01020101"  # commune 010201 (Banteay Meanchey) is a khum
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
async def household_events(stack):
    async with HouseholdEvents(stack) as events:
        yield events


@pytest.fixture
async def api(registration):
    async with registration.client() as client:
        yield client


async def register(api, body: dict | None = None, headers: dict = STAFF) -> dict:
    response = await api.post("/v1/households", json=body or make_household(), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


async def count(stack, sql: str, *args: object) -> int:
    conn = await stack.connect("registration")
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


# --- registration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "interviewed_on", "level", "valid_until"),
    [
        (URBAN_POOR_ANSWERS, "2025-03-01", "POOR_1", "2028-02-29"),  # the day before 2028-03-01
        (URBAN_POOR_2_ANSWERS, "2023-06-15", "POOR_2", "2026-06-14"),
        (URBAN_NOT_POOR_ANSWERS, "2025-03-01", "NOT_POOR", None),
    ],
)
async def test_registration_scores_levels_and_cards_the_poor(
    api, stack, answers, interviewed_on, level, valid_until
) -> None:
    response = await api.post(
        "/v1/households", json=make_household(answers=answers, interviewed_on=interviewed_on), headers=STAFF
    )

    assert response.status_code == 201, response.text
    household = response.json()
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/v1/households/{household['household_id']}"
    assert (household["version"], household["status"]) == (1, "ACTIVE")
    assert household["poverty_level"] == household["model_level"] == level
    assert (household["questionnaire"], household["scoring_model"]) == ("URBAN", "SYNTH-URBAN-1")
    assert household["location_category"] == "PHNOM_PENH"
    assert household["female_headed"] is True
    cards = await count(
        stack, "SELECT count(*) FROM cards WHERE household_id = $1", uuid.UUID(household["household_id"])
    )
    if valid_until is None:
        assert household["card"] is None
        assert cards == 0
        return
    card = household["card"]
    assert re.fullmatch(r"12010101-[0-9]{5}-[0-9]", card["card_number"]), card["card_number"]
    assert luhn_valid(card["card_number"].replace("-", ""))
    assert (card["status"], card["issued_on"], card["valid_until"]) == ("ACTIVE", interviewed_on, valid_until)
    assert cards == 1


async def test_phnom_penh_check_household_is_published_as_registered(api, household_events) -> None:
    household = await register(api, make_phnom_penh_check_household())

    assert (household["location_category"], household["poverty_level"]) == ("PHNOM_PENH", "POOR_1")
    (message,) = await household_events.wait(household["household_id"], "krousar.HouseholdRegistered")
    snapshot = message.event.household
    period_start = date(2020, 7, 1)
    assert snapshot.location_category_on(period_start) == "PHNOM_PENH"
    assert snapshot.poverty_level == "POOR_1"
    assert snapshot.card is not None and snapshot.card.is_active_on(period_start)
    members = snapshot.members_on(period_start)
    ages = [age_on(m.date_of_birth, period_start) for m in members]
    assert len(members) == 6
    assert sum(age >= 60 for age in ages) == 2
    assert sum(age < 5 for age in ages) == 2


@pytest.mark.parametrize(
    ("village_code", "answers", "category", "questionnaire"),
    [
        (URBAN_VILLAGE, URBAN_POOR_ANSWERS, "OTHER_URBAN", "URBAN"),
        (RURAL_VILLAGE, RURAL_POOR_ANSWERS, "RURAL", "RURAL"),
    ],
)
async def test_location_category_and_questionnaire_follow_the_commune_unit(
    api, household_events, village_code, answers, category, questionnaire
) -> None:
    household = await register(api, make_household(village_code=village_code, answers=answers), ADMIN)

    assert household["location_category"] == category
    assert household["questionnaire"] == questionnaire
    assert household["scoring_model"] == f"SYNTH-{questionnaire}-1"
    assert household["commune_code"] == village_code[:6]
    (message,) = await household_events.wait(household["household_id"], "krousar.HouseholdRegistered")
    assert message.event.household.location_category_on(date.today()) == category


async def test_answers_of_the_other_questionnaire_are_422_naming_them(api) -> None:
    body = make_household(village_code=RURAL_VILLAGE, answers=URBAN_POOR_ANSWERS)
    response = await api.post("/v1/households", json=body, headers=ADMIN)

    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"answers.land_ha", "answers.cattle", "answers.tenure", "answers.earners"} <= fields


async def test_legacy_seven_digit_village_code_is_normalised(api) -> None:
    body = make_household(village_code="1020102", answers=RURAL_POOR_ANSWERS)
    household = await register(api, body, ADMIN)

    assert household["village_code"] == "01020102"


async def test_unknown_village_is_422_naming_village_code(api, stack) -> None:
    national_id = random_national_id()
    body = make_household(village_code="12999999", members=[make_member(national_id=national_id)])
    response = await api.post("/v1/households", json=body, headers=ADMIN)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert [e["field"] for e in response.json()["errors"]] == ["village_code"]
    assert await count(stack, "SELECT count(*) FROM members WHERE national_id = $1", national_id) == 0


async def test_two_heads_are_422_naming_members(api) -> None:
    members = [make_member(national_id=random_national_id()), make_member(name_km="សុខ វណ្ណា", sex="M")]
    response = await api.post("/v1/households", json=make_household(members=members), headers=STAFF)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert [e["field"] for e in response.json()["errors"]] == ["members"]


# --- duplicates -----------------------------------------------------------------------------------


async def test_national_id_of_an_active_household_is_409_naming_it(api, stack) -> None:
    first = await register(api)
    national_id = first["members"][0]["national_id"]
    again = make_household(members=[make_member(name_km=random_khmer_name(), national_id=national_id)])

    response = await api.post("/v1/households", json=again, headers=STAFF)

    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["other_household_id"] == first["household_id"]
    assert await count(stack, "SELECT count(*) FROM members WHERE national_id = $1", national_id) == 1

    withdrawn = await api.post(
        f"/v1/households/{first['household_id']}/withdrawal",
        json={"reason": "moved to Thailand"},
        headers={**STAFF, "If-Match": '"1"'},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert (await api.post("/v1/households", json=again, headers=STAFF)).status_code == 201


async def test_same_head_name_birth_and_village_is_flagged_for_review(api) -> None:
    name = random_khmer_name()

    def same_head(village_code: str) -> dict:
        head = make_member(name_km=name, date_of_birth="1979-03-03", national_id=random_national_id())
        return make_household(village_code=village_code, members=[head])

    first = await register(api, same_head("12010101"))
    second = await register(api, same_head("12010101"))
    other_village = await register(api, same_head("12010102"))
    listed = await api.get("/v1/duplicates", params={"commune": "120101"}, headers=VIEWER)

    assert (first["possible_duplicate"], second["possible_duplicate"]) == (False, True)
    assert other_village["possible_duplicate"] is False
    assert listed.status_code == 200
    ids = {row["household_id"] for row in listed.json()}
    assert second["household_id"] in ids
    assert not {first["household_id"], other_village["household_id"]} & ids


# --- member changes and optimistic concurrency ------------------------------------------------------


async def test_a_change_needs_the_current_version(api) -> None:
    household = await register(api)
    path = f"/v1/households/{household['household_id']}/births"
    birth = {
        "member": make_member(name_km="សុខ ថ្មី", sex="M", date_of_birth="2025-06-01", relationship="CHILD"),
        "effective_on": "2025-06-01",
    }

    missing = await api.post(path, json=birth, headers=STAFF)
    done = await api.post(path, json=birth, headers={**STAFF, "If-Match": '"1"'})
    stale = await api.post(path, json=birth, headers={**STAFF, "If-Match": '"1"'})
    current = await api.get(f"/v1/households/{household['household_id']}", headers=STAFF)

    assert missing.status_code == 428
    assert missing.headers["content-type"] == PROBLEM_JSON
    assert done.status_code == 200, done.text
    assert (done.json()["version"], done.headers["etag"]) == (2, '"2"')
    assert stale.status_code == 412
    assert stale.headers["content-type"] == PROBLEM_JSON
    assert (current.json()["version"], current.headers["etag"]) == (2, '"2"')
    born = [m for m in current.json()["members"] if m["joined_reason"] == "BIRTH"]
    assert len(current.json()["members"]) == 3
    assert [(m["name_km"], m["joined_on"]) for m in born] == [("សុខ ថ្មី", "2025-06-01")]


async def test_death_of_the_head_needs_a_new_head(api, household_events) -> None:
    members = [
        make_member(national_id=random_national_id()),
        make_member(name_km="សុខ វណ្ណា", sex="M", date_of_birth="1978-01-01", relationship="SPOUSE"),
    ]
    household = await register(api, make_household(members=members))
    household_id, head_id = household["household_id"], household["head_member_id"]
    spouse_id = next(m["member_id"] for m in household["members"] if m["relationship"] == "SPOUSE")
    path = f"/v1/households/{household_id}/deaths"
    death = {"member_id": head_id, "effective_on": "2025-05-01"}

    headless = await api.post(path, json=death, headers={**STAFF, "If-Match": '"1"'})
    assert headless.status_code == 422
    assert [e["field"] for e in headless.json()["errors"]] == ["new_head_member_id"]

    done = await api.post(
        path, json={**death, "new_head_member_id": spouse_id}, headers={**STAFF, "If-Match": '"1"'}
    )
    assert done.status_code == 200, done.text
    after = done.json()
    assert (after["version"], after["head_member_id"], after["female_headed"]) == (2, spouse_id, False)
    dead = next(m for m in after["members"] if m["member_id"] == head_id)
    assert (dead["left_on"], dead["left_reason"]) == ("2025-05-01", "DEATH")
    (message,) = await household_events.wait(household_id, "krousar.MemberRemoved")
    assert (message.event.change, str(message.event.member_id)) == ("DEATH", head_id)
    assert str(message.event.household.head_member_id) == spouse_id


async def test_a_member_change_is_a_new_version_with_its_event(api, household_events) -> None:
    household = await register(api)
    household_id = household["household_id"]
    head_id = household["head_member_id"]
    path = f"/v1/households/{household_id}/members/{head_id}"
    change = {
        "effective_on": "2025-07-01",
        "is_pregnant": True,
        "expected_delivery_date": "2026-01-15",
        "has_disability": True,
        "disability_card_no": "DC-120101-0042",
        "name_latin": "Sok Chan",
    }

    missing = await api.patch(path, json=change, headers=STAFF)
    done = await api.patch(path, json=change, headers={**STAFF, "If-Match": '"1"'})
    stale = await api.patch(path, json={**change, "in_school": True}, headers={**STAFF, "If-Match": '"1"'})

    assert missing.status_code == 428
    assert done.status_code == 200, done.text
    assert (done.json()["version"], done.headers["etag"]) == (2, '"2"')
    head = next(m for m in done.json()["members"] if m["member_id"] == head_id)
    assert (head["is_pregnant"], head["expected_delivery_date"]) == (True, "2026-01-15")
    assert (head["has_disability"], head["disability_card_no"], head["name_latin"]) == (
        True,
        "DC-120101-0042",
        "Sok Chan",
    )
    assert stale.status_code == 412
    fields = ["disability_card_no", "expected_delivery_date", "has_disability", "is_pregnant", "name_latin"]
    history = (await api.get(f"/v1/households/{household_id}/history", headers=VIEWER)).json()
    assert [(h["action"], h["version"]) for h in history] == [("REGISTERED", 1), ("MEMBER_CHANGED", 2)]
    assert history[1]["details"] == {"member_id": head_id, "fields": fields, "on": "2025-07-01"}
    (message,) = await household_events.wait(household_id, "krousar.MemberChanged")
    event = message.event
    assert (str(event.member_id), event.fields, event.effective_on) == (head_id, fields, date(2025, 7, 1))
    snapshot_head = next(m for m in event.household.members if str(m.member_id) == head_id)
    assert (event.household.version, snapshot_head.is_pregnant, snapshot_head.has_disability) == (
        2,
        True,
        True,
    )
    assert (snapshot_head.expected_delivery_date, snapshot_head.disability_card_no) == (
        date(2026, 1, 15),
        "DC-120101-0042",
    )


async def test_a_member_change_is_checked_like_a_registration(api, stack) -> None:
    household = await register(api)
    other = await register(api)
    household_id, head_id = household["household_id"], household["head_member_id"]
    path = f"/v1/households/{household_id}/members/{head_id}"
    at_v1 = {**STAFF, "If-Match": '"1"'}
    held_id = other["members"][0]["national_id"]

    latin_name = await api.patch(path, json={"effective_on": "2025-07-01", "name_km": "Sok"}, headers=at_v1)
    short_id = await api.patch(path, json={"effective_on": "2025-07-01", "national_id": "12"}, headers=at_v1)
    no_change = await api.patch(path, json={"effective_on": "2025-07-01", "sex": "F"}, headers=at_v1)
    relationship = await api.patch(
        path, json={"effective_on": "2025-07-01", "relationship": "CHILD"}, headers=at_v1
    )
    held = await api.patch(path, json={"effective_on": "2025-07-01", "national_id": held_id}, headers=at_v1)
    elsewhere = await api.patch(
        path,
        json={"effective_on": "2025-07-01", "in_school": True},
        headers={**OTHER_STAFF, "If-Match": '"1"'},
    )
    stranger = await api.patch(
        f"/v1/households/{household_id}/members/{uuid.uuid4()}",
        json={"effective_on": "2025-07-01", "in_school": True},
        headers=at_v1,
    )

    assert latin_name.status_code == 422 and latin_name.headers["content-type"] == PROBLEM_JSON
    assert [e["field"] for e in latin_name.json()["errors"]] == ["name_km"]
    assert short_id.status_code == 422
    assert [e["field"] for e in short_id.json()["errors"]] == ["national_id"]
    assert no_change.status_code == 422
    assert relationship.status_code == 422
    assert [e["field"] for e in relationship.json()["errors"]] == ["relationship"]
    assert held.status_code == 409 and held.json()["other_household_id"] == other["household_id"]
    assert elsewhere.status_code == 403
    assert stranger.status_code == 404
    unchanged = (await api.get(f"/v1/households/{household_id}", headers=VIEWER)).json()
    assert unchanged["version"] == 1
    assert await count(stack, "SELECT count(*) FROM members WHERE national_id = $1", held_id) == 1


# --- commune scope ----------------------------------------------------------------------------------


def changes_of(household: dict) -> list[tuple[str, str, dict]]:
    """A request for every change route of the registry, on ``household`` at version 1."""
    path = f"/v1/households/{household['household_id']}"
    child = household["members"][1]["member_id"]
    newcomer = make_member(name_km="សុខ ថ្មី", sex="M", date_of_birth="2025-06-01", relationship="CHILD")
    arrival = {"member": newcomer, "effective_on": "2025-06-01"}
    leaving = {"member_id": child, "effective_on": "2025-06-01"}
    council = {"direction": "UP", "reason": "the house burnt down in May", "decided_on": "2025-06-01"}
    return [
        *[("POST", f"{path}/{event}", arrival) for event in ("births", "moves-in", "marriages")],
        *[("POST", f"{path}/{event}", leaving) for event in ("deaths", "moves-out")],
        ("PATCH", f"{path}/members/{child}", {"effective_on": "2025-06-01", "name_km": "សុខ ថ្មី"}),
        ("POST", f"{path}/withdrawal", {"reason": "moved away"}),
        ("POST", f"{path}/assessments", {"interviewed_on": "2025-06-01", "answers": URBAN_POOR_ANSWERS}),
        ("POST", f"{path}/council-decisions", council),
        ("POST", f"{path}/card/replacement", {"reason": "lost in the flood"}),
    ]


async def test_commune_staff_cannot_write_outside_their_communes(api, stack) -> None:
    national_id = random_national_id()
    elsewhere = make_household(
        village_code=RURAL_VILLAGE, answers=RURAL_POOR_ANSWERS, members=[make_member(national_id=national_id)]
    )
    theirs = await register(api)

    refused = await api.post("/v1/households", json=elsewhere, headers=STAFF)
    refused_changes = {
        path: (
            await api.request(method, path, json=body, headers={**OTHER_STAFF, "If-Match": '"1"'})
        ).status_code
        for method, path, body in changes_of(theirs)
    }

    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert await count(stack, "SELECT count(*) FROM members WHERE national_id = $1", national_id) == 0
    assert refused_changes == dict.fromkeys(refused_changes, 403)
    unchanged = (await api.get(f"/v1/households/{theirs['household_id']}", headers=VIEWER)).json()
    assert (unchanged["version"], len(unchanged["members"])) == (1, 2)
    assert (
        await count(
            stack, "SELECT count(*) FROM audit_log WHERE household_id = $1", uuid.UUID(theirs["household_id"])
        )
        == 1
    )


async def test_commune_staff_read_only_households_of_their_communes(api) -> None:
    theirs = await register(api)
    head = make_member(name_km=random_khmer_name(), date_of_birth="1979-03-03")
    child = make_member(name_km="សុខ ដារ៉ា", sex="M", date_of_birth="2022-01-01", relationship="CHILD")
    twins = [
        make_household(
            village_code=RURAL_VILLAGE,
            answers=RURAL_POOR_ANSWERS,
            members=[{**head, "national_id": random_national_id()}, child],
        )
        for _ in range(2)
    ]
    _, elsewhere = [await register(api, body, OTHER_STAFF) for body in twins]  # the second: a duplicate
    path = f"/v1/households/{elsewhere['household_id']}"
    reads = {
        "household": path,
        "history": f"{path}/history",
        "card": f"/v1/cards/{elsewhere['card']['card_number']}",
        "duplicates": "/v1/duplicates?commune=010201",
        **{
            f"{area} filter": f"/v1/households?{area}={code}"
            for area, code in {
                "province": "01",
                "district": "0102",
                "commune": "010201",
                "village": RURAL_VILLAGE,
            }.items()
        },
    }

    refused = {read: await api.get(url, headers=STAFF) for read, url in reads.items()}
    allowed = {read: await api.get(url, headers=OTHER_STAFF) for read, url in reads.items()}
    unfiltered = await api.get("/v1/households", params={"limit": 500}, headers=STAFF)
    wider = await api.get("/v1/households", params={"province": "12", "limit": 500}, headers=STAFF)
    own = await api.get(f"/v1/households/{theirs['household_id']}/history", headers=STAFF)

    assert {read: r.status_code for read, r in refused.items()} == dict.fromkeys(reads, 403)
    assert {r.headers["content-type"] for r in refused.values()} == {PROBLEM_JSON}
    assert {read: r.status_code for read, r in allowed.items()} == dict.fromkeys(reads, 200)
    assert elsewhere["household_id"] in {d["household_id"] for d in allowed["duplicates"].json()}
    for page in (unfiltered, wider):
        assert page.status_code == 200, page.text
        assert page.json()["items"]
        assert {h["commune_code"] for h in page.json()["items"]} == {"120101"}
    assert own.status_code == 200 and own.json()[0]["action"]


# --- idempotent retries -------------------------------------------------------------------------------


async def test_retry_with_the_same_idempotency_key_creates_one_household(api, stack) -> None:
    body, changed = make_household(), make_household()
    headers = {**STAFF, "Idempotency-Key": str(uuid.uuid4())}

    first = await api.post("/v1/households", json=body, headers=headers)
    retry = await api.post("/v1/households", json=body, headers=headers)
    other_body = await api.post("/v1/households", json=changed, headers=headers)

    assert first.status_code == retry.status_code == 201, (first.text, retry.text)
    assert retry.json()["household_id"] == first.json()["household_id"]
    assert retry.json() == first.json()
    held = "SELECT count(DISTINCT household_id) FROM members WHERE national_id = $1"
    assert await count(stack, held, body["members"][0]["national_id"]) == 1
    assert other_body.status_code == 422
    assert [e["field"] for e in other_body.json()["errors"]] == ["Idempotency-Key"]
    assert await count(stack, held, changed["members"][0]["national_id"]) == 0


# --- sensitive fields ------------------------------------------------------------------------------------


async def test_hiv_status_is_shown_only_to_roles_that_need_it(api) -> None:
    members = [
        make_member(national_id=random_national_id(), lives_with_hiv=True),
        make_member(name_km="សុខ ដារ៉ា", sex="M", date_of_birth="2022-01-01", relationship="CHILD"),
    ]
    created = await register(api, make_household(members=members))
    path = f"/v1/households/{created['household_id']}"

    seen = {}
    for role, headers in {
        "commune_staff": STAFF,
        "viewer": VIEWER,
        "registry_admin": ADMIN,
        "health_staff": HEALTH,
    }.items():
        response = await api.get(path, headers=headers)
        assert response.status_code == 200, response.text
        seen[role] = [m["lives_with_hiv"] for m in response.json()["members"]]
    listed = await api.get("/v1/households", params={"village": "12010101", "limit": 500}, headers=VIEWER)

    assert [m["lives_with_hiv"] for m in created["members"]] == [None, None]
    assert seen == {
        "commune_staff": [None, None],
        "viewer": [None, None],
        "registry_admin": [True, False],
        "health_staff": [True, False],
    }
    assert {m["lives_with_hiv"] for h in listed.json()["items"] for m in h["members"]} == {None}


# --- events ------------------------------------------------------------------------------------------------


async def test_events_carry_the_documented_envelope(api, household_events) -> None:
    correlation_id = f"test-{uuid.uuid4()}"
    household = await register(api, headers={**STAFF, "X-Correlation-Id": correlation_id})
    household_id = household["household_id"]

    (message,) = await household_events.wait(household_id, "krousar.HouseholdRegistered")

    raw = orjson.loads(message.raw)
    assert raw["specversion"] == "1.0"
    assert raw["type"] == "krousar.HouseholdRegistered"
    assert raw["subject"] == household_id == message.key
    assert raw["correlation_id"] == correlation_id
    assert raw["schema_version"] == EVENT_TYPES[raw["type"]].schema_version
    assert raw["source"] == "krousar/registration"
    assert {"id", "time", "datacontenttype", "data"} <= raw.keys()
    snapshot = message.event.household
    assert (str(snapshot.household_id), snapshot.version) == (household_id, 1)
    assert snapshot.card.card_number == household["card"]["card_number"]
    # test_dead_letters puts poison on this topic on purpose (key "poison"); nothing else may fail.
    assert [m for m in household_events.undecodable() if m.key != "poison"] == []
    decodable = [m for m in household_events.messages if m.error is None]
    for other in decodable:  # every event so far: keyed by the household it is about
        assert other.key == other.envelope.subject == str(other.event.household.household_id)
