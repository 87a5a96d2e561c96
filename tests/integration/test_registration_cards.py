"""Equity cards, re-assessments and council decisions on the real stack (DOMAIN.md §3–4)."""

import uuid

import pytest
from factories import (
    URBAN_NOT_POOR_ANSWERS,
    URBAN_POOR_2_ANSWERS,
    URBAN_POOR_ANSWERS,
    make_household,
)
from household_events import HouseholdEvents
from krousar_common.testing import bearer

STAFF = bearer("staff-phnom-penh", "commune_staff", communes=["120101"])
ADMIN = bearer("admin-1", "registry_admin")
VIEWER = bearer("viewer-1", "viewer")


@pytest.fixture(scope="module")
async def household_events(stack):
    async with HouseholdEvents(stack) as events:
        yield events


@pytest.fixture
async def api(registration):
    async with registration.client() as client:
        yield client


async def register(api, **over: object) -> dict:
    response = await api.post("/v1/households", json=make_household(**over), headers=STAFF)
    assert response.status_code == 201, response.text
    return response.json()


async def card(api, number: str) -> dict:
    response = await api.get(f"/v1/cards/{number}", headers=VIEWER)
    assert response.status_code == 200, response.text
    return response.json()


def at_version(headers: dict, version: int) -> dict:
    return {**headers, "If-Match": f'"{version}"'}


# --- expiry and lookup ------------------------------------------------------------------------------


async def test_expiry_job_expires_cards_past_their_last_valid_day(api, household_events) -> None:
    lapsed = await register(api, interviewed_on="2021-01-01")  # valid until 2023-12-31
    last_day = await register(api, interviewed_on="2021-01-02")  # valid until 2024-01-01
    lapsed_number, last_day_number = lapsed["card"]["card_number"], last_day["card"]["card_number"]
    assert (lapsed["card"]["valid_until"], last_day["card"]["valid_until"]) == ("2023-12-31", "2024-01-01")

    refused = await api.post("/v1/cards/expiry", params={"on": "2024-01-01"}, headers=STAFF)
    run = await api.post("/v1/cards/expiry", params={"on": "2024-01-01"}, headers=ADMIN)

    assert refused.status_code == 403
    assert run.status_code == 200, run.text
    assert lapsed_number in run.json()["card_numbers"]
    assert last_day_number not in run.json()["card_numbers"]
    assert (await card(api, lapsed_number))["status"] == "EXPIRED"
    assert (await card(api, last_day_number))["status"] == "ACTIVE"
    household = (await api.get(f"/v1/households/{lapsed['household_id']}", headers=VIEWER)).json()
    assert (household["version"], household["card"]["status"]) == (2, "EXPIRED")
    (message,) = await household_events.wait(lapsed["household_id"], "krousar.CardExpired")
    assert message.event.card_number == lapsed_number
    assert message.event.household.card.status == "EXPIRED"
    assert household_events.of(last_day["household_id"], "krousar.CardExpired") == []


async def test_a_retried_expiry_run_answers_the_first_run(api, household_events) -> None:
    lapsed = await register(api, interviewed_on="2019-06-01")  # valid until 2022-05-31
    number = lapsed["card"]["card_number"]
    headers = {**ADMIN, "Idempotency-Key": str(uuid.uuid4())}

    first = await api.post("/v1/cards/expiry", params={"on": "2022-06-01"}, headers=headers)
    retry = await api.post("/v1/cards/expiry", params={"on": "2022-06-01"}, headers=headers)

    assert first.status_code == retry.status_code == 200, (first.text, retry.text)
    assert number in first.json()["card_numbers"]
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    await household_events.wait(lapsed["household_id"], "krousar.CardExpired")
    history = (await api.get(f"/v1/households/{lapsed['household_id']}/history", headers=VIEWER)).json()
    assert [h["action"] for h in history] == ["REGISTERED", "CARD_EXPIRED"]


async def test_card_lookup_validates_the_check_digit_first(api) -> None:
    household = await register(api)
    number = household["card"]["card_number"]
    wrong_digit = f"{number[:-1]}{(int(number[-1]) + 1) % 10}"
    unknown = "12010101-99999-" + next(d for d in "0123456789" if _luhn_ok(f"1201010199999{d}"))

    found = await api.get(f"/v1/cards/{number}", headers=VIEWER)
    bad = await api.get(f"/v1/cards/{wrong_digit}", headers=VIEWER)
    missing = await api.get(f"/v1/cards/{unknown}", headers=VIEWER)

    assert found.status_code == 200
    assert found.json()["household_id"] == household["household_id"]
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in bad.json()["errors"]] == ["card_number"]
    assert missing.status_code == 404


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


# --- revoke and replace --------------------------------------------------------------------------------


async def test_only_a_registry_admin_revokes_a_card(api, household_events) -> None:
    household = await register(api)
    path = f"/v1/households/{household['household_id']}/card/revocation"
    number = household["card"]["card_number"]

    by_staff = await api.post(path, json={"reason": "sold the card"}, headers=at_version(STAFF, 1))
    assert by_staff.status_code == 403
    assert (await card(api, number))["status"] == "ACTIVE"

    by_admin = await api.post(path, json={"reason": "sold the card"}, headers=at_version(ADMIN, 1))
    assert by_admin.status_code == 200, by_admin.text
    assert by_admin.json()["version"] == 2
    revoked = await card(api, number)
    assert (revoked["status"], revoked["status_reason"]) == ("REVOKED", "sold the card")
    (message,) = await household_events.wait(household["household_id"], "krousar.CardRevoked")
    assert (message.event.card_number, message.event.reason) == (number, "sold the card")
    again = await api.post(path, json={"reason": "sold the card"}, headers=at_version(ADMIN, 2))
    assert again.status_code == 409


async def test_replacing_a_lost_card_issues_a_new_number(api, household_events) -> None:
    household = await register(api)
    old = household["card"]

    response = await api.post(
        f"/v1/households/{household['household_id']}/card/replacement",
        json={"reason": "lost in the flood"},
        headers=at_version(STAFF, 1),
    )

    assert response.status_code == 200, response.text
    new = response.json()["card"]
    assert new["card_number"] != old["card_number"]
    assert _luhn_ok(new["card_number"].replace("-", ""))
    assert (new["status"], new["valid_until"]) == ("ACTIVE", old["valid_until"])
    replaced = await card(api, old["card_number"])
    assert (replaced["status"], replaced["replaced_by"]) == ("REPLACED", new["card_number"])
    assert (await card(api, new["card_number"]))["household_id"] == household["household_id"]
    (message,) = await household_events.wait(household["household_id"], "krousar.CardReplaced")
    assert (message.event.old_card_number, message.event.card_number) == (
        old["card_number"],
        new["card_number"],
    )
    (issued,) = await household_events.wait(household["household_id"], "krousar.CardIssued")
    assert issued.event.card_number == issued.event.household.card.card_number == new["card_number"]
    assert issued.event.household.version == message.event.household.version == 2


# --- council decisions and re-assessments ----------------------------------------------------------


async def test_council_moves_a_household_one_level_into_poor_with_a_card(
    api, stack, household_events
) -> None:
    household = await register(api, answers=URBAN_NOT_POOR_ANSWERS)
    path = f"/v1/households/{household['household_id']}/council-decisions"
    reason = "Head lost her job and the house was damaged by fire in May"
    assert household["card"] is None

    too_far = await api.post(
        path,
        json={"direction": "DOWN", "reason": reason, "decided_on": "2025-06-01"},
        headers=at_version(STAFF, 1),
    )
    moved = await api.post(
        path,
        json={"direction": "UP", "reason": reason, "decided_on": "2025-06-01"},
        headers=at_version(STAFF, 1),
    )

    assert too_far.status_code == 422
    assert moved.status_code == 200, moved.text
    after = moved.json()
    assert (after["model_level"], after["poverty_level"]) == ("NOT_POOR", "POOR_2")
    assert after["special_circumstances_reason"] == reason
    assert (after["assessment"]["adjustment"], after["assessment"]["final_level"]) == ("UP", "POOR_2")
    assert after["card"]["status"] == "ACTIVE"
    assert (after["card"]["issued_on"], after["card"]["valid_until"]) == ("2025-06-01", "2028-05-31")
    (message,) = await household_events.wait(household["household_id"], "krousar.HouseholdAssessed")
    event = message.event
    assert (event.model_level, event.final_level, event.special_circumstances_reason) == (
        "NOT_POOR",
        "POOR_2",
        reason,
    )
    assert event.household.poverty_level == "POOR_2"
    assert event.household.card.card_number == after["card"]["card_number"]
    (issued,) = await household_events.wait(household["household_id"], "krousar.CardIssued")
    assert (issued.event.card_number, issued.event.household.card.issued_on.isoformat()) == (
        after["card"]["card_number"],
        "2025-06-01",
    )


async def test_council_moves_a_poor_household_down_one_level(api) -> None:
    household = await register(api, answers=URBAN_POOR_ANSWERS)
    response = await api.post(
        f"/v1/households/{household['household_id']}/council-decisions",
        json={
            "direction": "DOWN",
            "reason": "Son sends money from Korea every month",
            "decided_on": "2025-06-01",
        },
        headers=at_version(STAFF, 1),
    )

    assert response.status_code == 200, response.text
    after = response.json()
    assert (after["model_level"], after["poverty_level"]) == ("POOR_1", "POOR_2")
    assert after["card"]["card_number"] != household["card"]["card_number"]
    assert (await card(api, household["card"]["card_number"]))["status"] == "REPLACED"


async def test_reassessment_adds_an_assessment_and_issues_a_new_card(api, stack, household_events) -> None:
    household = await register(api, answers=URBAN_POOR_ANSWERS)
    household_id = household["household_id"]
    old_number = household["card"]["card_number"]

    response = await api.post(
        f"/v1/households/{household_id}/assessments",
        json={"interviewed_on": "2025-09-01", "answers": URBAN_POOR_2_ANSWERS},
        headers=at_version(STAFF, 1),
    )

    assert response.status_code == 200, response.text
    after = response.json()
    assert (after["version"], after["poverty_level"], after["interviewed_on"]) == (2, "POOR_2", "2025-09-01")
    assert after["score"] < household["score"]
    new_card = after["card"]
    assert new_card["card_number"] != old_number
    assert (new_card["status"], new_card["issued_on"], new_card["valid_until"]) == (
        "ACTIVE",
        "2025-09-01",
        "2028-08-31",
    )
    old_card = await card(api, old_number)
    assert (old_card["status"], old_card["replaced_by"]) == ("REPLACED", new_card["card_number"])
    history = (await api.get(f"/v1/households/{household_id}/history", headers=VIEWER)).json()
    assert [(h["action"], h["version"]) for h in history] == [("REGISTERED", 1), ("REASSESSED", 2)]
    assert [h["details"]["level"] for h in history] == ["POOR_1", "POOR_2"]
    conn = await stack.connect("registration")
    try:
        levels = await conn.fetch(
            "SELECT final_level FROM assessments WHERE household_id = $1 ORDER BY created_at",
            uuid.UUID(household_id),
        )
    finally:
        await conn.close()
    assert [r["final_level"] for r in levels] == ["POOR_1", "POOR_2"]
    (message,) = await household_events.wait(household_id, "krousar.HouseholdAssessed")
    assert (message.event.final_level, message.event.household.card.card_number) == (
        "POOR_2",
        new_card["card_number"],
    )
    (issued,) = await household_events.wait(household_id, "krousar.CardIssued")
    assert issued.event.card_number == new_card["card_number"]
    # The first card travels in HouseholdRegistered: CardIssued is for cards issued afterwards.
    assert [m.type for m in household_events.of(household_id)] == [
        "krousar.HouseholdRegistered",
        "krousar.HouseholdAssessed",
        "krousar.CardIssued",
    ]


async def test_reassessed_not_poor_loses_the_card(api, household_events) -> None:
    household = await register(api, answers=URBAN_POOR_ANSWERS)
    response = await api.post(
        f"/v1/households/{household['household_id']}/assessments",
        json={"interviewed_on": "2025-09-01", "answers": URBAN_NOT_POOR_ANSWERS},
        headers=at_version(STAFF, 1),
    )

    assert response.status_code == 200, response.text
    assert response.json()["poverty_level"] == "NOT_POOR"
    assert response.json()["card"]["status"] == "REVOKED"
    assert (await card(api, household["card"]["card_number"]))["status"] == "REVOKED"
    await household_events.wait(household["household_id"], "krousar.HouseholdAssessed")
    assert household_events.of(household["household_id"], "krousar.CardIssued") == []


async def test_an_interview_or_decision_in_the_future_is_422(api) -> None:
    household = await register(api)
    path = f"/v1/households/{household['household_id']}"
    future = "2999-01-01"

    reassessed = await api.post(
        f"{path}/assessments",
        json={"interviewed_on": future, "answers": URBAN_POOR_2_ANSWERS},
        headers=at_version(STAFF, 1),
    )
    decided = await api.post(
        f"{path}/council-decisions",
        json={"direction": "DOWN", "reason": "Son sends money from Korea", "decided_on": future},
        headers=at_version(STAFF, 1),
    )

    assert reassessed.status_code == 422
    assert [e["field"] for e in reassessed.json()["errors"]] == ["interviewed_on"]
    assert decided.status_code == 422
    assert [e["field"] for e in decided.json()["errors"]] == ["decided_on"]
    after = (await api.get(path, headers=VIEWER)).json()
    assert (after["version"], after["card"]["card_number"]) == (1, household["card"]["card_number"])
